#!/usr/bin/env python3
"""POP3 on a large maildrop: fills bob@example.test's maildrop with 10,000
distinct ~1 KiB messages over SMTP, then times, over raw sockets,

  login        connect -> greeting -> USER -> PASS -> "+OK maildrop has N messages"
  UIDL         sending UIDL -> the final "." of the full listing
  LIST         sending LIST -> the final "." of the full listing
  STAT         sending STAT -> its +OK

each in --runs sessions (QUIT at the end, nothing deleted), and prints the
median, min and max. "login, empty maildrop" (alice@example.test, no mail) is
the same login without the maildrop, so the difference is what opening 10,000
messages costs. The SMTP fill rate is reported for information.

It builds nothing: maild and mailctl come from --maild/--mailctl, MAILD_BIN/
MAILCTL_BIN, or the Release build (build/release, see run_pop3_maildrop.sh).
Python 3 standard library only. Every wait is bounded; maild is stopped by
its PID and its temp folder removed.
"""

import argparse
import csv
import datetime
import os
import socket
import statistics
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import maild_harness  # noqa: E402  (the integration tests' way to run maild)

BOB = "bob@example.test"
ALICE = "alice@example.test"
PASSWORD = "bench-secret"
IO_TIMEOUT = 60.0        # any single read or write
FILL_DEADLINE = 1800.0   # the whole SMTP fill


class Cleanups:
    """Stands in for the unittest.TestCase that maild_harness.Maild expects."""

    def __init__(self):
        self.calls = []

    def addCleanup(self, function, *args):
        self.calls.append((function, args))

    def run(self):
        while self.calls:
            function, args = self.calls.pop()
            try:
                function(*args)
            except Exception as e:  # cleanup goes on; the error is shown
                print("cleanup: %s" % e, file=sys.stderr)


