"""Runs the real maild binary for integration tests: a temp folder with its
own mail.conf, store and certificate, free loopback ports, and a stop by PID.
Tests read like transcripts through Dialogue.send()/expect().

The store is SQLite in that folder, or, with MAILD_TEST_BACKEND=mysql, a
database of its own on the MariaDB server whose coordinates are in the file
MAILD_TEST_MARIADB names (the ctest fixture `mariadb`, see
mariadb_fixture.py), dropped at cleanup. A test may also pass its own
MysqlStore (e.g. on a private MariaDB server)."""

import atexit
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

MAILD_BIN = os.environ.get("MAILD_BIN", "maild")
BACKEND = os.environ.get("MAILD_TEST_BACKEND", "sqlite")  # or "mysql"
MARIADB_STATE = os.environ.get("MAILD_TEST_MARIADB")
MAILCTL_BIN = os.environ.get("MAILCTL_BIN", "mailctl")
TMP_ROOT = os.environ.get("MAILD_TEST_TMP") or None

# Every wait in these tests is bounded.
START_TIMEOUT = 30.0
IO_TIMEOUT = 10.0
# Start-ups retried when a chosen port was taken in the meantime.
START_ATTEMPTS = 3


# A body that exercises transparency and line handling: dot-leading lines, a
# lone ".", a tab, trailing spaces, "From " at a line start, a 1000-octet line.
TRICKY_BODY = (
    b"First line.\r\n"
    b".A line that starts with a dot (stuffed on the wire).\r\n"
    b"..Two dots.\r\n"
    b".\r\n"
    b"\tTabbed, and trailing spaces   \r\n"
    b"\r\n"
    b"From the start of a line.\r\n"
    + b"x" * 998 + b"\r\n"
    b"Last line.\r\n"
)


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's choice)."""
    return free_ports(1, host)[0]


def free_ports(count, host="127.0.0.1"):
    """`count` distinct free ports: all probe sockets stay bound until every
    port is chosen, so the kernel cannot hand out one port twice."""
    probes = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            probes.append(s)
        return [s.getsockname()[1] for s in probes]
    finally:
        for s in probes:
            s.close()


def make_certificate(folder, common_name="mx.example.test", key_type="ec", days=90):
    """A self-signed certificate and key, as the quick start makes them (EC), or RSA."""
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    new_key = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key_type == "ec"
               else ["-newkey", "rsa:2048"])
    subprocess.run(
        ["openssl", "req", "-x509", *new_key,
         "-nodes", "-keyout", key, "-out", cert, "-days", str(days), "-subj", "/CN=" + common_name,
         "-addext", "subjectAltName=DNS:" + common_name],
        check=True, capture_output=True, timeout=60)
    return cert, key


