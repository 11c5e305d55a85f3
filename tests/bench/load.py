"""The benchmark's client side and its view of the servers.

Load: many connections opened at once (burst, idle sessions), POP3 sessions
over raw sockets (one maildrop retrieval; login-STAT-QUIT loops in parallel
worker processes). Observation: CPU time and memory of a server's whole
process tree, read from /proc.

Connections come from many loopback source addresses (127.0.0.2 and up), so
that no server's per-address limit or the ephemeral port range shapes a
figure. Every wait is bounded; every socket opened here is closed here.
Python 3 standard library only.
"""

import multiprocessing
import os
import selectors
import socket
import struct
import time

IO_TIMEOUT = 60.0
# Linux: bind() picks no port, connect() does (so 4-tuples, not ports, must be unique).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
SOURCE_ADDRESSES = ["127.0.0.%d" % i for i in range(2, 252)]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---- the servers, seen from /proc ----

def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def _children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def process_tree(pid):
    """pid and all its live descendants."""
    children = _children_map()
    out, unvisited = [], [pid]
    while unvisited:
        p = unvisited.pop()
        out.append(p)
        unvisited.extend(children.get(p, ()))
    return out


def cpu_seconds(pid):
    """CPU time (user + system) used so far by pid's whole tree: every live
    process's own time plus what its reaped children left in cutime/cstime.
    A process counts either live or, once reaped, in its parent: the
    difference of two readings is the tree's CPU time in between."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = _stat_fields(p)
        except OSError:
            continue  # exited between listing and reading: its parent has it now
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / CLOCK_TICKS


def process_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def count_named(pid, name):
    """How many processes in pid's tree are called name."""
    return sum(1 for p in process_tree(pid) if process_name(p) == name)


def memory_kib(pid, without=()):
    """(RSS, PSS) in KiB summed over pid's tree, leaving out processes whose
    name is in `without`. PSS shares each shared page among the processes
    mapping it: the fair sum for a many-process server."""
    rss = pss = 0
    for p in process_tree(pid):
        if without and process_name(p) in without:
            continue
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def fsync_rate(folder, seconds=2.0):
    """The disk's own limit: 4 KiB appended and fdatasync'd in a loop in
    `folder` (the file system the stores live on), per second."""
    path = os.path.join(folder, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"x" * 4096
    count = 0
    try:
        end = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < end:
            os.write(fd, block)
            os.fdatasync(fd)
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


# ---- many connections at once ----

def _client_socket(index):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)], 0))
    return s


