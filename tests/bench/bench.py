#!/usr/bin/env python3
"""maild side by side with its anchors, in one run (docs/performance.md).

Starts, on free 127.0.0.1 ports and in temp folders: maild (Release build,
SQLite store), a private Postfix accepting mail for example.test into
Maildirs, smtp-sink (the no-storage ceiling), and two private Dovecots
(default and tuned) serving those Maildirs by POP3. Then, for --rounds
rounds, measures each figure for maild and its anchor alternately (the order
flips every round), and prints one table of medians: figure, maild, anchor,
ratio (> 1: maild is better), target. --csv FILE writes it as CSV too.

Figures:
  smtp       smtp-source, 10 KiB messages, 1/20/100 sessions: messages/s until
             all are durable (maild: committed; Postfix: delivered to Maildir),
             the smtp-sink ceiling, and server CPU per message
  burst      1,000 connections at once: seconds until all are greeted, 421s
  idle       10,000 idle SMTP sessions: the server's resident memory
  pop3       login + UIDL + RETR of a 1,000-message maildrop; login-STAT-QUIT
             sessions/s with 10 parallel clients (against both Dovecots)
  outbound   N queued 10 KiB messages delivered to smtp-sink, maild against
             Postfix: messages/s from the flush until the queue is empty
  mysql      SMTP (20 sessions) and POP3 (login-STAT-QUIT) on MariaDB, and SMTP
             with a semi-sync standby, against the SQLite maild

Needs root (Postfix and Dovecot masters start as root) and many open files
(tests/bench/run.sh raises the limit). Builds nothing: run tests/bench/run.sh.
"""

import argparse
import csv
import datetime
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
import maild_harness  # noqa: E402
import postfix_peer  # noqa: E402
import dovecot_peer  # noqa: E402
import mariadb_server  # noqa: E402
import load  # noqa: E402

DOMAIN = "example.test"
PASSWORD = "bench-secret"
HASH_SCHEME = "sha512-crypt"          # maild's mailctl --hash-scheme
DOVECOT_SCHEME = "SHA512-CRYPT"       # the same crypt(3) method, $6$, 5,000 rounds
SOURCE_TIMEOUT = 900.0                # one smtp-source run
DELIVERY_TIMEOUT = 900.0              # Postfix's queue into Maildirs
STAGES = ("smtp", "burst", "idle", "pop3", "outbound", "mysql")

# The full run and --quick (a smoke run of about two minutes).
PLANS = {
    "full": dict(rounds=3, messages=5000, sessions=(1, 20, 100), burst=1000, idle=10000,
                 idle_anchor=500, maildrop=1000, pop3_seconds=5.0),
    "quick": dict(rounds=1, messages=300, sessions=(1, 20, 100), burst=300, idle=1000,
                  idle_anchor=200, maildrop=100, pop3_seconds=2.0),
}
MESSAGE_SIZE = 10240
POP3_CLIENTS = 10
POP3_SMALL_DROP = 10        # messages in each login-STAT-QUIT user's maildrop
BURST_DEADLINE = 10.0
IDLE_DEADLINE = 120.0


class Cleanups:
    """Stands in for the unittest.TestCase the harness classes expect."""

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


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


# ---- what a figure is and how it is judged ----

