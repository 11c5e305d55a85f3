"""A private Dovecot POP3 server for the benchmark: its own dovecot.conf, run
folder, log and index folder in a temp folder, listening on one free 127.0.0.1
port, with passwd-file users, serving the Maildirs that a private Postfix
(postfix_peer.PostfixPeer.receive_into_maildir) delivers into.

Never touches the system's Dovecot (/etc/dovecot, /run/dovecot, port 110).
Needs root: Dovecot's master starts as root, its login processes run as
dovenull and its pop3 processes as the Maildirs' owner (nobody). Every wait is
bounded; cleanup stops this instance's master by its PID only.

Two profiles:
  default  Dovecot's own defaults: a new login process per connection
           (service_count = 1), a new pop3 process per session, no auth cache;
  tuned    process reuse as Dovecot's documentation suggests for performance:
           login and pop3 processes serve many connections (service_count = 0)
           and are started ahead (process_min_avail), plus an auth cache.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from postfix_peer import UNPRIVILEGED, _peer_tmp_root, _process_alive, _world_traversable
from maild_harness import IO_TIMEOUT, START_TIMEOUT, free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
STOP_TIMEOUT = 20.0

PROFILES = ("default", "tuned")


def missing_tools():
    """Why Dovecot cannot run here ('' when it can): for skipping."""
    if os.geteuid() != 0:
        return "a private Dovecot needs root (its master starts as root)"
    for tool in (DOVECOT, DOVEADM):
        if not os.access(tool, os.X_OK):
            return "%s is missing: run scripts/install-deps.sh bench" % tool
    if not os.path.exists("/usr/lib/dovecot/pop3"):
        return "Dovecot's pop3 is missing: run scripts/install-deps.sh bench"
    return ""


def password_hash(password, scheme="SHA512-CRYPT"):
    """The {SCHEME}hash line that doveadm pw makes (fresh salt). -c /dev/null:
    the system's dovecot.conf is neither needed nor read."""
    result = subprocess.run([DOVEADM, "-c", "/dev/null", "pw", "-s", scheme, "-p", password],
                            capture_output=True, text=True, timeout=IO_TIMEOUT,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not result.stdout.startswith("{"):
        raise AssertionError("doveadm pw failed: %s%s" % (result.stdout, result.stderr))
    return result.stdout.strip()


class DovecotPeer:
    """One private Dovecot instance.

        dovecot = DovecotPeer(cleanups, postfix.maildir_base, profile="tuned")
        dovecot.add_user("bob@example.test", "secret")
        dovecot.start()
        poplib.POP3("127.0.0.1", dovecot.port) ...

    Users' mail is <maildir_base>/<domain>/<user>/, as PostfixPeer's
    receive_into_maildir lays it out. `test` only needs addCleanup()."""

    def __init__(self, test, maildir_base, profile="default", password_scheme="SHA512-CRYPT"):
        if profile not in PROFILES:
            raise ValueError("profile must be one of %s" % (PROFILES,))
        self.profile = profile
        self.maildir_base = maildir_base
        self.password_scheme = password_scheme
        # Short: Dovecot's unix sockets live under base_dir (108-byte path limit).
        self.dir = tempfile.mkdtemp(prefix="dc-", dir=_peer_tmp_root())
        _world_traversable(self.dir)
        self.run_dir = os.path.join(self.dir, "run")
        self.index_dir = os.path.join(self.dir, "index")
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        self.passwd_path = os.path.join(self.dir, "passwd")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        nobody = pwd.getpwnam(UNPRIVILEGED)
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        os.makedirs(self.run_dir, mode=0o755)
        os.makedirs(self.index_dir, mode=0o755)
        os.chown(self.index_dir, self.uid, self.gid)
        self.port = free_port()
        self.users = {}  # address -> {SCHEME}hash
        self.process = None
        test.addCleanup(self.cleanup)

    def add_user(self, address, password):
        self.users[address] = password_hash(password, self.password_scheme)

    def _config(self):
        tuned = self.profile == "tuned"
        cores = os.cpu_count() or 1
        lines = [
            "base_dir = %s" % self.run_dir,
            "state_dir = %s/state" % self.dir,
            "instance_name = bench-%d" % self.port,
            "log_path = %s" % self.log_path,
            "info_log_path = %s" % self.log_path,
            "protocols = pop3",
            "listen = 127.0.0.1",
            "ssl = no",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain",
            "mail_location = maildir:%s/%%d/%%n:INDEX=%s/%%d/%%n"
            % (self.maildir_base, self.index_dir),
            "first_valid_uid = %d" % min(self.uid, 500),
            "mail_fsync = optimized",
            "pop3_uidl_format = %08Xu%08Xv",
            "login_greeting = Dovecot bench ready.",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=%s %s" % (self.password_scheme, self.passwd_path),
            "}",
            "userdb {",
            "  driver = static",
            "  args = uid=%d gid=%d home=%s/%%d/%%n" % (self.uid, self.gid, self.maildir_base),
            "}",
            "service pop3-login {",
            "  inet_listener pop3 {",
            "    address = 127.0.0.1",
            "    port = %d" % self.port,
            "  }",
            "  inet_listener pop3s {",
            "    port = 0",
            "  }",
        ]
        if tuned:
            # High-performance mode: each login process serves many clients.
            lines += ["  service_count = 0", "  process_min_avail = %d" % cores]
        lines.append("}")
        if tuned:
            lines += [
                "service pop3 {",
                "  service_count = 0",
                "  process_min_avail = %d" % cores,
                "}",
                "auth_cache_size = 10M",
                "auth_cache_ttl = 1 hour",
                "auth_cache_negative_ttl = 1 hour",
            ]
        # The benchmark's clients connect from many loopback addresses at once.
        lines += ["mail_max_userip_connections = 1000"]
        return "\n".join(lines) + "\n"

    def start(self):
        with open(self.passwd_path, "w") as f:
            for address, hashed in self.users.items():
                f.write("%s:%s\n" % (address, hashed))
        os.chmod(self.passwd_path, 0o644)
        with open(self.config_path, "w") as f:
            f.write(self._config())
        # -F: stay in the foreground, so the PID is ours and nothing daemonizes.
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", self.config_path],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("dovecot exited %s: %s\n%s" % (
                    self.process.returncode, self.process.stderr.read().decode(errors="replace"),
                    self.log()[-3000:]))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    s.settimeout(IO_TIMEOUT)
                    greeting = s.recv(512)
                    if greeting.startswith(b"+OK"):
                        s.sendall(b"QUIT\r\n")
                        return self
                    last = greeting
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("dovecot did not greet on port %d within %ss (last: %r)\n%s"
                             % (self.port, START_TIMEOUT, last, self.log()[-3000:]))

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def stop(self, timeout=STOP_TIMEOUT):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if _process_alive(self.process.pid):
                self.process.kill()
            self.process.wait(timeout=IO_TIMEOUT)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self.process is not None and self.process.stderr:
                self.process.stderr.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