class Dialogue:
    """A line-based client conversation with deadlines: send() and expect()."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(IO_TIMEOUT)
        self.buffer = b""

    @classmethod
    def connect(cls, port, host="127.0.0.1", tls_context=None):
        sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        if tls_context is not None:
            sock = tls_context.wrap_socket(sock, server_hostname="mx.example.test")
        return cls(sock)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """The next CRLF-terminated line, without the CRLF ('' at EOF)."""
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest.decode(errors="replace")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """A whole SMTP reply: its lines, ending with the one without '-'."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def expect(self, prefix):
        """The next SMTP reply, checked to start with prefix; returns its last line."""
        lines = self.reply()
        last = lines[-1]
        if not last.startswith(prefix):
            raise AssertionError("expected %r, got %r" % (prefix, lines))
        return last

    def closed(self):
        """True when the server closed the connection (within the timeout)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_tls_context(cert):
    context = ssl.create_default_context(cafile=cert)
    return context


class MysqlStore:
    """Where a maild's MySQL store lives: a server (host, port, the maild
    user's credentials) and a database on it."""

    def __init__(self, host, port, user, password, database):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.database = database

    @classmethod
    def shared(cls):
        """A new database on the run's shared MariaDB server (MAILD_TEST_MARIADB)."""
        if not MARIADB_STATE:
            raise AssertionError("MAILD_TEST_BACKEND=mysql needs MAILD_TEST_MARIADB (the "
                                 "state file of mariadb_fixture.py)")
        with open(MARIADB_STATE) as f:
            state = json.load(f)
        return cls(state["host"], state["port"], state["user"], state["password"],
                   "maild_it%s" % secrets.token_hex(6))

    def endpoint(self):
        return "%s:%d" % (self.host, self.port)

    def sql(self, statement, database=None):
        """Runs statement as the maild user over TCP; returns its rows (tab-separated)."""
        command = [shutil.which("mariadb") or "/usr/bin/mariadb", "--no-defaults",
                   "--protocol=tcp", "-h", self.host, "-P", str(self.port), "--user=" + self.user,
                   "--password=" + self.password, "--connect-timeout=5", "--batch",
                   "--skip-column-names", "--default-character-set=utf8mb4", "-e", statement]
        if database:
            command.append(database)
        result = subprocess.run(command, capture_output=True, text=True, timeout=IO_TIMEOUT * 3,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError("SQL on %s failed: %s\n%s" % (self.endpoint(), result.stderr, statement))
        return result.stdout

    def drop(self):
        try:
            self.sql("DROP DATABASE IF EXISTS `%s`" % self.database)
        except (AssertionError, subprocess.TimeoutExpired, OSError):
            pass  # the server (and with it the database) may be gone already


class Maild:
    """One maild process with its own folder, config and free ports."""

    def __init__(self, test, config_extra="", tls=True, hostname="mx.example.test", mysql=None,
                 host="127.0.0.1"):
        self.test = test
        self.host = host  # the loopback address (127.x) every listener binds
        self.dir = tempfile.mkdtemp(prefix="maild-it-", dir=_tmp_root())
        # mysql: a MysqlStore; by default the environment chooses the backend.
        if mysql is None and BACKEND == "mysql":
            mysql = MysqlStore.shared()
        self.mysql = mysql
        self.hostname = hostname
        names = ("smtp", "submission", "submissions", "pop3", "pop3s")
        self.ports = dict(zip(names, free_ports(len(names), host)))
        self.cert = self.key = None
        if tls:
            self.cert, self.key = make_certificate(self.dir, hostname)
        self.config_path = os.path.join(self.dir, "mail.conf")
        self.log_path = os.path.join(self.dir, "maild.log")
        self.store_path = os.path.join(self.dir, "mail.db")
        self.write_config(config_extra)
        self.process = None
        self.dialogues = []
        test.addCleanup(self.cleanup)

    def write_config(self, extra=""):
        p = self.ports
        sections = {
            "server": {"hostname": self.hostname, "threads": "2", "shutdown_grace": "5s"},
            "log": {"level": "info", "file": "maild.log"},
            "store": {"path": "mail.db", "workers": "2"},
            "mysql": {},
            "smtp": {"listen": "%s:%d" % (self.host, p["smtp"]),
                     "submission": "%s:%d" % (self.host, p["submission"]),
                     "submissions": "%s:%d" % (self.host, p["submissions"])},
            "pop3": {"listen": "%s:%d" % (self.host, p["pop3"]),
                     "pop3s": "%s:%d" % (self.host, p["pop3s"])},
            "tls": {"cert": "cert.pem", "key": "key.pem"} if self.cert else {},
        }
        if self.mysql:
            password_file = os.path.join(self.dir, "mysql-password")
            with open(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(self.mysql.password + "\n")
            # [store] path's folder is maild's state folder (its GTID position) with MySQL too.
            sections["store"] = {"backend": "mysql", "path": "mail.db", "workers": "2"}
            sections["mysql"] = {"endpoints": self.mysql.endpoint(), "user": self.mysql.user,
                                 "password_file": "mysql-password",  # relative to mail.conf
                                 "database": self.mysql.database, "semi_sync": "false"}
        # extra: "[section]\nkey = value" lines that override or add keys.
        section = None
        for raw in extra.strip().splitlines():
            raw = raw.strip()
            if not raw:
                continue
            if raw.startswith("["):
                section = raw.strip("[]")
                sections.setdefault(section, {})
            else:
                key, value = (part.strip() for part in raw.split("=", 1))
                sections[section][key] = value
        with open(self.config_path, "w") as f:
            for name, keys in sections.items():
                f.write("[%s]\n" % name)
                for key, value in keys.items():
                    f.write("%s = %s\n" % (key, value))
                f.write("\n")

    def start(self, *args, wait=True, env=None):
        """Starts maild; with wait, until it greets. Between choosing free ports and
        maild binding them, a test running in parallel may take one: then the
        ports are chosen again (read self.ports after start(), not before)."""
        for attempt in range(START_ATTEMPTS):
            self.process = subprocess.Popen(
                [MAILD_BIN, "--config", self.config_path, *args],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except AssertionError as failure:
                if attempt + 1 == START_ATTEMPTS or "Address already in use" not in str(failure):
                    raise
                self._choose_ports_again()
        return self

    def _choose_ports_again(self):
        """New free ports, written over the old ones in the config file as it is now."""
        with open(self.config_path) as f:
            text = f.read()
        fresh = free_ports(len(self.ports), self.host)
        # One pass: a fresh port may equal an old one, and replacing one by one would
        # then move two listeners (and self.ports would name the wrong one).
        moved = {old: port for old, port in zip(self.ports.values(), fresh)}
        text = re.sub(r"(?m)^(\w+ = %s:)(\d+)$" % re.escape(self.host),
                      lambda m: m.group(1) + str(moved.get(int(m.group(2)), int(m.group(2)))), text)
        for name, port in zip(list(self.ports), fresh):
            self.ports[name] = port
        with open(self.config_path, "w") as f:
            f.write(text)

    def wait_ready(self, port=None):
        """Until the SMTP listener greets (or the process dies, or START_TIMEOUT)."""
        port = port or self.ports["smtp"]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError("maild exited with %s: %s" % (self.process.returncode, self.output()))
            try:
                with socket.create_connection((self.host, port), timeout=1.0) as s:
                    s.settimeout(IO_TIMEOUT)
                    if s.recv(512).startswith(b"220 "):
                        s.sendall(b"QUIT\r\n")
                        while s.recv(512):  # until maild closes: its place is free then
                            pass
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("maild did not greet within %ss: %s" % (START_TIMEOUT, self.output()))

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signals maild and waits for it; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError("maild did not stop within %ss" % timeout)
        return self.process.returncode

    def output(self):
        text = ""
        if self.process is not None and self.process.poll() is not None:
            out, err = self.process.communicate(timeout=10)
            text += (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
        return text + self.log()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            time.sleep(0.05)
        raise AssertionError("%r not in the log within %ss:\n%s" % (needle, timeout, self.log()[-4000:]))

    def dialogue(self, service="smtp", tls=False):
        context = client_tls_context(self.cert) if tls else None
        dialogue = Dialogue.connect(self.ports[service], host=self.host, tls_context=context)
        self.dialogues.append(dialogue)
        return dialogue

    def admitted_dialogue(self, service="smtp", greeting="220 ", timeout=IO_TIMEOUT):
        """A connection that got its greeting, retried while earlier sessions
        (e.g. wait_ready's) are still releasing their places."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.dialogue(service)
            line = d.line()
            if line.startswith(greeting):
                return d
            d.close()
            if time.monotonic() > deadline:
                raise AssertionError("no greeting on %s: %r" % (service, line))
            time.sleep(0.05)

    def mailctl(self, *args, input=None):
        return subprocess.run([MAILCTL_BIN, "--config", self.config_path, *args],
                              input=input, capture_output=True, text=True, timeout=60)

    def cleanup(self):
        for dialogue in self.dialogues:
            dialogue.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process is not None:
            for stream in (self.process.stdout, self.process.stderr):
                if stream:
                    stream.close()
        if self.mysql:
            self.mysql.drop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _tmp_root():
    if TMP_ROOT:
        os.makedirs(TMP_ROOT, exist_ok=True)
    return TMP_ROOT


# ---- SMTP tests: accounts in the store and stored mail, through mailctl ----

def mailctl_ok(maild, *args, input=None):
    """Runs maild.mailctl(*args); fails the test unless it exits 0; returns stdout."""
    result = maild.mailctl(*args, input=input)
    if result.returncode != 0:
        raise AssertionError("mailctl %s failed (%d): %s" % (" ".join(args), result.returncode, result.stderr))
    return result.stdout


_provisioned_stores = {}  # (domains, users, password) -> a store file made once, copied per test


def provision(maild, users=(), domains=("example.test",), password="secret"):
    """Creates maild's store (db migrate), the domains and a mailbox for each
    address in users, all with password. Call it before start(). The first
    store made for some domains, users and password is kept for this test
    run and copied for the next ones: mailctl and password hashing are slow
    under the sanitizers."""
    key = (tuple(domains), tuple(users), password)
    template = None if maild.mysql else _provisioned_stores.get(key)
    if template is not None:
        shutil.copyfile(template, maild.store_path)
        return
    mailctl_ok(maild, "db", "migrate")
    for domain in domains:
        mailctl_ok(maild, "domain", "add", domain)
    for address in users:
        mailctl_ok(maild, "user", "add", address, input=password + "\n")
    if maild.mysql or os.path.exists(maild.store_path + "-wal"):
        return  # not a single self-contained file: no template
    if not _provisioned_stores:
        folder = tempfile.mkdtemp(prefix="maild-it-stores-", dir=_tmp_root())
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _provisioned_stores[None] = folder
    template = os.path.join(_provisioned_stores[None], "%d.db" % len(_provisioned_stores))
    shutil.copyfile(maild.store_path, template)
    _provisioned_stores[key] = template


def deliveries(maild, mailbox=None, last=100000):
    """mailctl --json mail list: every delivery, newest first (a list of dicts)."""
    args = ["--json", "mail", "list", "--last", str(last)]
    if mailbox:
        args += ["--mailbox", mailbox]
    return json.loads(mailctl_ok(maild, *args))


def export_message(maild, delivery_id):
    """mailctl mail export ID: the stored message's exact bytes (trace lines + content)."""
    result = subprocess.run([MAILCTL_BIN, "--config", maild.config_path, "mail", "export", str(delivery_id)],
                            capture_output=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError("mailctl mail export %s failed: %s" % (delivery_id, result.stderr.decode()))
    return result.stdout


def split_trace(message):
    """(trace, content) of a stored message: trace is the leading Return-Path and
    Received fields (folded lines included) that maild or a relay added,
    content the rest, byte for byte."""
    position = 0
    while True:
        line_end = message.find(b"\r\n", position)
        if line_end < 0 or not message[position:line_end].lower().startswith((b"return-path:", b"received:")):
            return message[:position], message[position:]
        position = line_end + 2
        while message[position:position + 1] in (b" ", b"\t"):
            position = message.index(b"\r\n", position) + 2


# ---- POP3 tests: mail in by SMTP (smtplib), out by POP3 ----

_message_numbers = itertools.count(1)


def distinct_message(subject, body=b"Hello.\r\n", to="bob@example.test"):
    """A message (CRLF lines) that no other in this test run has: maild stores
    identical content once per mailbox, so each carries its own Message-ID."""
    number = next(_message_numbers)
    return (b"From: Sender <sender@remote.test>\r\n"
            b"To: <%s>\r\n"
            b"Subject: %s\r\n"
            b"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
            b"Message-ID: <pop3-%d-%d@remote.test>\r\n"
            b"\r\n" % (to.encode(), subject.encode(), os.getpid(), number)) + body


def smtp_send(maild, recipients, *messages, sender="sender@remote.test"):
    """Sends each message to maild's MX listener with smtplib, in one session;
    returns when the last got its 250 (then it is stored and visible)."""
    with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="client.test",
                      timeout=IO_TIMEOUT) as client:
        for message in messages:
            refused = client.sendmail(sender, list(recipients), message)
            if refused:
                raise AssertionError("recipients refused: %r" % refused)


def restart(maild):
    """Stops maild with SIGTERM (checking exit 0) and starts it again on the same
    folder, config and ports; the stopped process's pipes are closed."""
    code = maild.stop()
    if code != 0:
        raise AssertionError("maild exited %s: %s" % (code, maild.output()))
    for stream in (maild.process.stdout, maild.process.stderr):
        if stream:
            stream.close()
    return maild.start()
