"""The two-instance demo of docs/source-get.md runs as written:
scripts/source-get-demo.sh, with this build's binaries and free ports,
must show origin sending SOURCE, dest fetching by GET, and bob reading the
message by POP3 with source-get=pass."""

import os
import subprocess
import unittest

from maild_harness import MAILCTL_BIN, MAILD_BIN, free_port
from postfix_peer import missing_tools
from test_delivery import port_free_on

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO = os.path.join(ROOT, "scripts", "source-get-demo.sh")


class SourceGetDemo(unittest.TestCase):
    def test_the_demo_runs_as_written(self):
        if missing_tools():  # dnsmasq comes with the test peers
            self.skipTest(missing_tools())
        hosts = ("127.0.0.2", "127.0.0.3")
        env = dict(os.environ, MAILD=MAILD_BIN, MAILCTL=MAILCTL_BIN,
                   DEMO_PORT=str(port_free_on(hosts)),
                   DEMO_SUBMISSION_PORT=str(port_free_on(hosts)),
                   DEMO_POP3_PORT=str(port_free_on(hosts)),
                   DEMO_DNS_PORT=str(free_port()))
        result = subprocess.run(["bash", DEMO], capture_output=True, text=True, timeout=120,
                                env=env, stdin=subprocess.DEVNULL)
        out = result.stdout
        self.assertEqual(result.returncode, 0, out + result.stderr)
        origin_log = out.split("== origin's log")[1].split("== dest's log")[0]
        self.assertRegex(origin_log, r"SOURCE")
        mail_list = out.split("== dest: mailctl mail list")[1].split("== dest: mailctl stats")[0]
        self.assertRegex(mail_list, r"bob@dest\.test .*\bverified\b")
        message = out.split("== bob reads it by POP3")[1]
        self.assertIn("Authentication-Results: mx.dest.test; source-get=pass smtp.mailfrom=origin.test",
                      message)
        self.assertIn("Hello Bob, this message was fetched back from origin.test's MX.", message)


if __name__ == "__main__":
    unittest.main()
