"""Real Postfix as a third-party peer for integration tests: a private Postfix
instance (its own config, queue, data folder and log, on a free 127.0.0.1
port) that relays to maild through a transport map or receives from it into a
Maildir; Postfix's smtp-sink and smtp-source; and swaks.

Never touches the system's Postfix (/etc/postfix, /var/spool/postfix, port 25)
and never reaches a non-loopback address: the only ways out of a peer are the
transport-map entries a test adds, and everything else fails with error:.
Needs root (Postfix's master starts as root and drops to the postfix user).
Like maild_harness, every wait is bounded and cleanup stops, by PID, only what
a test started."""

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from maild_harness import IO_TIMEOUT, START_TIMEOUT, _tmp_root, free_port

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SWAKS = "/usr/bin/swaks"

STOP_TIMEOUT = 20.0
# The unprivileged user that smtp-sink runs as and that owns delivered Maildirs.
UNPRIVILEGED = "nobody"


def missing_tools():
    """Why these peers cannot run here ('' when they can): for skipTest."""
    if os.geteuid() != 0:
        return "Postfix peers need root (the master starts as root)"
    for tool in (POSTFIX, POSTQUEUE, SMTP_SINK, SMTP_SOURCE, SWAKS):
        if not os.access(tool, os.X_OK):
            return "%s is missing: run scripts/install-deps.sh test" % tool
    return ""


def wait_for_greeting(port, host="127.0.0.1", timeout=START_TIMEOUT, alive=None):
    """Until host:port answers 220 (then QUIT); alive() False means give up."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError("the server on port %d died before greeting" % port)
        try:
            with socket.create_connection((host, port), timeout=1.0) as s:
                s.settimeout(IO_TIMEOUT)
                greeting = s.recv(512)
                if greeting.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return greeting.decode(errors="replace").strip()
                last = greeting
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("no 220 on %s:%d within %ss (last: %r)" % (host, port, timeout, last))


def _process_alive(pid):
    """True while pid runs; a zombie (no reaper in some containers) counts as dead."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _world_traversable(folder):
    # Postfix's daemons and smtp-sink drop root; they must reach their files.
    os.chmod(folder, 0o755)


def _peer_tmp_root():
    """Where peers make their folders: MAILD_TEST_TMP when the postfix and
    nobody users can reach it (not under /root, say), else the system's temp."""
    for root in (_tmp_root(), tempfile.gettempdir(), "/tmp"):
        if root is None:
            continue
        path, reachable = os.path.realpath(root), True
        while reachable:
            reachable = bool(os.stat(path).st_mode & 0o001)
            if path == "/":
                break
            path = os.path.dirname(path)
        if reachable:
            return root
    raise AssertionError("no temp folder that Postfix's unprivileged users can reach")