class Figure:
    """One row: values per round for maild and for its anchor.
    better: "higher" or "lower"; ratio is oriented so that > 1 means maild is
    better. target: ("ratio", x) needs ratio >= x, ("max", x) needs maild's
    value <= x, ("info", None) is not judged."""

    def __init__(self, key, title, unit, anchor, better="higher", target=("info", None), note=""):
        self.key, self.title, self.unit, self.anchor = key, title, unit, anchor
        self.better, self.target, self.note = better, target, note
        self.maild, self.anchor_values = [], []
        self.not_yet = False

    @staticmethod
    def _median(values):
        if not values:
            return None
        if any(v is None for v in values):  # e.g. not all greeted: worse than any number
            finite = sorted(v for v in values if v is not None)
            missing = len(values) - len(finite)
            ordered = finite + [None] * missing
            return ordered[len(ordered) // 2]
        return statistics.median(values)

    def medians(self):
        return self._median(self.maild), self._median(self.anchor_values)

    def _oriented(self, m, a):
        if m is None or a is None or m == 0 or a == 0:
            return None
        return m / a if self.better == "higher" else a / m

    def ratio(self):
        """The median of the rounds' own ratios: each round's pair shared the
        machine's load of that moment. Falls back to the medians' ratio."""
        if self.maild and len(self.maild) == len(self.anchor_values):
            paired = [self._oriented(m, a) for m, a in zip(self.maild, self.anchor_values)]
            paired = [r for r in paired if r is not None]
            if paired:
                return statistics.median(paired)
        m, a = self.medians()
        return self._oriented(m, a)

    def verdict(self):
        if self.not_yet:
            return "not yet"
        kind, limit = self.target
        m, _ = self.medians()
        if kind == "info" or (not self.maild):
            return ""
        if kind == "ratio":
            r = self.ratio()
            if r is None:
                return "n/a"
            return "met" if r >= limit else "missed"
        if kind == "max":
            return "met" if m is not None and m <= limit else "missed"
        return ""

    def target_text(self):
        kind, limit = self.target
        if kind == "ratio":
            return ">= %gx" % limit
        if kind == "max":
            return "<= %g %s" % (limit, self.unit)
        return ""


def number(value):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return "%.0f" % value
    if abs(value) >= 10:
        return "%.1f" % value
    return "%.3g" % value


# ---- the servers ----

class Servers:
    def __init__(self, args, cleanups, plan):
        self.args, self.cleanups, self.plan = args, cleanups, plan
        self.load_users = ["s%dr%d" % (c, r) for r in range(plan["rounds"]) for c in plan["sessions"]]
        self.load_users += ["mysql%d" % r for r in range(plan["rounds"])]
        self.pop_users = ["pop%d" % i for i in range(POP3_CLIENTS)]
        self.users = self.load_users + ["drop"] + self.pop_users
        self.maild = self.postfix = self.sink = None
        self.outbound = None  # made by figure_outbound
        self.mysql = None     # made by figure_mysql
        self.filled = False   # the POP3 maildrops (fill())
        self.dovecots = {}

    def address(self, user):
        return "%s@%s" % (user, DOMAIN)

    def start(self):
        maild_harness.MAILD_BIN = self.args.maild
        maild_harness.MAILCTL_BIN = self.args.mailctl
        # maild's defaults for threads (one per core) and store workers (8);
        # admission limits raised so that the idle figure can hold its sessions.
        extra = ("[server]\nthreads = 0\nmax_connections = 20000\nmax_connections_per_ip = 20000\n"
                 "[store]\nworkers = 8\n")
        for setting in self.args.maild_set:  # e.g. server.auth_cache_ttl=0s, for experiments
            key, value = setting.split("=", 1)
            section, name = key.split(".", 1)
            extra += "[%s]\n%s = %s\n" % (section.strip(), name.strip(), value.strip())
        self.maild_extra = extra  # the MySQL mailds get the same
        self.maild = maild_harness.Maild(self.cleanups, tls=False, config_extra=extra)
        maild_harness.mailctl_ok(self.maild, "db", "migrate")
        maild_harness.mailctl_ok(self.maild, "domain", "add", DOMAIN)
        for user in self.users:
            maild_harness.mailctl_ok(self.maild, "user", "add", self.address(user), "--hash-scheme",
                                     HASH_SCHEME, input=PASSWORD + "\n")
        self.maild.start()
        # Freed memory stays with the process: later rounds' "before" would hide what sessions cost.
        self.maild_fresh_rss, _ = load.memory_kib(self.maild.process.pid)
        log("maild pid %d, smtp %d, pop3 %d, folder %s" % (
            self.maild.process.pid, self.maild.ports["smtp"], self.maild.ports["pop3"], self.maild.dir))

        # Enough smtpd processes for the burst and idle figures (Postfix's default is 100).
        limit = max(self.plan["burst"], self.plan["idle_anchor"]) + 100
        self.postfix = postfix_peer.PostfixPeer(self.cleanups, hostname="anchor.test",
                                                main_cf_extra={"default_process_limit": str(limit)})
        self.postfix.receive_into_maildir(DOMAIN, self.users)
        self.postfix.start()
        log("Postfix master pid %s, smtp %d, folder %s" % (
            self.postfix.master_pid, self.postfix.port, self.postfix.dir))

        self.sink = postfix_peer.SmtpSink(self.cleanups, capture=False, backlog=1024)
        log("smtp-sink pid %d, port %d" % (self.sink.process.pid, self.sink.port))

        for profile in dovecot_peer.PROFILES:
            dovecot = dovecot_peer.DovecotPeer(self.cleanups, self.postfix.maildir_base, profile=profile,
                                               password_scheme=DOVECOT_SCHEME)
            for user in ["drop"] + self.pop_users:
                dovecot.add_user(self.address(user), PASSWORD)
            dovecot.start()
            self.dovecots[profile] = dovecot
            log("Dovecot (%s) pid %d, pop3 %d" % (profile, dovecot.pid, dovecot.port))

    def maildir_count(self, user):
        folder = os.path.join(self.postfix.maildir_base, DOMAIN, user)
        count = 0
        for sub in ("new", "cur"):
            try:
                count += sum(1 for _ in os.scandir(os.path.join(folder, sub)))
            except FileNotFoundError:
                pass
        return count

    def wait_maildir(self, user, count, timeout=DELIVERY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.maildir_count(user) < count:
            if time.monotonic() > deadline:
                raise AssertionError("Postfix delivered %d of %d messages for %s within %ss:\n%s" % (
                    self.maildir_count(user), count, user, timeout, self.postfix.log()[-3000:]))
            time.sleep(0.02)
        return time.perf_counter()

    def fill(self):
        """The POP3 maildrops, on both sides, by smtp-source."""
        for port, name in ((self.maild.ports["smtp"], "maild"), (self.postfix.port, "Postfix")):
            smtp_source(port, self.plan["maildrop"], 10, self.address("drop"), MESSAGE_SIZE)
            for user in self.pop_users:
                smtp_source(port, POP3_SMALL_DROP, 2, self.address(user), 1024)
            log("filled the POP3 maildrops of %s" % name)
        self.filled = True
        self.wait_maildir("drop", self.plan["maildrop"])
        for user in self.pop_users:
            self.wait_maildir(user, POP3_SMALL_DROP)


class Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Profiled:
    """With --perf DIR: `perf record` attached to maild for the duration of one
    measurement, written to DIR/<name>.data (perf report -i FILE). Else nothing."""

    def __init__(self, servers, name):
        self.command = None
        folder = servers.args.perf
        if folder:
            os.makedirs(folder, exist_ok=True)
            self.command = ["perf", "record", "-q", "-F", "997", "-g", "-p", str(servers.maild.process.pid),
                            "-o", os.path.join(folder, name + ".data")]
        self.process = None

    def __enter__(self):
        if self.command:
            self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            stdin=subprocess.DEVNULL)
            time.sleep(0.5)  # perf attaches
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return False


def smtp_source(port, messages, sessions, recipient, size):
    """smtp-source; returns its wall time. Any refusal is an error."""
    result, elapsed = postfix_peer.run_smtp_source(
        "127.0.0.1", port, messages=messages, sessions=sessions, size=size, recipient=recipient,
        timeout=SOURCE_TIMEOUT)
    if result.returncode != 0:
        raise AssertionError("smtp-source to port %d failed (%d): %s%s" % (
            port, result.returncode, result.stdout[-2000:], result.stderr[-2000:]))
    return elapsed


# ---- the figures ----

def rotate(items, round_index):
    """The same items, the order flipped every other round (maild first, then last)."""
    return list(items) if round_index % 2 == 0 else list(reversed(items))


def figure_smtp(servers, figures, round_index):
    plan = servers.plan
    n = plan["messages"]
    for c in plan["sessions"]:
        judged = c >= 20
        rate = figures.setdefault("smtp%d" % c, Figure(
            "smtp%d" % c, "SMTP accept 10 KiB, %d sessions" % c, "msg/s", "Postfix",
            target=("ratio", 6) if judged else ("info", None),
            note="maild: committed; Postfix: delivered to Maildir"))
        queued = figures.setdefault("smtp%d_queue" % c, Figure(
            "smtp%d_queue" % c, "  Postfix queued only (info)", "msg/s", "Postfix"))
        sink = figures.setdefault("smtp%d_sink" % c, Figure(
            "smtp%d_sink" % c, "  against the smtp-sink ceiling", "msg/s", "smtp-sink",
            target=("ratio", 0.5) if judged else ("info", None)))
        cpu = figures.setdefault("smtp%d_cpu" % c, Figure(
            "smtp%d_cpu" % c, "  server CPU per message", "ms", "Postfix", better="lower",
            target=("max", 0.5) if judged else ("info", None)))
        user = "s%dr%d" % (c, round_index)
        recipient = servers.address(user)

        def run_maild():
            pid = servers.maild.process.pid
            with Profiled(servers, "smtp%d-r%d" % (c, round_index)):
                before = load.cpu_seconds(pid)
                elapsed = smtp_source(servers.maild.ports["smtp"], n, c, recipient, MESSAGE_SIZE)
                used = load.cpu_seconds(pid) - before
            rate.maild.append(n / elapsed)
            queued.maild.append(n / elapsed)
            sink.maild.append(n / elapsed)
            cpu.maild.append(used / n * 1000)
            log("smtp %3d sessions  maild     %7.0f msg/s  %.3f ms CPU/msg" % (c, n / elapsed, used / n * 1000))

        def run_postfix():
            pid = servers.postfix.master_pid
            before = load.cpu_seconds(pid)
            started = time.perf_counter()
            queued_after = smtp_source(servers.postfix.port, n, c, recipient, MESSAGE_SIZE)
            delivered = servers.wait_maildir(user, n) - started
            used = load.cpu_seconds(pid) - before
            rate.anchor_values.append(n / delivered)
            queued.anchor_values.append(n / queued_after)
            cpu.anchor_values.append(used / n * 1000)
            log("smtp %3d sessions  Postfix   %7.0f msg/s delivered (%.0f queued)  %.3f ms CPU/msg"
                % (c, n / delivered, n / queued_after, used / n * 1000))

        def run_sink():
            elapsed = smtp_source(servers.sink.port, n, c, "sink@sink.test", MESSAGE_SIZE)
            sink.anchor_values.append(n / elapsed)
            log("smtp %3d sessions  smtp-sink %7.0f msg/s" % (c, n / elapsed))

        for run in rotate((run_maild, run_postfix, run_sink), round_index):
            run()


def figure_burst(servers, figures, round_index):
    count = servers.plan["burst"]
    time_row = figures.setdefault("burst_time", Figure(
        "burst_time", "burst of %d: until all greeted" % count, "s", "Postfix", better="lower",
        target=("max", 1.0), note="'-': not all within %gs" % BURST_DEADLINE))
    greeted_row = figures.setdefault("burst_greeted", Figure(
        "burst_greeted", "  greeted within %gs" % BURST_DEADLINE, "sessions", "Postfix"))
    refused_row = figures.setdefault("burst_421", Figure(
        "burst_421", "  refused with 421", "sessions", "Postfix", better="lower"))

    def run(name, port, values):
        time.sleep(1.0)  # let the previous figure's connections go
        burst = load.Connections(port, count, deadline=BURST_DEADLINE)
        try:
            after = burst.all_greeted_after()
            values[0].append(after)
            values[1].append(burst.greeted)
            values[2].append(burst.refused)
            log("burst %d  %-8s all greeted after %s s; greeted %d, 421 %d, failed %d, waiting %d" % (
                count, name, number(after), burst.greeted, burst.refused, burst.failed, burst.waiting))
        finally:
            burst.close()

    sides = [("maild", servers.maild.ports["smtp"],
              (time_row.maild, greeted_row.maild, refused_row.maild)),
             ("Postfix", servers.postfix.port,
              (time_row.anchor_values, greeted_row.anchor_values, refused_row.anchor_values))]
    for name, port, values in rotate(sides, round_index):
        run(name, port, values)


def figure_idle(servers, figures, round_index):
    plan = servers.plan
    total = figures.setdefault("idle_total", Figure(
        "idle_total", "%d idle sessions: resident memory" % plan["idle"], "MiB", "Postfix",
        better="lower", target=("max", 100),
        note="maild: RSS; Postfix: PSS of all its processes at %d sessions, scaled to %d"
        % (plan["idle_anchor"], plan["idle"])))
    per_session = figures.setdefault("idle_per_session", Figure(
        "idle_per_session", "  per idle session", "KiB", "Postfix", better="lower",
        note="maild: (RSS - RSS when started) / sessions; Postfix: PSS per smtpd process"))

    def run_maild():
        pid = servers.maild.process.pid
        time.sleep(1.0)
        before_rss, _ = load.memory_kib(pid)
        base_rss = servers.maild_fresh_rss
        held = load.Connections(servers.maild.ports["smtp"], plan["idle"], deadline=IDLE_DEADLINE,
                                batch=500)
        try:
            if held.greeted != plan["idle"]:
                raise AssertionError("maild greeted %d of %d idle sessions (421: %d, failed %d)" % (
                    held.greeted, plan["idle"], held.refused, held.failed))
            time.sleep(1.0)
            rss, _ = load.memory_kib(pid)
        finally:
            held.close()
        total.maild.append(rss / 1024)
        per_session.maild.append((rss - base_rss) / plan["idle"])
        log("idle %d  maild    RSS %.1f MiB (%.1f before, %.1f when started), %.2f KiB/session" % (
            plan["idle"], rss / 1024, before_rss / 1024, base_rss / 1024, (rss - base_rss) / plan["idle"]))

    def run_postfix():
        pid = servers.postfix.master_pid
        count = plan["idle_anchor"]
        time.sleep(1.0)
        # Postfix serves each session with its own smtpd process; earlier figures
        # leave some waiting for work. So: the processes other than smtpd, plus
        # what one smtpd process costs while the sessions are held, per session.
        held = load.Connections(servers.postfix.port, count, deadline=IDLE_DEADLINE, batch=200)
        try:
            if held.greeted != count:
                raise AssertionError("Postfix greeted %d of %d idle sessions" % (held.greeted, count))
            time.sleep(1.0)
            _, pss = load.memory_kib(pid)
            _, others = load.memory_kib(pid, without=("smtpd",))
            processes = load.count_named(pid, "smtpd")
        finally:
            held.close()
        per = (pss - others) / max(1, processes)
        total.anchor_values.append((others + per * plan["idle"]) / 1024)
        per_session.anchor_values.append(per)
        log("idle %d  Postfix  PSS %.1f MiB, %d smtpd processes, %.1f MiB in the others, %.1f KiB/session" % (
            count, pss / 1024, processes, others / 1024, per))

    for run in rotate((run_maild, run_postfix), round_index):
        run()


def figure_pop3(servers, figures, round_index):
    plan = servers.plan
    n = plan["maildrop"]
    retr = {p: figures.setdefault("pop3_drop_" + p, Figure(
        "pop3_drop_" + p, ("POP3 login+UIDL+RETR, %d messages" % n) if p == "tuned" else "  against default Dovecot",
        "s", "Dovecot " + p, better="lower", note="one session, 10 KiB messages")) for p in ("tuned", "default")}
    rate = {p: figures.setdefault("pop3_rate_" + p, Figure(
        "pop3_rate_" + p, ("POP3 login-STAT-QUIT, %d clients" % POP3_CLIENTS) if p == "tuned" else "  against default Dovecot",
        "sessions/s", "Dovecot " + p, target=("ratio", 2) if p == "tuned" else ("info", None),
        note="%s on both sides" % DOVECOT_SCHEME)) for p in ("tuned", "default")}
    users = [servers.address(u) for u in servers.pop_users]
    drop = servers.address("drop")

    def measure(name, port, pid, drops, rates):
        if round_index == 0:  # warm-up, not counted (Dovecot builds its indexes here)
            load.retrieve_maildrop(port, drop, PASSWORD, n)
        profiled = name == "maild"
        with Profiled(servers, "pop3-retr-r%d" % round_index) if profiled else Nothing():
            times = load.retrieve_maildrop(port, drop, PASSWORD, n)
        with Profiled(servers, "pop3-sessions-r%d" % round_index) if profiled else Nothing():
            before = load.cpu_seconds(pid)
            per_second, errors, median, first_error = load.pop3_sessions(port, users, PASSWORD,
                                                                         plan["pop3_seconds"])
            used = load.cpu_seconds(pid) - before
        if errors:
            raise AssertionError("%s: %d POP3 sessions failed, first: %s" % (name, errors, first_error))
        for values in drops:
            values.append(times["total"])
        for values in rates:
            values.append(per_second)
        sessions = per_second * plan["pop3_seconds"]
        log("pop3  %-16s maildrop %.3f s (login %.1f ms, UIDL %.1f ms, RETR %.3f s, %d bytes); "
            "%.0f sessions/s, median %.1f ms, %.2f ms CPU/session" % (
                name, times["total"], times["login"] * 1000, times["uidl"] * 1000, times["retr"],
                times["octets"], per_second, (median or 0) * 1000, used / max(1, sessions) * 1000))

    sides = [("maild", servers.maild.ports["pop3"], servers.maild.process.pid,
              [retr["tuned"].maild, retr["default"].maild], [rate["tuned"].maild, rate["default"].maild])]
    for p in ("tuned", "default"):
        d = servers.dovecots[p]
        sides.append(("Dovecot " + p, d.port, d.pid, [retr[p].anchor_values], [rate[p].anchor_values]))
    for side in rotate(sides, round_index):
        measure(*side)


class Outbound:
    """What the outbound figure needs, made on its first use: a maild of its own
    (an empty queue, relaying for 127.0.0.0/8, every domain routed to one
    loopback port) and, for Postfix, a transport for the same domain to a port
    of its own. Nothing listens on those ports while the queues fill."""

    DOMAIN = "sink.test"

    def __init__(self, servers):
        self.maild_port = maild_harness.free_port()
        self.postfix_port = maild_harness.free_port()
        extra = ("[server]\nthreads = 0\n[store]\nworkers = 8\n[smtp]\nrelay_networks = 127.0.0.0/8\n"
                 "[delivery]\nroutes = %s = 127.0.0.1:%d\nretry_schedule = 1h\nmax_queue_age = 1d\n"
                 % (self.DOMAIN, self.maild_port))
        self.maild = maild_harness.Maild(servers.cleanups, tls=False, config_extra=extra,
                                         hostname="out.maild.test")
        maild_harness.mailctl_ok(self.maild, "db", "migrate")
        self.maild.start()
        servers.postfix.relay_to(self.DOMAIN, "127.0.0.1", self.postfix_port)
        servers.postfix.reload()
        log("outbound: maild pid %d (smtp %d) routes %s to port %d; Postfix to port %d" % (
            self.maild.process.pid, self.maild.ports["smtp"], self.DOMAIN, self.maild_port,
            self.postfix_port))

    def maild_queue(self):
        listed = maild_harness.mailctl_ok(self.maild, "--json", "queue", "list", "--limit", "100000")
        return json.loads(listed)


def parse_utc(text):
    """mailctl's times (2026-11-22T10:20:41Z) as Unix seconds."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def postfix_queued(postfix):
    """How many messages Postfix's queue holds (its queue files, without postqueue)."""
    count = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
        for _, _, files in os.walk(os.path.join(postfix.queue_dir, sub)):
            count += len(files)
    return count


def wait_for(predicate, what, timeout=DELIVERY_TIMEOUT, pause=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(pause)
    return time.perf_counter()


def figure_outbound(servers, figures, round_index):
    """N queued messages of 10 KiB delivered to smtp-sink: maild against Postfix.
    Each fills its queue by smtp-source (20 sessions) while nothing listens on
    its route's port, waits until every message was tried once and deferred,
    then starts an smtp-sink there and flushes (maild: mailctl queue retry
    --all, seen at the queue's next look, within 1 s; Postfix: postqueue -f).
    The figure is N / the time from the flush until the queue is empty."""
    n = servers.plan["messages"]
    rate = figures.setdefault("outbound", Figure(
        "outbound", "outbound %d queued to smtp-sink" % n, "msg/s", "Postfix", target=("ratio", 5),
        note="flush until the queue is empty"))
    if servers.outbound is None:
        servers.outbound = Outbound(servers)
    out = servers.outbound
    recipient = "rcpt@%s" % Outbound.DOMAIN

    def run_maild():
        smtp_source(out.maild.ports["smtp"], n, 20, recipient, MESSAGE_SIZE)
        far = time.time() + 1800

        def all_deferred():
            queue = out.maild_queue()
            return len(queue) == n and all(
                m["next_attempt"] and parse_utc(m["next_attempt"]) > far for m in queue)
        wait_for(all_deferred, "maild: %d messages tried once and deferred" % n, pause=0.5)
        sink = postfix_peer.SmtpSink(servers.cleanups, port=out.maild_port, capture=False, backlog=1024)
        pid = out.maild.process.pid
        before = load.cpu_seconds(pid)
        started = time.perf_counter()
        maild_harness.mailctl_ok(out.maild, "queue", "retry", "--all")
        done = wait_for(lambda: not out.maild_queue(), "maild's queue empty")
        used = load.cpu_seconds(pid) - before
        sink.cleanup()
        rate.maild.append(n / (done - started))
        log("outbound %d  maild    %7.0f msg/s  %.3f ms CPU/msg" % (n, n / (done - started), used / n * 1000))

    def run_postfix():
        postfix = servers.postfix
        smtp_source(postfix.port, n, 20, recipient, MESSAGE_SIZE)
        wait_for(lambda: postfix_queued(postfix) == n and len(postfix.queue()) == n
                 and all(m.get("queue_name") == "deferred" for m in postfix.queue()),
                 "Postfix: %d messages deferred" % n, pause=0.5)
        sink = postfix_peer.SmtpSink(servers.cleanups, port=out.postfix_port, capture=False, backlog=1024)
        started = time.perf_counter()
        postfix.flush()
        done = wait_for(lambda: postfix_queued(postfix) == 0, "Postfix's queue empty")
        sink.cleanup()
        rate.anchor_values.append(n / (done - started))
        log("outbound %d  Postfix  %7.0f msg/s" % (n, n / (done - started)))

    for run in rotate((run_maild, run_postfix), round_index):
        run()


class MysqlSide:
    """What the MySQL figures need, made on their first use: two private MariaDB
    primaries (fully durable, as mariadb_server.py starts them), the second with
    a semi-synchronous standby set up by mailctl db replicate, and a maild on
    each with the same settings and users as the SQLite maild."""

    SERVER_OPTIONS = {"max_allowed_packet": "64M", "log_bin_trust_function_creators": "ON"}

    def __init__(self, servers):
        self.servers = servers
        self.plain = self._maild("plain", server_id=1)
        self.semisync = self._maild("semisync", server_id=11)
        standby = mariadb_server.MariaDB(servers.cleanups, "bench-standby", server_id=12,
                                         extra_cnf=self.SERVER_OPTIONS)
        primary = self.semisync_primary
        password_file = os.path.join(self.semisync.dir, "admin-password")
        with open(password_file, "w") as f:
            f.write("bench-admin\n")
        for db in (primary, standby):
            db.sql("SET SESSION sql_log_bin = 0;"
                   "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'bench-admin';"
                   "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;")
        self.semisync.stop()
        maild_harness.mailctl_ok(self.semisync, "db", "replicate", "--primary", "127.0.0.1:%d" % primary.port,
                                 "--standby", "127.0.0.1:%d" % standby.port, "--admin-user", "admin",
                                 "--admin-password-file", password_file)
        self.semisync.write_config(self.semisync.config_extra + "[mysql]\nsemi_sync = true\n")
        self.semisync.start()
        status = maild_harness.mailctl_ok(self.semisync, "db", "status", "--admin-user", "admin",
                                          "--admin-password-file", password_file)
        log("MySQL + semi-sync standby:\n" + status)

    def _maild(self, name, server_id):
        servers = self.servers
        db = mariadb_server.MariaDB(servers.cleanups, "bench-" + name, server_id=server_id,
                                    extra_cnf=self.SERVER_OPTIONS)
        if name == "semisync":
            self.semisync_primary = db
        store = maild_harness.MysqlStore(db.host, db.port, db.user, db.password, db.database)
        extra = servers.maild_extra + "[mysql]\nendpoints = %s\n" % store.endpoint()
        maild = maild_harness.Maild(servers.cleanups, tls=False, config_extra=extra, mysql=store)
        maild.config_extra = extra
        maild_harness.mailctl_ok(maild, "db", "migrate")
        maild_harness.mailctl_ok(maild, "domain", "add", DOMAIN)
        for user in servers.users:
            maild_harness.mailctl_ok(maild, "user", "add", servers.address(user), "--hash-scheme",
                                     HASH_SCHEME, input=PASSWORD + "\n")
        maild.start()
        # The POP3 users' maildrops as fill() makes them on the SQLite maild.
        targets = [maild] if servers.filled else [maild, servers.maild]
        for target in targets:
            for user in servers.pop_users:
                smtp_source(target.ports["smtp"], POP3_SMALL_DROP, 2, servers.address(user), 1024)
        log("maild on MySQL (%s): pid %d, smtp %d, pop3 %d, MariaDB port %d" % (
            name, maild.process.pid, maild.ports["smtp"], maild.ports["pop3"], db.port))
        return maild


def figure_mysql(servers, figures, round_index):
    """The SMTP (20 sessions) and POP3 (login-STAT-QUIT) figures with the MySQL
    backend, against the same figures of the SQLite maild measured alternately in
    the same round; the SMTP figure once more with a semi-sync standby.
    Target: at least half of the SQLite figures; the standby's cost is reported."""
    n = servers.plan["messages"]
    smtp_row = figures.setdefault("mysql_smtp", Figure(
        "mysql_smtp", "MySQL: SMTP accept 10 KiB, 20 sessions", "msg/s", "maild SQLite",
        target=("ratio", 0.5), note="committed in MariaDB (durable: binlog + InnoDB flush at commit)"))
    semisync_row = figures.setdefault("mysql_semisync", Figure(
        "mysql_semisync", "  with a semi-sync standby (the cost)", "msg/s", "maild SQLite",
        note="each commit acknowledged by the standby (AFTER_SYNC); PRODUCT.md asks for its cost only"))
    pop3_row = figures.setdefault("mysql_pop3", Figure(
        "mysql_pop3", "MySQL: POP3 login-STAT-QUIT, %d clients" % POP3_CLIENTS, "sessions/s",
        "maild SQLite", target=("ratio", 0.5)))
    if servers.mysql is None:
        servers.mysql = MysqlSide(servers)
    side = servers.mysql
    recipient = servers.address("mysql%d" % round_index)
    users = [servers.address(u) for u in servers.pop_users]

    def smtp(maild, values, name):
        elapsed = smtp_source(maild.ports["smtp"], n, 20, recipient, MESSAGE_SIZE)
        values.append(n / elapsed)
        log("mysql smtp 20 sessions  %-22s %7.0f msg/s" % (name, n / elapsed))

    def pop3(maild, values, name):
        per_second, errors, _, first_error = load.pop3_sessions(maild.ports["pop3"], users, PASSWORD,
                                                                servers.plan["pop3_seconds"])
        if errors:
            raise AssertionError("%s: %d POP3 sessions failed, first: %s" % (name, errors, first_error))
        values.append(per_second)
        log("mysql pop3              %-22s %7.0f sessions/s" % (name, per_second))

    def run_sqlite():
        smtp(servers.maild, smtp_row.anchor_values, "SQLite")
        semisync_row.anchor_values.append(smtp_row.anchor_values[-1])
        pop3(servers.maild, pop3_row.anchor_values, "SQLite")

    def run_mysql():
        smtp(side.plain, smtp_row.maild, "MySQL")
        pop3(side.plain, pop3_row.maild, "MySQL")

    def run_semisync():
        smtp(side.semisync, semisync_row.maild, "MySQL + semi-sync")

    for run in rotate((run_mysql, run_sqlite, run_semisync), round_index):
        run()


RUNNERS = {"smtp": figure_smtp, "burst": figure_burst, "idle": figure_idle, "pop3": figure_pop3,
           "outbound": figure_outbound, "mysql": figure_mysql}


# ---- the table ----

def table_rows(figures):
    rows = []
    for f in figures.values():
        m, a = f.medians()
        if f.not_yet:
            rows.append((f.title, f.unit, "not yet", "not yet", "", f.anchor, f.target_text(), "not yet"))
            continue
        ratio = f.ratio()
        rows.append((f.title, f.unit, number(m), number(a), "" if ratio is None else "%.2f" % ratio,
                     f.anchor, f.target_text(), f.verdict()))
    return rows


def print_table(rows):
    header = ("figure", "unit", "maild", "anchor", "ratio", "anchor is", "target", "")
    table = [header] + list(rows)
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    right = {2, 3, 4}
    for i, row in enumerate(table):
        print("  ".join(str(c).rjust(widths[j]) if j in right else str(c).ljust(widths[j])
                        for j, c in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_csv(path, figures, meta):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["figure", "unit", "maild", "anchor", "ratio", "anchor_is", "target", "verdict",
                         "maild_runs", "anchor_runs", "note"])
        for fig in figures.values():
            m, a = fig.medians()
            ratio = fig.ratio()
            runs = lambda values: " ".join("-" if v is None else "%.4g" % v for v in values)  # noqa: E731
            writer.writerow([fig.title.strip(), fig.unit, "" if m is None else "%.6g" % m,
                             "" if a is None else "%.6g" % a, "" if ratio is None else "%.4f" % ratio,
                             fig.anchor, fig.target_text(), fig.verdict(), runs(fig.maild),
                             runs(fig.anchor_values), fig.note])
        for key, value in meta:
            writer.writerow(["meta: " + key, "", value, "", "", "", "", "", "", "", ""])


# ---- main ----

def check_environment(stages):
    problems = []
    why = postfix_peer.missing_tools()
    if why:
        problems.append(why)
    if "pop3" in stages:
        why = dovecot_peer.missing_tools()
        if why:
            problems.append(why)
    if "mysql" in stages:
        why = mariadb_server.missing_tools()
        if why:
            problems.append(why)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--maild", default=os.environ.get("MAILD_BIN")
                        or os.path.join(ROOT, "build/release/src/daemon/maild"))
    parser.add_argument("--mailctl", default=os.environ.get("MAILCTL_BIN")
                        or os.path.join(ROOT, "build/release/src/admin/mailctl"))
    parser.add_argument("--quick", action="store_true", help="a smoke run of about two minutes")
    parser.add_argument("--rounds", type=int, help="rounds (3; --quick: 1)")
    parser.add_argument("--messages", type=int, help="messages per SMTP figure (5000; --quick: 300)")
    parser.add_argument("--only", default=",".join(STAGES),
                        help="comma-separated stages to run (default: all: %s)" % ",".join(STAGES))
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    parser.add_argument("--maild-set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="a mail.conf setting for maild (repeatable), e.g. server.auth_cache_ttl=0s")
    parser.add_argument("--perf", metavar="DIR",
                        help="record maild's profile (perf record -g) during each of its SMTP and POP3 "
                             "measurements into DIR/<figure>.data")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and check the tools; start nothing")
    args = parser.parse_args()

    plan = dict(PLANS["quick" if args.quick else "full"])
    if args.rounds:
        plan["rounds"] = args.rounds
    if args.messages:
        plan["messages"] = args.messages
    for setting in args.maild_set:
        if "=" not in setting or "." not in setting.split("=", 1)[0]:
            parser.error("--maild-set wants SECTION.KEY=VALUE, not %r" % setting)
    stages = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error("unknown stage(s) %s; known: %s" % (", ".join(unknown), ", ".join(STAGES)))

    print("maild benchmark: %s, %d round(s); stages %s" % (
        "quick" if args.quick else "full", plan["rounds"], ", ".join(stages)))
    print("plan: %s" % ", ".join("%s=%s" % item for item in sorted(plan.items())))
    print("maild: %s%s" % (args.maild, "".join("  " + s for s in args.maild_set)))
    problems = check_environment(stages)
    for path in (args.maild, args.mailctl):
        if not os.access(path, os.X_OK):
            problems.append("%s is not an executable (build it: tests/bench/run.sh)" % path)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if "idle" in stages and soft < plan["idle"] + 1000:
        problems.append("open files limit %d < %d (tests/bench/run.sh raises it)" % (soft, plan["idle"] + 1000))
    if args.dry_run:
        for p in problems:
            print("would fail: %s" % p)
        print("dry run: nothing started")
        return 0
    if problems:
        for p in problems:
            print("bench: %s" % p, file=sys.stderr)
        return 2

    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    meta = [("date", date), ("commit", commit), ("nproc", str(os.cpu_count())),
            ("load average before", load.loadavg())]
    print("date: %s  commit: %s  nproc: %s  load average before: %s" % (date, commit, os.cpu_count(),
                                                                      load.loadavg()))
    cleanups = Cleanups()
    figures = {}
    started = time.monotonic()
    servers = None
    try:
        servers = Servers(args, cleanups, plan)
        servers.start()
        rate = load.fsync_rate(servers.maild.dir)
        meta.append(("disk fsync/s (4 KiB, maild's folder)", "%.0f" % rate))
        log("the disk: %.0f fdatasync/s of 4 KiB in %s" % (rate, servers.maild.dir))
        if "pop3" in stages:
            servers.fill()
        for round_index in range(plan["rounds"]):
            log("round %d of %d, load average %s" % (round_index + 1, plan["rounds"], load.loadavg()))
            for stage in STAGES:
                if stage in stages:
                    RUNNERS[stage](servers, figures, round_index)
            meta.append(("load average after round %d" % (round_index + 1), load.loadavg()))
        if servers.maild.process.poll() is not None:
            raise AssertionError("maild died: %s" % servers.maild.output()[-3000:])
    except BaseException:
        if servers is not None and servers.maild is not None:
            print(servers.maild.log()[-3000:], file=sys.stderr)
        raise
    finally:
        cleanups.run()
    meta.append(("load average after", load.loadavg()))
    meta.append(("duration", "%.0f s" % (time.monotonic() - started)))

    print()
    print_table(table_rows(figures))
    print()
    print("maild, anchor: medians of %d round(s); ratio: the median of each round's own ratio, > 1: "
          "maild is better (rates maild/anchor, times and memory anchor/maild)" % plan["rounds"])
    for key, value in meta:
        print("%s: %s" % (key, value))
    if args.csv:
        write_csv(args.csv, figures, meta)
        print("CSV written to %s" % args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
