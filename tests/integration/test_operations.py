"""maild operated as a service: the store's owner and modes, the start-up checks,
certificate renewal after the privilege drop, the log file under logrotate, the
pid file, journald priorities and SIGHUP's report of changed keys. Real binaries;
the tests that switch users run as root (as CI does) and use `nobody`."""

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from maild_harness import (IO_TIMEOUT, MAILCTL_BIN, MAILD_BIN, Maild, distinct_message,
                           mailctl_ok, make_certificate, smtp_send)

ROOT = os.geteuid() == 0
needs_root = unittest.skipUnless(ROOT, "switching users needs root")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 ")


def nobody():
    return pwd.getpwnam("nobody")


def give_folder_to_nobody(maild):
    """The test's folder becomes nobody's, as /var/lib/maild is maild's."""
    os.chown(maild.dir, nobody().pw_uid, nobody().pw_gid)
    os.chmod(maild.dir, 0o750)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def wait_until(predicate, what, timeout=IO_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("not within %ss: %s" % (timeout, what))


def served_subject(maild, service="submissions"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((maild.host, maild.ports[service]), timeout=IO_TIMEOUT) as raw:
        with context.wrap_socket(raw) as sock:
            der = sock.getpeercert(binary_form=True)
    text = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                          input=der, capture_output=True, check=True).stdout.decode()
    return text.strip()


class StoreOwnership(unittest.TestCase):
    def test_a_new_store_is_private(self):
        maild = Maild(self).start()
        self.assertEqual(mode(maild.store_path), 0o600)
        self.assertEqual(maild.stop(), 0)

    def test_mailctl_creates_the_store_private_in_a_private_folder(self):
        maild = Maild(self, "[store]\npath = data/deeper/mail.db")
        mailctl_ok(maild, "db", "migrate")
        store = os.path.join(maild.dir, "data", "deeper", "mail.db")
        self.assertEqual(mode(store), 0o600)
        self.assertEqual(mode(os.path.dirname(store)), 0o750)
        self.assertEqual(mode(os.path.join(maild.dir, "data")), 0o750)

    @needs_root
    def test_mailctl_as_root_gives_the_store_to_the_service_user_and_maild_serves(self):
        maild = Maild(self, "[server]\nuser = nobody\n[store]\npath = data/mail.db")
        give_folder_to_nobody(maild)
        # mailctl as root, as an administrator would after installing.
        mailctl_ok(maild, "db", "migrate")
        mailctl_ok(maild, "domain", "add", "example.test")
        mailctl_ok(maild, "user", "add", "bob@example.test", input="secret\n")
        store = os.path.join(maild.dir, "data", "mail.db")
        self.assertEqual(os.stat(store).st_uid, nobody().pw_uid)
        self.assertEqual(os.stat(os.path.dirname(store)).st_uid, nobody().pw_uid)
        for companion in (store + "-wal", store + "-shm"):
            if os.path.exists(companion):
                self.assertEqual(os.stat(companion).st_uid, nobody().pw_uid, companion)
        maild.store_path = store
        maild.start()
        # The bug this guards against: "ready", then 451 for every message.
        smtp_send(maild, ["bob@example.test"], distinct_message("owned"))
        self.assertEqual(maild.stop(), 0)

    @needs_root
    def test_a_store_maild_cannot_write_stops_start_up_naming_path_and_permission(self):
        maild = Maild(self, "[server]\nuser = nobody")
        give_folder_to_nobody(maild)
        # Made by root without [server] user in its config: root's, as before this fix.
        subprocess.run([MAILCTL_BIN, "--config", maild.config_path, "db", "migrate"],
                       capture_output=True, check=True, env=dict(os.environ))
        os.chown(maild.store_path, 0, 0)
        os.chmod(maild.store_path, 0o644)
        maild.start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("store.path: the store %s (owner root, mode 0644) is not writable by maild "
                      "running as nobody: Permission denied" % maild.store_path, maild.output())

    @needs_root
    def test_a_store_folder_maild_cannot_write_stops_start_up(self):
        maild = Maild(self, "[server]\nuser = nobody\n[store]\npath = locked/mail.db")
        os.chmod(maild.dir, 0o755)
        locked = os.path.join(maild.dir, "locked")
        os.mkdir(locked, 0o755)
        maild.start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("store.path: the store's folder %s (owner root, mode 0755) is not writable "
                      "by maild running as nobody: Permission denied" % locked, maild.output())


class CheckConfig(unittest.TestCase):
    def check(self, maild, prefix=()):
        return subprocess.run([*prefix, MAILD_BIN, "--config", maild.config_path, "--check-config"],
                              capture_output=True, text=True, timeout=60)

    def test_a_missing_service_user(self):
        maild = Maild(self, "[server]\nuser = no-such-user-maild")
        result = self.check(maild)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("server.user: no such user: no-such-user-maild", result.stderr)

    def test_an_existing_service_user_passes(self):
        maild = Maild(self, "[server]\nuser = nobody")
        result = self.check(maild)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_an_unreadable_key_is_named_with_the_reason(self):
        maild = Maild(self)
        if ROOT:
            # Root reads every file: check as root without the capabilities that let it,
            # a key of another user's (as under the unit, whose root lacks them too).
            if not shutil.which("setpriv"):
                self.skipTest("setpriv (util-linux) is not installed")
            os.chown(maild.key, nobody().pw_uid, nobody().pw_gid)
            os.chmod(maild.key, 0o600)
            result = self.check(maild, ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
                                        "--"])
        else:
            os.chmod(maild.key, 0)
            result = self.check(maild)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("tls.key %s: Permission denied" % maild.key, result.stderr)

    def test_a_missing_certificate_is_named_with_the_reason(self):
        maild = Maild(self)
        os.remove(maild.cert)
        result = self.check(maild)
        self.assertEqual(result.returncode, 2)
        self.assertIn("tls.cert %s: No such file or directory" % maild.cert, result.stderr)