def _abort(s):
    """Close with RST: no TIME_WAIT left behind by thousands of test sockets."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


class Connections:
    """`count` connections to 127.0.0.1:port, opened as fast as the client can
    (non-blocking connects, no waiting in between), each read until its first
    reply line. Afterwards: greeted (first reply starts with `ready`),
    refused (starts with `busy`), failed (reset, closed or anything else),
    waiting (nothing within the deadline), and each greeting's time after the
    first connect. Held open until close()."""

    def __init__(self, port, count, ready=b"220", busy=b"421", deadline=10.0, batch=None):
        self.port, self.count, self.ready, self.busy = port, count, ready, busy
        self.sockets = []
        self.greeted_at = []   # seconds after the first connect, of each greeting
        self.refused = self.failed = 0
        self.selector = selectors.DefaultSelector()
        self.pending = {}
        try:
            self._run(deadline, batch or count)
        finally:
            self.selector.close()

    def _run(self, deadline, batch):
        started = time.perf_counter()
        end = started + deadline
        opened = 0
        while opened < self.count or self.pending:
            # Open the next batch once the previous one is answered (idle
            # sessions), or everything at once (burst: batch == count).
            while opened < self.count and len(self.pending) < batch:
                s = _client_socket(opened)
                err = s.connect_ex(("127.0.0.1", self.port))
                if err not in (0, 115):  # EINPROGRESS
                    self.failed += 1
                    _abort(s)
                else:
                    self.sockets.append(s)
                    self.pending[s] = b""
                    self.selector.register(s, selectors.EVENT_READ)
                opened += 1
            remaining = end - time.perf_counter()
            if remaining <= 0:
                break
            for key, _ in self.selector.select(timeout=min(remaining, 0.5)):
                s = key.fileobj
                try:
                    chunk = s.recv(512)
                except OSError:
                    chunk = b""
                data = self.pending[s] + chunk
                if chunk and b"\n" not in data and len(data) < 512:
                    self.pending[s] = data
                    continue
                self.selector.unregister(s)
                del self.pending[s]
                if data.startswith(self.ready):
                    self.greeted_at.append(time.perf_counter() - started)
                elif data.startswith(self.busy):
                    self.refused += 1
                else:
                    self.failed += 1

    @property
    def greeted(self):
        return len(self.greeted_at)

    @property
    def waiting(self):
        return len(self.pending)

    def all_greeted_after(self):
        """Seconds until the last of them was greeted; None unless all were."""
        if self.greeted < self.count:
            return None
        return max(self.greeted_at) if self.greeted_at else 0.0

    def close(self):
        for s in self.sockets:
            _abort(s)
        self.sockets = []


# ---- POP3 ----

class Pop3Client:
    """A raw-socket POP3 client that checks every reply."""

    def __init__(self, port, source_index=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        self.sock.bind((SOURCE_ADDRESSES[source_index % len(SOURCE_ADDRESSES)], 0))
        self.sock.connect(("127.0.0.1", port))
        self.buffer = bytearray()

    def _fill(self):
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                return line
            self._fill()

    def ok(self, command=None):
        if command is not None:
            self.sock.sendall(command + b"\r\n")
        line = self.line()
        if not line.startswith(b"+OK"):
            raise AssertionError("%r: %r" % (command, line))
        return line

    def multiline(self, command):
        """The body of a multi-line reply (dot-stuffing left in), up to CRLF.CRLF."""
        self.ok(command)
        start = 0
        while True:
            end = self.buffer.find(b"\r\n.\r\n", max(0, start - 3))
            if end >= 0 or self.buffer.startswith(b".\r\n"):
                if end < 0:
                    body, rest = b"", self.buffer[3:]
                else:
                    body, rest = bytes(self.buffer[:end + 2]), self.buffer[end + 5:]
                self.buffer = bytearray(rest)
                return body
            start = len(self.buffer)
            self._fill()

    def login(self, user, password):
        self.ok()
        self.ok(b"USER " + user.encode())
        return self.ok(b"PASS " + password.encode())

    def quit(self):
        self.ok(b"QUIT")
        self.sock.close()

    def close(self):
        self.sock.close()


def retrieve_maildrop(port, user, password, expected):
    """One session: login, UIDL, RETR of every message, QUIT. Returns
    {"login", "uidl", "retr", "total"} in seconds and the bytes retrieved."""
    times = {}
    started = time.perf_counter()
    client = Pop3Client(port)
    try:
        client.login(user, password)
        times["login"] = time.perf_counter() - started
        t = time.perf_counter()
        uidl = client.multiline(b"UIDL").split(b"\r\n")[:-1]
        times["uidl"] = time.perf_counter() - t
        if len(uidl) != expected or len({line.split()[1] for line in uidl}) != expected:
            raise AssertionError("UIDL: %d lines for %d messages" % (len(uidl), expected))
        t = time.perf_counter()
        octets = 0
        for number in range(1, expected + 1):
            octets += len(client.multiline(b"RETR %d" % number))
        times["retr"] = time.perf_counter() - t
        client.quit()
    finally:
        client.close()
    times["total"] = time.perf_counter() - started
    times["octets"] = octets
    return times


def _session_worker(port, user, password, start_at, stop_at, source_index, results):
    done = errors = 0
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    first_error = ""
    while time.time() < stop_at:
        t = time.perf_counter()
        try:
            client = Pop3Client(port, source_index)
            try:
                client.login(user, password)
                client.ok(b"STAT")
                client.quit()
            finally:
                client.close()
            done += 1
            latencies.append(time.perf_counter() - t)
        except (OSError, AssertionError) as e:
            errors += 1
            first_error = first_error or repr(e)
            time.sleep(0.01)
    results.put((done, errors, latencies, first_error))


def pop3_sessions(port, users, password, seconds):
    """Each user in its own worker process (a maildrop is locked by its
    session), looping connect, login, STAT, QUIT for `seconds`. Returns
    (sessions completed per second, errors, median latency in s, first error)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    workers = [context.Process(target=_session_worker,
                               args=(port, user, password, start_at, stop_at, i, results), daemon=True)
               for i, user in enumerate(users)]
    for w in workers:
        w.start()
    done = errors = 0
    latencies, first_error = [], ""
    for _ in workers:
        d, e, lat, err = results.get(timeout=seconds + IO_TIMEOUT + 5)
        done, errors = done + d, errors + e
        latencies += lat
        first_error = first_error or err
    for w in workers:
        w.join(timeout=IO_TIMEOUT)
        if w.is_alive():
            w.kill()
    latencies.sort()
    median = latencies[len(latencies) // 2] if latencies else None
    return done / seconds, errors, median, first_error
