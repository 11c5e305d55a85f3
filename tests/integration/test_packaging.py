"""`cmake --install` and the systemd unit: what an install puts where, and that
systemd accepts the unit (systemd-analyze verify) and rates its hardening OK
(systemd-analyze security, offline). Touches neither the machine's systemd
nor its users: the install goes to a DESTDIR under a temp folder."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from maild_harness import MAILD_BIN

BUILD_DIR = os.environ.get("MAILD_BUILD_DIR")
CMAKE = os.environ.get("CMAKE_COMMAND") or shutil.which("cmake")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(HERE, "..", "..", "config", "maild.service")


def unit_for_this_build(folder):
    """config/maild.service with ExecStart and ExecStartPre pointing at the built maild."""
    with open(UNIT) as f:
        text = f.read()
    path = os.path.join(folder, "maild.service")
    with open(path, "w") as f:
        f.write(text.replace("/usr/sbin/maild", os.path.abspath(MAILD_BIN)))
    return path


@unittest.skipUnless(BUILD_DIR and CMAKE, "needs the build folder (run through ctest)")
class Install(unittest.TestCase):
    def test_install_puts_every_part_in_place(self):
        root = tempfile.mkdtemp(prefix="maild-install-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        result = subprocess.run([CMAKE, "--install", BUILD_DIR],
                                env=dict(os.environ, DESTDIR=root),
                                capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        prefix = subprocess.run([CMAKE, "-L", "-N", BUILD_DIR], capture_output=True, text=True,
                                check=True).stdout
        prefix = re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", prefix, re.M).group(1)
        base = root + prefix
        for part in ("sbin/maild", "sbin/mailctl", "etc/maild/mail.conf",
                     "etc/logrotate.d/maild", "lib/systemd/system/maild.service",
                     "lib/sysusers.d/maild.conf", "lib/tmpfiles.d/maild.conf",
                     "share/doc/maild/README.md", "share/doc/maild/operations.md",
                     "share/doc/maild/mail.conf"):
            self.assertTrue(os.path.exists(os.path.join(base, part)), part)
        self.assertTrue(os.access(os.path.join(base, "sbin/maild"), os.X_OK))
        with open(os.path.join(base, "etc/maild/mail.conf")) as f:
            self.assertRegex(f.read(), r"\n\[server\]\n(.*\n)*?user = maild\n")
        with open(os.path.join(base, "lib/systemd/system/maild.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=%s/sbin/maild --config %s/etc/maild/mail.conf\n" % (prefix, prefix),
                      unit)
        with open(os.path.join(base, "lib/sysusers.d/maild.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u maild ")
        # A second install keeps the administrator's mail.conf.
        conf = os.path.join(base, "etc/maild/mail.conf")
        with open(conf, "w") as f:
            f.write("[server]\nuser = someone\n")
        result = subprocess.run([CMAKE, "--install", BUILD_DIR],
                                env=dict(os.environ, DESTDIR=root),
                                capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(conf) as f:
            self.assertEqual(f.read(), "[server]\nuser = someone\n")


@unittest.skipUnless(SYSTEMD_ANALYZE, "systemd-analyze is not installed")
class Unit(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="maild-unit-")
        self.addCleanup(shutil.rmtree, self.folder, ignore_errors=True)
        self.unit = unit_for_this_build(self.folder)

    def test_systemd_analyze_verify_accepts_the_unit(self):
        result = subprocess.run([SYSTEMD_ANALYZE, "verify", self.unit],
                                capture_output=True, text=True, timeout=60)
        # Dependencies this machine may lack (mariadb.service) are not the unit's fault.
        problems = [line for line in (result.stdout + result.stderr).splitlines()
                    if line.strip() and "mariadb.service" not in line]
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(problems, [])

    def test_verify_fails_on_a_broken_unit(self):
        # The check above can fail: a misspelt setting is reported.
        with open(self.unit) as f:
            text = f.read()
        with open(self.unit, "w") as f:
            f.write(text.replace("ExecStart=", "ExecStrat="))
        result = subprocess.run([SYSTEMD_ANALYZE, "verify", self.unit],
                                capture_output=True, text=True, timeout=60)
        self.assertIn("ExecStrat", result.stdout + result.stderr)

    def test_security_exposure_is_ok(self):
        result = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", self.unit],
                                capture_output=True, text=True, timeout=60)
        match = re.search(r"Overall exposure level for maild\.service: (\d+\.\d+) (\w+)",
                          result.stdout + result.stderr)
        if match is None and "offline" in result.stderr:
            self.skipTest("this systemd-analyze cannot rate a unit offline")
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertLess(float(match.group(1)), 4.0, result.stdout)
        self.assertEqual(match.group(2), "OK", result.stdout)


if __name__ == "__main__":
    unittest.main()