class Renewal(unittest.TestCase):
    @needs_root
    def test_sighup_after_the_drop_reads_a_root_only_key(self):
        maild = Maild(self, "[server]\nuser = nobody")
        give_folder_to_nobody(maild)
        # certbot's layout: a folder and a key only root may read.
        live = tempfile.mkdtemp(dir=maild.dir)
        os.chmod(live, 0o700)
        cert, key = make_certificate(live, "first.example.test")
        os.chmod(key, 0o600)
        with open(maild.config_path) as f:
            text = f.read()
        with open(maild.config_path, "w") as f:
            f.write(text.replace("cert = cert.pem", "cert = " + cert).replace("key = key.pem", "key = " + key))
        maild.start()
        self.assertIn("first.example.test", served_subject(maild))
        renewed = tempfile.mkdtemp(dir=live)
        new_cert, new_key = make_certificate(renewed, "renewed.example.test")
        os.chmod(new_key, 0o600)
        os.replace(new_cert, cert)
        os.replace(new_key, key)
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("SIGHUP: certificate CN = renewed.example.test")
        self.assertIn("renewed.example.test", served_subject(maild))
        # A failed read names the file and the reason, and the served certificate stays.
        os.remove(key)
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("SIGHUP: tls.key %s: No such file or directory (keeping the previous "
                           "certificate)" % key)
        self.assertIn("renewed.example.test", served_subject(maild))
        self.assertEqual(maild.stop(), 0)

    def test_an_unreadable_key_on_sighup_names_the_file_and_errno(self):
        maild = Maild(self).start()
        os.remove(maild.key)
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("SIGHUP: tls.key %s: No such file or directory" % maild.key)


class LogFile(unittest.TestCase):
    def rotate_and_signal(self, maild, sig, name):
        os.rename(maild.log_path, maild.log_path + ".1")
        maild.process.send_signal(sig)
        wait_until(lambda: "%s: log file reopened" % name in maild.log(), "a new log file")
        smtp = maild.dialogue()
        smtp.expect("220 ")
        smtp.send("QUIT\r\n")
        smtp.expect("221 ")
        with open(maild.log_path + ".1") as f:
            old = f.read()
        self.assertNotIn("log file reopened", old)

    def test_sigusr1_reopens_the_log_file_after_a_rename(self):
        maild = Maild(self).start()
        self.rotate_and_signal(maild, signal.SIGUSR1, "SIGUSR1")
        self.assertEqual(maild.stop(), 0)
        self.assertIn("maild stopped", maild.log())

    def test_sighup_reopens_the_log_file_too(self):
        maild = Maild(self).start()
        self.rotate_and_signal(maild, signal.SIGHUP, "SIGHUP")
        self.assertEqual(maild.stop(), 0)

    @needs_root
    def test_after_the_drop_a_log_folder_only_root_can_write(self):
        maild = Maild(self, "[server]\nuser = nobody\n[log]\nfile = logs/maild.log")
        give_folder_to_nobody(maild)
        logs = os.path.join(maild.dir, "logs")
        os.mkdir(logs, 0o700)
        maild.log_path = os.path.join(logs, "maild.log")
        maild.start()
        self.rotate_and_signal(maild, signal.SIGUSR1, "SIGUSR1")
        self.assertEqual(maild.stop(), 0)

    def test_lines_carry_utc_timestamps_with_their_offset(self):
        maild = Maild(self).start()
        self.assertEqual(maild.stop(), 0)
        lines = maild.log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, TIMESTAMP)

    def test_one_line_per_entry_at_debug_level(self):
        maild = Maild(self, "[log]\nlevel = trace").start()
        d = maild.dialogue()
        d.expect("220 ")
        d.send("EHLO a\rb.example\r\n")  # a bare CR inside a command reaches the log
        d.line()
        d.send("QUIT\r\n")
        d.close()
        self.assertEqual(maild.stop(), 0)
        for line in maild.log().splitlines():
            self.assertRegex(line, TIMESTAMP)


