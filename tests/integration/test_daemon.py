"""maild as a daemon: greeting, timeouts, limits, TLS listeners, shutdown,
reload, detaching, dropping root, systemd notification. Real binary, real sockets."""

import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from maild_harness import (IO_TIMEOUT, MAILD_BIN, Dialogue, Maild, client_tls_context,
                           free_port, make_certificate)


class Greeting(unittest.TestCase):
    def test_smtp_greeting_noop_unknown_quit(self):
        maild = Maild(self).start()
        d = maild.dialogue()
        self.assertEqual(d.expect("220 "), "220 mx.example.test ESMTP maild")
        d.send("NOOP\r\n")
        d.expect("250 2.0.0")
        d.send("noop\r\n")  # verbs are case-insensitive
        d.expect("250 2.0.0")
        d.send("BOGUS\r\n")
        d.expect("500 5.5.1")
        d.send("EXPN staff\r\n")
        d.expect("502 5.5.1")
        d.send("QUIT\r\n")
        d.expect("221 2.0.0")
        self.assertTrue(d.closed())

    def test_submission_listener_greets(self):
        maild = Maild(self).start()
        d = maild.dialogue("submission")
        d.expect("220 mx.example.test")

    def test_submissions_is_implicit_tls(self):
        maild = Maild(self).start()
        d = maild.dialogue("submissions", tls=True)
        d.expect("220 mx.example.test")
        self.assertIn(d.sock.version(), ("TLSv1.2", "TLSv1.3"))
        d.send("QUIT\r\n")
        d.expect("221 ")

    def test_pop3_and_pop3s_greet(self):
        maild = Maild(self).start()
        for service, tls in (("pop3", False), ("pop3s", True)):
            d = maild.dialogue(service, tls=tls)
            self.assertTrue(d.line().startswith("+OK "))
            d.send("CAPA\r\n")
            self.assertTrue(d.line().startswith("+OK"))
            capabilities = []
            while True:
                line = d.line()
                if line == ".":
                    break
                capabilities.append(line)
            self.assertIn("RESP-CODES", capabilities)
            d.send("QUIT\r\n")
            self.assertTrue(d.line().startswith("+OK"))
            self.assertTrue(d.closed())

    def test_without_certificate_tls_listeners_stay_closed(self):
        maild = Maild(self, tls=False).start()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", maild.ports["submissions"]), timeout=2).close()
        self.assertIn("smtp.submissions is not opened", maild.log())

    def test_every_session_line_carries_the_session_id(self):
        maild = Maild(self).start()
        d = maild.dialogue()
        d.expect("220 ")
        d.send("BOGUS\r\nQUIT\r\n")
        d.expect("500 ")
        d.expect("221 ")
        self.assertTrue(d.closed())
        maild.wait_for_log(" disconnect from")
        lines = [l for l in maild.log().splitlines() if " connect from 127.0.0.1" in l]
        session_id = re.search(r" info ([0-9A-Z]{12}) connect from", lines[-1]).group(1)
        session_lines = [l for l in maild.log().splitlines() if session_id in l]
        self.assertGreaterEqual(len(session_lines), 2)  # connect ... disconnect
        self.assertTrue(all(re.search(r" (info|debug|warn) %s " % session_id, l) for l in session_lines))
        self.assertTrue(any(" disconnect from 127.0.0.1" in l for l in session_lines))

    def test_store_is_created_on_first_start(self):
        maild = Maild(self).start()
        self.assertTrue(os.path.exists(maild.store_path))
        self.assertIn("created the store at schema version", maild.log())


class Limits(unittest.TestCase):
    def test_command_line_limit_at_and_past_the_edge(self):
        maild = Maild(self).start()
        d = maild.dialogue()
        d.expect("220 ")
        d.send("NOOP " + "x" * (512 - 7) + "\r\n")  # exactly 512 octets with CRLF
        d.expect("250 ")
        d.send("NOOP " + "x" * (512 - 6) + "\r\n")  # 513 octets
        d.expect("500 5.5.2")
        d.send("NOOP\r\n")  # the session goes on
        d.expect("250 ")

    def test_max_errors_closes_with_421(self):
        maild = Maild(self, "[smtp]\nmax_errors = 3").start()
        d = maild.dialogue()
        d.expect("220 ")
        d.send("BAD1\r\n")
        d.expect("500 ")
        d.send("BAD2\r\n")
        d.expect("500 ")
        d.send("BAD3\r\n")
        d.expect("500 ")
        d.expect("421 4.7.0")
        self.assertTrue(d.closed())

    def test_command_timeout_gives_421_4_4_2(self):
        maild = Maild(self, "[smtp]\ncommand_timeout = 1s").start()
        d = maild.dialogue()
        d.expect("220 ")
        started = time.monotonic()
        d.expect("421 4.4.2")
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(d.closed())

    def test_pop3_idle_timeout_closes(self):
        maild = Maild(self, "[pop3]\nidle_timeout = 1s").start()
        d = maild.dialogue("pop3")
        self.assertTrue(d.line().startswith("+OK"))
        self.assertTrue(d.closed())