class PostfixPeer:
    """One private Postfix instance in a temp folder.

        peer = PostfixPeer(self)                  # self: the unittest.TestCase
        peer.relay_to("example.test", "127.0.0.1", maild.ports["smtp"])
        peer.start()
        smtplib.SMTP("127.0.0.1", peer.port) ... sendmail(...)
        peer.wait_for_log(r"status=sent")

    hostname must differ from the greeting name of whatever it relays to, or
    Postfix refuses with "mail for ... loops back to myself"."""

    def __init__(self, test, hostname="peer.test", main_cf_extra=None, host="127.0.0.1", port=None):
        self.test = test
        self.hostname = hostname
        self.host = host  # the loopback address it listens on (127.0.0.x)
        self.dir = tempfile.mkdtemp(prefix="postfix-peer-", dir=_peer_tmp_root())
        _world_traversable(self.dir)
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.maildir_base = os.path.join(self.dir, "maildirs")
        self.log_path = os.path.join(self.dir, "maillog")
        for folder in (self.config_dir, self.queue_dir, self.data_dir):
            os.makedirs(folder, mode=0o755)
        # Postfix wants the data folder (master.lock, caches) owned by mail_owner.
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        self.port = port or free_port(host)
        self.transports = {}        # domain -> "smtp:[host]:port"
        self.mailboxes = {}         # "user@domain" -> "domain/user/" under maildir_base
        self.mailbox_domains = []
        self.main_cf_extra = dict(main_cf_extra or {})
        self.started = False
        self.master_pid = None
        test.addCleanup(self.cleanup)

    # -- configuration ---------------------------------------------------

    def relay_to(self, domain, host, port):
        """Mail for domain goes to host:port by SMTP, with no MX lookup."""
        self.transports[domain] = "smtp:[%s]:%d" % (host, port)
        self._write_config()

    def receive_into_maildir(self, domain, users):
        """Accepts mail for user@domain (each of users) into a Maildir under the
        temp folder; read it back with maildir_messages()."""
        self.mailbox_domains.append(domain)
        for user in users:
            self.mailboxes["%s@%s" % (user, domain)] = "%s/%s/" % (domain, user)
        self._write_config()

    def set(self, **params):
        """Extra or overriding main.cf parameters (e.g. smtp_tls_security_level="may")."""
        self.main_cf_extra.update(params)
        self._write_config()

    def _main_cf(self):
        nobody = pwd.getpwnam(UNPRIVILEGED)
        params = {
            "compatibility_level": "3.6",
            "config_directory": self.config_dir,
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            # Postlogd (Postfix >= 3.4) writes the log; no syslog needed.
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "syslog_name": "postfix-peer",
            "myhostname": self.hostname,
            "mydomain": "test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            # Postfix only knows 127.0.0.1 as an interface address; the smtpd
            # listener in master.cf names its own address (self.host).
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "smtp_bind_address": "127.0.0.1",
            # Nothing leaves except through the transport map.
            "transport_maps": "texthash:%s/transport" % self.config_dir,
            "default_transport": "error:no delivery outside the test transport map",
            "relay_transport": "error:no delivery outside the test transport map",
            "local_transport": "error:no local delivery in a test peer",
            "smtp_dns_support_level": "disabled",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            # Messages from 127.0.0.1 stay as sent: no added headers, no
            # rewritten addresses, no MIME conversion.
            "local_header_rewrite_clients": "",
            "disable_mime_output_conversion": "yes",
            # Fast, bounded test timing.
            "in_flow_delay": "0",
            "queue_run_delay": "2s",
            "minimal_backoff_time": "2s",
            "maximal_backoff_time": "10s",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "10s",
            "delay_warning_time": "0",
            "notify_classes": "",
            "smtpd_banner": "$myhostname ESMTP",
            "virtual_mailbox_domains": " ".join(self.mailbox_domains),
            "virtual_mailbox_maps": "texthash:%s/vmailbox" % self.config_dir,
            "virtual_mailbox_base": self.maildir_base,
            "virtual_uid_maps": "static:%d" % nobody.pw_uid,
            "virtual_gid_maps": "static:%d" % nobody.pw_gid,
        }
        params.update(self.main_cf_extra)
        return "".join("%s = %s\n" % item for item in params.items())

    def _master_cf(self):
        # Postfix's stock services, none chrooted (the chroot would lack the
        # temp folder), plus postlogd for maillog_file. pickup is also what
        # postqueue -f checks before it asks flush to try the deferred mail.
        services = [
            ("%s:%d" % (self.host, self.port), "inet", "n", "-", "-", "smtpd"),
            ("pickup", "unix", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "300", "1", "qmgr"),
            ("tlsmgr", "unix", "-", "1000?", "1", "tlsmgr"),
            ("rewrite", "unix", "-", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "1", "verify"),
            ("flush", "unix", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "-", "proxymap"),
            ("smtp", "unix", "-", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "-", "error"),
            ("retry", "unix", "-", "-", "-", "error"),
            ("discard", "unix", "-", "-", "-", "discard"),
            ("virtual", "unix", "-", "-", "-", "virtual"),
            ("anvil", "unix", "-", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "1", "postlogd"),
        ]
        lines = []
        for name, kind, private, wakeup, limit, command in services:
            unpriv = "n" if command == "virtual" else "-"  # virtual needs root to setuid
            lines.append("%-16s %-10s %s %s n %s %s %s\n"
                         % (name, kind, private, unpriv, wakeup, limit, command))
        return "".join(lines)

    def _write_config(self):
        files = {
            "main.cf": self._main_cf(),
            "master.cf": self._master_cf(),
            "transport": "".join("%s %s\n" % item for item in self.transports.items()),
            "vmailbox": "".join("%s %s\n" % item for item in self.mailboxes.items()),
        }
        for name, text in files.items():
            with open(os.path.join(self.config_dir, name), "w") as f:
                f.write(text)
        if self.mailbox_domains and not os.path.isdir(self.maildir_base):
            nobody = pwd.getpwnam(UNPRIVILEGED)
            os.makedirs(self.maildir_base, mode=0o755)
            os.chown(self.maildir_base, nobody.pw_uid, nobody.pw_gid)
        if self.started:
            self.reload()

    def reload(self, timeout=IO_TIMEOUT):
        """postfix reload, waiting until the master logs it. texthash: tables
        are read when a process starts, and processes of the old generation
        may finish a session in hand: configure before start() when you can."""
        reloads = len(re.findall(r"master\[\d+\]: reload ", self.log()))
        self._postfix("reload")
        deadline = time.monotonic() + timeout
        while len(re.findall(r"master\[\d+\]: reload ", self.log())) <= reloads:
            if time.monotonic() > deadline:
                raise AssertionError("Postfix did not log its reload within %ss" % timeout)
            time.sleep(0.05)

    # -- lifecycle -------------------------------------------------------

    def _postfix(self, *args, check=True, timeout=STOP_TIMEOUT):
        result = subprocess.run([POSTFIX, "-c", self.config_dir, *args],
                                capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError("postfix %s failed (%d): %s%s\n%s" % (
                " ".join(args), result.returncode, result.stdout, result.stderr, self.log()[-4000:]))
        return result

    def start(self):
        self._write_config()
        self.started = True  # from here on, cleanup stops it even if start fails half-way
        self._postfix("start", timeout=START_TIMEOUT)
        self.master_pid = self._read_master_pid()
        wait_for_greeting(self.port, host=self.host,
                          alive=lambda: self.master_pid is None or _process_alive(self.master_pid))
        return self

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _is_our_master(self, pid):
        """pid is alive and is this instance's master (it runs in our queue folder)."""
        if pid is None or not _process_alive(pid):
            return False
        try:
            return os.path.realpath("/proc/%d/cwd" % pid) == os.path.realpath(self.queue_dir)
        except OSError:
            return False

    def instance_pids(self):
        """Every live process of this instance: Postfix's daemons all run in its queue folder,
        and the children hold the inherited listening socket for a moment after the master."""
        queue = os.path.realpath(self.queue_dir)
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.path.realpath("/proc/%s/cwd" % entry) == queue:
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def running(self):
        """True while this instance's master process lives."""
        return self._is_our_master(self.master_pid or self._read_master_pid())

    def stop(self, timeout=STOP_TIMEOUT):
        """postfix stop; if the master outlives timeout, SIGKILL that one PID."""
        if not self.started:
            return
        pid = self.master_pid or self._read_master_pid()
        try:
            self._postfix("stop", check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        while self._is_our_master(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        while self.instance_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = self.instance_pids()
        for leftover in leftovers:
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + IO_TIMEOUT
        while leftovers and self.instance_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.started = False

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- observation -----------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern, timeout=IO_TIMEOUT):
        """The first match of the regular expression pattern in the log."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError("%r not in the Postfix log within %ss:\n%s"
                                     % (pattern, timeout, self.log()[-4000:]))
            time.sleep(0.05)

    def queue(self):
        """The queued messages, as postqueue -j reports them (a list of dicts)."""
        result = subprocess.run([POSTQUEUE, "-c", self.config_dir, "-j"], capture_output=True,
                                text=True, timeout=IO_TIMEOUT, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError("postqueue -j failed: %s" % result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def queue_empty(self):
        return not self.queue()

    def wait_queue_empty(self, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.queue_empty():
            if time.monotonic() > deadline:
                raise AssertionError("Postfix queue not empty within %ss: %r" % (timeout, self.queue()))
            time.sleep(0.1)

    def flush(self):
        """Tries every deferred message now (postqueue -f)."""
        subprocess.run([POSTQUEUE, "-c", self.config_dir, "-f"], check=True, capture_output=True,
                       timeout=IO_TIMEOUT, stdin=subprocess.DEVNULL)

    def maildir_messages(self, address):
        """The bytes of each message delivered to address, oldest first."""
        folder = os.path.join(self.maildir_base, self.mailboxes[address], "new")
        files = sorted(glob.glob(os.path.join(folder, "*")), key=os.path.getmtime)
        out = []
        for path in files:
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def wait_for_maildir(self, address, count=1, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            messages = self.maildir_messages(address)
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError("%d of %d messages for %s within %ss:\n%s"
                                     % (len(messages), count, address, timeout, self.log()[-4000:]))
            time.sleep(0.05)


def strip_trace_headers(message):
    """The message as its sender wrote it: without the leading Return-Path,
    X-Original-To, Delivered-To and Received headers (and their folded lines)
    that relaying and delivery added."""
    lines = message.split(b"\n")
    i = 0
    trace = (b"return-path:", b"x-original-to:", b"delivered-to:", b"received:")
    while i < len(lines) and lines[i].lower().startswith(trace):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[i:])


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1, capturing each message to a file.

        sink = SmtpSink(self, options=["-f", "RCPT"])   # 5xx to every RCPT
        ... sink.messages() ...

    Options per smtp-sink(1): -f/-r CMD,... answer 5xx/4xx, -q CMD,... hang up,
    -Q CMD,... 421, -w SECONDS delay DATA, -h NAME greeting name. The sink
    runs as 'nobody' (smtp-sink refuses to run as root without -u)."""

    def __init__(self, test, port=None, options=(), capture=True, hostname="sink.test",
                 host="127.0.0.1", backlog=64):
        self.test = test
        self.host = host
        self.port = port or free_port(host)
        self.dir = tempfile.mkdtemp(prefix="smtp-sink-", dir=_peer_tmp_root())
        _world_traversable(self.dir)
        self.capture_dir = os.path.join(self.dir, "messages")
        os.makedirs(self.capture_dir)
        nobody = pwd.getpwnam(UNPRIVILEGED)
        os.chown(self.capture_dir, nobody.pw_uid, nobody.pw_gid)
        command = [SMTP_SINK, "-4", "-h", hostname, "-t", "30"]
        if os.geteuid() == 0:
            command += ["-u", UNPRIVILEGED]
        if capture:
            # The template is strftime'd: keep '%' out of the path.
            command += ["-d", os.path.join(self.capture_dir, "m.")]
        command += list(options) + ["%s:%d" % (host, self.port), str(backlog)]
        self.output_path = os.path.join(self.dir, "output")
        with open(self.output_path, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        test.addCleanup(self.cleanup)
        wait_for_greeting(self.port, host=host, alive=lambda: self.process.poll() is None)

    def output(self):
        with open(self.output_path, errors="replace") as f:
            return f.read()

    def messages(self):
        """Each captured message (smtp-sink's X-*/Received header lines first).
        smtp-sink removes the file of a transaction whose client went away
        mid-DATA, so a file may vanish between listing and reading: skipped."""
        found = []
        for path in glob.glob(os.path.join(self.capture_dir, "m.*")):
            try:
                with open(path, "rb") as f:
                    found.append((os.fstat(f.fileno()).st_mtime, f.read()))
            except FileNotFoundError:
                continue
        return [content for _, content in sorted(found, key=lambda item: item[0])]

    def wait_for_messages(self, count, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError("smtp-sink captured %d of %d messages within %ss"
                                     % (len(messages), count, timeout))
            time.sleep(0.05)

    def stop(self, timeout=10.0):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_smtp_source(host, port, messages=1, sessions=1, size=None, sender="source@source.test",
                    recipient="rcpt@example.test", helo="source.test", options=(), timeout=60.0):
    """Runs smtp-source to host:port; returns (CompletedProcess, elapsed seconds).
    smtp-source exits non-zero when the server rejects (unless options has -A)."""
    command = [SMTP_SOURCE, "-4", "-m", str(messages), "-s", str(sessions), "-M", helo,
               "-f", sender, "-t", recipient]
    if size is not None:
        command += ["-l", str(size)]
    command += list(options) + ["%s:%d" % (host, port)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started


def swaks(*args, timeout=60.0):
    """Runs swaks with args (e.g. "--server", "127.0.0.1:2525", "--to", ...)."""
    return subprocess.run([SWAKS, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