class Lines:
    """A raw socket with a receive buffer: lines and dot-terminated listings."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(IO_TIMEOUT)
        self.buffer = bytearray()

    @classmethod
    def connect(cls, port):
        return cls(socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT))

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by maild; buffered: %r" % bytes(self.buffer[-200:]))
        self.buffer += chunk

    def line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                return line
            self._fill()

    def multiline(self):
        """A whole POP3 multi-line reply up to and including CRLF.CRLF (raw bytes).
        The buffer is empty before the command is sent (one command in flight),
        so the reply ends the first time the buffer ends with CRLF.CRLF: a
        content line "." would be dot-stuffed."""
        while not (self.buffer.endswith(b"\r\n.\r\n") and self.buffer.startswith(b"+OK")):
            if self.buffer.startswith(b"-ERR") and b"\r\n" in self.buffer:
                raise AssertionError("listing refused: %r" % self.line())
            self._fill()
        reply = bytes(self.buffer)
        self.buffer.clear()
        return reply

    def until_closed(self):
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            if not self.sock.recv(65536):
                return
        raise AssertionError("maild did not close the connection")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def expect(lines, prefix):
    line = lines.line()
    if not line.startswith(prefix):
        raise AssertionError("expected %r, got %r" % (prefix, line))
    return line


# ---- the fill: concurrent pipelined SMTP sessions ----

def message(thread, number, size):
    head = (b"From: Bench <bench@remote.test>\r\n"
            b"To: <%s>\r\n"
            b"Subject: maildrop bench %d.%d\r\n"
            b"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
            b"Message-ID: <bench-%d-%d-%d@remote.test>\r\n"
            b"\r\n" % (BOB.encode(), thread, number, os.getpid(), thread, number))
    line = b"The quick brown fox jumps over the lazy dog, message %d.%d.\r\n" % (thread, number)
    body = b""
    while len(head) + len(body) + len(line) <= size:
        body += line
    return head + body + b"x" * max(0, size - len(head) - len(body) - 2) + b"\r\n"


def fill_session(port, thread, count, size, deadline, errors):
    """One SMTP session sending `count` messages. RFC 2920 pipelining: each
    write is the previous message's content and "." followed by the next
    MAIL, RCPT and DATA; every 250 after "." is checked."""
    envelope = b"MAIL FROM:<bench@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % BOB.encode()
    s = None
    try:
        s = Lines.connect(port)
        expect(s, b"220 ")
        s.send(b"EHLO bench.client.test\r\n")
        ehlo = []
        while True:
            line = s.line()
            ehlo.append(line)
            if not line.startswith(b"250"):
                raise AssertionError("EHLO refused: %r" % line)
            if line[3:4] == b" ":
                break
        if not any(b"PIPELINING" in line for line in ehlo):
            raise AssertionError("maild does not offer PIPELINING")
        s.send(envelope)
        for number in range(count):
            if time.monotonic() > deadline:
                raise AssertionError("fill took longer than %ss" % FILL_DEADLINE)
            expect(s, b"250")   # MAIL
            expect(s, b"250")   # RCPT
            expect(s, b"354")   # DATA
            tail = envelope if number + 1 < count else b"QUIT\r\n"
            s.send(message(thread, number, size) + b".\r\n" + tail)
            expect(s, b"250")   # the message is stored
        expect(s, b"221")
    except Exception as e:
        errors.append("session %d: %s" % (thread, e))
    finally:
        if s is not None:
            s.close()


def fill(port, messages, sessions, size):
    per_session = [messages // sessions + (1 if i < messages % sessions else 0) for i in range(sessions)]
    errors = []
    deadline = time.monotonic() + FILL_DEADLINE
    threads = [threading.Thread(target=fill_session, args=(port, i, n, size, deadline, errors), daemon=True)
               for i, n in enumerate(per_session)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + IO_TIMEOUT))
        if t.is_alive():
            raise AssertionError("a fill session did not finish in time")
    elapsed = time.perf_counter() - started
    if errors:
        raise AssertionError("fill failed: " + "; ".join(errors[:5]))
    return elapsed


# ---- the measurements: raw POP3 sessions ----

def pop3_session(port, user, expected):
    """One session: login, STAT, UIDL, LIST, QUIT. Returns the times (s) and
    checks every reply (the listings after the timing)."""
    times = {}
    started = time.perf_counter()
    s = Lines.connect(port)
    try:
        expect(s, b"+OK")
        s.send(b"USER %s\r\n" % user.encode())
        expect(s, b"+OK")
        s.send(b"PASS %s\r\n" % PASSWORD.encode())
        greeting = s.line()
        times["login"] = time.perf_counter() - started
        if not greeting.startswith(b"+OK maildrop has %d messages" % expected):
            raise AssertionError("login: %r" % greeting)

        started = time.perf_counter()
        s.send(b"STAT\r\n")
        stat = s.line()
        times["stat"] = time.perf_counter() - started
        parts = stat.split()
        if len(parts) != 3 or parts[0] != b"+OK" or int(parts[1]) != expected:
            raise AssertionError("STAT: %r" % stat)
        octets = int(parts[2])

        started = time.perf_counter()
        s.send(b"UIDL\r\n")
        uidl = s.multiline()
        times["uidl"] = time.perf_counter() - started

        started = time.perf_counter()
        s.send(b"LIST\r\n")
        listing = s.multiline()
        times["list"] = time.perf_counter() - started

        s.send(b"QUIT\r\n")
        expect(s, b"+OK")
        s.until_closed()
    finally:
        s.close()

    uidls = [line.split() for line in uidl.split(b"\r\n")[1:-2]]
    if [int(n) for n, _ in uidls] != list(range(1, expected + 1)) or len({u for _, u in uidls}) != expected:
        raise AssertionError("UIDL listing: %d lines, numbers or UIDLs wrong" % len(uidls))
    sizes = [line.split() for line in listing.split(b"\r\n")[1:-2]]
    if [int(n) for n, _ in sizes] != list(range(1, expected + 1)) or sum(int(o) for _, o in sizes) != octets:
        raise AssertionError("LIST listing: %d lines, numbers or octets wrong" % len(sizes))
    times["uidl_bytes"] = len(uidl)
    times["list_bytes"] = len(listing)
    return times


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maild", default=os.environ.get("MAILD_BIN")
                        or os.path.join(ROOT, "build/release/src/daemon/maild"))
    parser.add_argument("--mailctl", default=os.environ.get("MAILCTL_BIN")
                        or os.path.join(ROOT, "build/release/src/admin/mailctl"))
    parser.add_argument("--messages", type=int, default=10000, help="maildrop size (10000)")
    parser.add_argument("--sessions", type=int, default=10, help="concurrent SMTP sessions for the fill (10)")
    parser.add_argument("--size", type=int, default=1024, help="message size in bytes before maild's trace lines (1024)")
    parser.add_argument("--runs", type=int, default=5, help="measured POP3 sessions per figure (5)")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    args = parser.parse_args()
    for path in (args.maild, args.mailctl):
        if not os.access(path, os.X_OK):
            parser.error("%s is not an executable (build it: tests/bench/run_pop3_maildrop.sh)" % path)
    maild_harness.MAILD_BIN = args.maild
    maild_harness.MAILCTL_BIN = args.mailctl

    print("pop3_maildrop: %d messages of %d bytes, %d SMTP sessions, %d runs" %
          (args.messages, args.size, args.sessions, args.runs))
    print("maild: %s" % args.maild)
    print("date: %s  nproc: %s  load average before: %s" %
          (datetime.datetime.now().astimezone().isoformat(timespec="seconds"), os.cpu_count(), loadavg()))

    cleanups = Cleanups()
    try:
        # maild's defaults for threads (one per core) and store workers (8),
        # not the integration tests' small settings.
        maild = maild_harness.Maild(cleanups, tls=False,
                                    config_extra="[server]\nthreads = 0\n[store]\nworkers = 8\n")
        maild_harness.mailctl_ok(maild, "db", "migrate")
        maild_harness.mailctl_ok(maild, "domain", "add", "example.test")
        for user in (BOB, ALICE):
            maild_harness.mailctl_ok(maild, "user", "add", user, input=PASSWORD + "\n")
        maild.start()
        print("maild pid %d, folder %s" % (maild.process.pid, maild.dir))

        fill_seconds = fill(maild.ports["smtp"], args.messages, args.sessions, args.size)
        print("filled in %.1f s" % fill_seconds)

        port = maild.ports["pop3"]
        pop3_session(port, BOB, args.messages)   # warm-up, not counted
        pop3_session(port, ALICE, 0)
        runs = [pop3_session(port, BOB, args.messages) for _ in range(args.runs)]
        empty = [pop3_session(port, ALICE, 0)["login"] for _ in range(args.runs)]
        load_after = loadavg()

        code = maild.stop()  # SIGTERM to its PID, bounded wait
        if code != 0:
            raise AssertionError("maild exited %s:\n%s" % (code, maild.output()[-2000:]))
    except BaseException:
        if "maild" in locals():
            print(maild.log()[-3000:], file=sys.stderr)
        raise
    finally:
        cleanups.run()

    n = args.messages
    rows = []

    def figure(name, values, unit="ms", scale=1000.0):
        values = [v * scale for v in values]
        rows.append((name, statistics.median(values), min(values), max(values), unit))

    figure("login, %d-message maildrop" % n, [r["login"] for r in runs])
    figure("login, empty maildrop", empty)
    figure("UIDL full listing (%d lines)" % n, [r["uidl"] for r in runs])
    figure("LIST full listing (%d lines)" % n, [r["list"] for r in runs])
    figure("STAT", [r["stat"] for r in runs])
    rows.append(("SMTP fill rate (%d sessions, info)" % args.sessions, n / fill_seconds, None, None, "messages/s"))

    def cell(value):
        if value is None:
            return "-"
        return "%.0f" % value if value >= 100 else "%.3f" % value if value < 1 else "%.2f" % value

    header = ("figure", "median", "min", "max", "unit")
    table = [header] + [(name, cell(m), cell(lo), cell(hi), unit) for name, m, lo, hi, unit in rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    print()
    for i, row in enumerate(table):
        print("  ".join(c.ljust(widths[j]) if j in (0, 4) else c.rjust(widths[j]) for j, c in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    uidl_median = statistics.median(r["uidl"] for r in runs)
    list_median = statistics.median(r["list"] for r in runs)
    login_extra = statistics.median(r["login"] for r in runs) - statistics.median(empty)
    print("per message: UIDL %.2f us (%d bytes), LIST %.2f us (%d bytes), login %+.2f us over an empty maildrop"
          % (uidl_median / n * 1e6, runs[0]["uidl_bytes"], list_median / n * 1e6, runs[0]["list_bytes"],
             login_extra / n * 1e6))
    print("load average after: %s" % load_after)

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for name, m, lo, hi, unit in rows:
                writer.writerow([name] + ["" if v is None else "%.4f" % v for v in (m, lo, hi)] + [unit])
        print("CSV written to %s" % args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