class Shutdown(unittest.TestCase):
    def test_sigterm_says_421_to_idle_sessions_and_exits_0(self):
        maild = Maild(self).start()
        d = maild.dialogue()
        d.expect("220 ")
        started = time.monotonic()
        self.assertEqual(maild.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - started, 5.0)  # the grace period is 5 s
        d.expect("421 4.3.2")
        self.assertTrue(d.closed())
        self.assertIn("maild stopped", maild.log())

    def test_sigint_stops_too(self):
        maild = Maild(self).start()
        self.assertEqual(maild.stop(signal.SIGINT), 0)

    def test_listeners_close_at_once(self):
        maild = Maild(self, "[server]\nshutdown_grace = 30s").start()
        # An idle session is told goodbye at once, so the stop is quick even with a long grace.
        d = maild.dialogue("pop3")
        self.assertTrue(d.line().startswith("+OK"))
        started = time.monotonic()
        self.assertEqual(maild.stop(), 0)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertEqual(d.line(), "-ERR [SYS/TEMP] server shutting down, try again later")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", maild.ports["smtp"]), timeout=2).close()


class Reload(unittest.TestCase):
    def test_sighup_reloads_log_level_and_certificate(self):
        maild = Maild(self).start()
        d = maild.dialogue("submissions", tls=True)
        d.expect("220 ")
        self.assertEqual(d.sock.getpeercert()["subject"], ((("commonName", "mx.example.test"),),))
        d.close()
        # A new certificate and a new log level, then SIGHUP.
        folder = tempfile.mkdtemp(dir=maild.dir)
        new_cert, new_key = make_certificate(folder, "renewed.example.test")
        os.replace(new_cert, maild.cert)
        os.replace(new_key, maild.key)
        with open(maild.config_path) as f:
            text = f.read()
        with open(maild.config_path, "w") as f:
            f.write(text.replace("level = info", "level = debug"))
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("SIGHUP: log level debug")
        maild.wait_for_log("SIGHUP: certificate CN = renewed.example.test")
        context = ssl.create_default_context(cafile=maild.cert)
        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", maild.ports["submissions"]),
                                                            timeout=IO_TIMEOUT),
                                   server_hostname="renewed.example.test")
        self.assertEqual(sock.getpeercert()["subject"], ((("commonName", "renewed.example.test"),),))
        sock.close()
        self.assertEqual(maild.stop(), 0)

    def test_sighup_with_a_broken_certificate_keeps_the_old_one(self):
        maild = Maild(self).start()
        with open(maild.cert, "w") as f:
            f.write("not a certificate\n")
        maild.process.send_signal(signal.SIGHUP)
        maild.wait_for_log("keeping the previous certificate")
        d = maild.dialogue("submissions", tls=False)
        d.close()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", maild.ports["submissions"]),
                                                            timeout=IO_TIMEOUT))
        self.assertTrue(Dialogue(sock).line().startswith("220 "))
        sock.close()


class Lifecycle(unittest.TestCase):
    def test_daemon_mode_writes_and_removes_the_pid_file(self):
        maild = Maild(self, "[server]\npid_file = maild.pid")
        result = subprocess.run([MAILD_BIN, "--config", maild.config_path, "--daemon"],
                                capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        pid_file = os.path.join(maild.dir, "maild.pid")
        with open(pid_file) as f:
            pid = int(f.read())
        self.addCleanup(lambda: _kill_quietly(pid))
        maild.wait_ready()  # it serves right away: --daemon returned after start-up
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(_alive(pid))
        self.assertFalse(os.path.exists(pid_file))

    def test_daemon_mode_reports_a_failed_start(self):
        port = free_port()
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        maild = Maild(self, "[smtp]\nlisten = 127.0.0.1:%d" % port)
        result = subprocess.run([MAILD_BIN, "--config", maild.config_path, "--daemon"],
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("smtp.listen 127.0.0.1:%d" % port, maild.log() + result.stderr)

    def test_port_in_use_stops_start_up_with_the_setting_named(self):
        port = free_port()
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        maild = Maild(self, "[smtp]\nlisten = 127.0.0.1:%d" % port)
        maild.start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("cannot start: smtp.listen 127.0.0.1:%d" % port, maild.log())

    @unittest.skipUnless(os.geteuid() == 0, "dropping privileges needs root")
    def test_drops_root_after_binding(self):
        maild = Maild(self, "[server]\nuser = nobody")
        os.chmod(maild.dir, 0o777)  # the store is created after the switch
        maild.start()
        with open("/proc/%d/status" % maild.process.pid) as f:
            uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual({int(u) for u in uids}, {nobody})
        self.assertEqual(os.stat(maild.store_path).st_uid, nobody)
        self.assertEqual(maild.stop(), 0)

    def test_unknown_user_stops_start_up(self):
        maild = Maild(self, "[server]\nuser = no-such-user-maild").start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("server.user: no such user: no-such-user-maild", maild.log())

    def test_systemd_notification(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(folder, ignore_errors=True))
        path = os.path.join(folder, "notify")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(IO_TIMEOUT)
        self.addCleanup(listener.close)
        maild = Maild(self).start(env=dict(os.environ, NOTIFY_SOCKET=path))
        self.assertIn(b"READY=1", listener.recv(4096))
        maild.process.send_signal(signal.SIGTERM)
        self.assertIn(b"STOPPING=1", listener.recv(4096))
        self.assertEqual(maild.process.wait(timeout=20), 0)


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