class Journal(unittest.TestCase):
    def start_to_file(self, journal_stream):
        maild = Maild(self, "[log]\nfile =")
        err_path = os.path.join(maild.dir, "stderr")
        err = open(err_path, "wb")
        self.addCleanup(err.close)
        status = os.fstat(err.fileno())
        env = dict(os.environ)
        env["JOURNAL_STREAM"] = journal_stream(status)
        maild.process = subprocess.Popen([MAILD_BIN, "--config", maild.config_path],
                                         stdout=subprocess.DEVNULL, stderr=err, env=env)
        maild.wait_ready()
        with open(maild.config_path) as f:
            text = f.read()
        with open(maild.config_path, "w") as f:
            f.write(text.replace("[smtp]\n", "[smtp]\nmax_recipients = 7\n"))
        maild.process.send_signal(signal.SIGHUP)  # a warning: changed keys
        wait_until(lambda: "max_recipients" in read(err_path), "the SIGHUP warning")
        self.assertEqual(maild.stop(), 0)
        with open(err_path) as f:
            return f.read().splitlines()

    def test_lines_carry_their_syslog_priority_when_stderr_is_the_journal(self):
        lines = self.start_to_file(lambda s: "%d:%d" % (s.st_dev, s.st_ino))
        self.assertTrue(all(re.match(r"^<[0-7]>\d{4}-", line) for line in lines), lines)
        self.assertTrue(any(l.startswith("<6>") and " info maild ready" in l for l in lines), lines)
        self.assertTrue(any(l.startswith("<4>") and "max_recipients" in l for l in lines), lines)

    def test_no_priority_when_journal_stream_names_another_file(self):
        lines = self.start_to_file(lambda s: "%d:%d" % (s.st_dev, s.st_ino + 1))
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, TIMESTAMP)


class ChangedKeys(unittest.TestCase):
    def test_sighup_names_the_keys_that_need_a_restart(self):
        maild = Maild(self).start()
        with open(maild.config_path) as f:
            text = f.read()
        with open(maild.config_path, "w") as f:
            f.write(text.replace("level = info", "level = debug").replace("threads = 2", "threads = 3")
                    .replace("[smtp]\n", "[smtp]\nmax_recipients = 7\n"))
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("SIGHUP: log level debug")
        maild.wait_for_log("used only after a restart: server.threads, smtp.max_recipients\n")
        # Unchanged file: nothing to report.
        with open(maild.config_path, "w") as f:
            f.write(text)
        maild.process.send_signal(signal.SIGHUP)
        wait_until(lambda: maild.log().count("SIGHUP: log level info") == 1, "the second reload")
        time.sleep(0.2)
        self.assertEqual(maild.log().count("used only after a restart"), 1)
        self.assertEqual(maild.stop(), 0)


class PidFile(unittest.TestCase):
    def run_detached(self, maild, pid_file):
        result = subprocess.run([MAILD_BIN, "--config", maild.config_path, "--daemon"],
                                capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(pid_file) as f:
            pid = int(f.read())
        self.addCleanup(lambda: _kill_quietly(pid))
        maild.wait_ready()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not _alive(pid), "maild's exit", timeout=20)
        wait_until(lambda: not os.path.exists(pid_file), "the pid file's removal", timeout=5)

    @needs_root
    def test_removed_at_exit_from_a_folder_only_root_can_write(self):
        maild = Maild(self, "[server]\nuser = nobody\npid_file = run/maild.pid")
        give_folder_to_nobody(maild)
        run = os.path.join(maild.dir, "run")
        os.mkdir(run, 0o755)  # as /run/maild: root's
        self.run_detached(maild, os.path.join(run, "maild.pid"))

    def test_removed_at_exit(self):
        maild = Maild(self, "[server]\npid_file = maild.pid")
        self.run_detached(maild, os.path.join(maild.dir, "maild.pid"))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill_quietly(pid):
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
