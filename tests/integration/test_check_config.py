"""maild --check-config, and maild itself, refuse a bad mail.conf naming file, line, key and reason."""

import os
import shutil
import subprocess
import tempfile
import unittest

from maild_harness import MAILD_BIN, make_certificate


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="maild-cc-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "mail.conf")

    def check(self, text, *extra):
        with open(self.path, "w") as f:
            f.write(text)
        return subprocess.run([MAILD_BIN, "--config", self.path, "--check-config", *extra],
                              capture_output=True, text=True, timeout=60)

    def assert_refused(self, text, line, key, reason_part):
        result = self.check(text)
        self.assertEqual(result.returncode, 2, result)
        expected = "%s:%d: %s: " % (self.path, line, key)
        self.assertIn(expected, result.stderr)
        self.assertIn(reason_part, result.stderr)

    def test_empty_file_is_valid(self):
        result = self.check("")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("configuration is valid", result.stdout)

    def test_the_sample_config_is_valid(self):
        sample = os.path.join(os.path.dirname(__file__), "..", "..", "config", "mail.conf")
        with open(sample) as f:
            text = f.read()
        self.assertIn("\nuser = maild\n", text)
        # This machine has no user maild (the package's sysusers.d file creates it).
        result = self.check(text.replace("\nuser = maild\n", "\nuser = nobody\n"))
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_unknown_key(self):
        self.assert_refused("[smtp]\n\nmax_recipient = 5\n", 3, "smtp.max_recipient", "unknown key")

    def test_unknown_section(self):
        result = self.check("[server]\nthreads = 1\n[nosuch]\nkey = 1\n")
        self.assertEqual(result.returncode, 2)
        self.assertIn("%s:3:" % self.path, result.stderr)
        self.assertIn("nosuch", result.stderr)

    def test_bad_size(self):
        self.assert_refused("[smtp]\nmax_message_size = 35X\n", 2, "smtp.max_message_size", "")

    def test_bad_duration(self):
        self.assert_refused("[smtp]\ncommand_timeout = 5\n", 2, "smtp.command_timeout", "")

    def test_out_of_bounds(self):
        self.assert_refused("[server]\nlisten_backlog = 0\n", 2, "server.listen_backlog", "")

    def test_bad_endpoint(self):
        self.assert_refused("[smtp]\nlisten = 127.0.0.1\n", 2, "smtp.listen", "")

    def test_bad_enum(self):
        self.assert_refused("[log]\nlevel = loud\n", 2, "log.level", "")

    def test_missing_file(self):
        result = subprocess.run([MAILD_BIN, "--config", os.path.join(self.dir, "none.conf"),
                                 "--check-config"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 2)
        self.assertIn("none.conf", result.stderr)

    def test_unreadable_certificate_is_reported(self):
        result = self.check("[tls]\ncert = missing.pem\nkey = missing.key\n")
        self.assertEqual(result.returncode, 2)
        self.assertIn("tls.cert", result.stderr)

    def test_good_certificate_passes(self):
        make_certificate(self.dir)
        result = self.check("[tls]\ncert = cert.pem\nkey = key.pem\n")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_maild_itself_refuses_to_start(self):
        with open(self.path, "w") as f:
            f.write("[smtp]\nbogus = 1\n")
        result = subprocess.run([MAILD_BIN, "--config", self.path], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 2)
        self.assertIn("%s:2: smtp.bogus: " % self.path, result.stderr)


if __name__ == "__main__":
    unittest.main()
