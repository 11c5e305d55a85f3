"""High availability on MariaDB: two private servers, a primary and a
semi-synchronous standby set up by `mailctl db replicate`; maild on both
endpoints. 20 SMTP clients send numbered messages at once; the primary's
mariadbd is killed with SIGKILL in the middle; `mailctl db failover`
promotes the standby; the clients retry whatever did not get a 250; then
POP3 on every mailbox must show every message that ever got a 250, exactly
once and byte for byte, with the UIDLs listed before the kill unchanged --
and the same maild process served it all.

maild runs with [mysql] semi_sync = true, as in production: the test shows
that the setting lets maild move to a promoted standby that has no standby
of its own (semi-sync enabled there but inactive: maild keeps accepting mail
and logs a warning once it notices). The servers use a short rpl_semi_sync_master_timeout
(--semi-sync-timeout 5s) only so that the new primary's first commit, which
waits that long for a standby that is not there, keeps the test quick."""

import json
import os
import poplib
import smtplib
import threading
import time
import unittest

from maild_harness import IO_TIMEOUT, Maild, MysqlStore, mailctl_ok, provision, split_trace
from mariadb_server import MariaDB, missing_tools

PASSWORD = "secret"
MAILBOXES = ["user%d@example.test" % i for i in range(5)]
CLIENTS = 20
MESSAGES_PER_CLIENT = 15
KILL_AFTER = 120         # acknowledged messages before the primary is killed
# Clients wait before sending more than this many messages until the kill has happened, so
# that a slow test thread (a loaded machine) still kills the primary while mail is in flight.
HOLD_AFTER = KILL_AFTER + 2 * CLIENTS
SNAPSHOT_AFTER = 30      # acknowledged messages before the first POP3 listing
RUN_DEADLINE = 90.0      # the whole sending phase, bounded
# Fully durable servers (the defaults of mariadb_server): only max_allowed_packet for
# maild's messages, and leave to create the schema's trigger with the binary log on.
SERVER_OPTIONS = {"max_allowed_packet": "64M", "log_bin_trust_function_creators": "ON"}


def numbered_message(client, number):
    mailbox = MAILBOXES[client % len(MAILBOXES)]
    body = b"".join(b"client %d message %d line %d\r\n" % (client, number, line) for line in range(20))
    return mailbox, (b"From: <client%d@remote.test>\r\n"
                     b"To: <%s>\r\n"
                     b"Subject: client %d message %d\r\n"
                     b"Message-ID: <ha-%d-%d-%d@remote.test>\r\n"
                     b"\r\n" % (client, mailbox.encode(), client, number, os.getpid(), client, number)) + body


def pop3_maildrop(maild, mailbox, retrieve=False):
    """{uidl: message bytes (or None)} of mailbox, and the UIDLs in order; QUIT deletes nothing."""
    client = poplib.POP3("127.0.0.1", maild.ports["pop3"], timeout=IO_TIMEOUT)
    try:
        client.user(mailbox)
        client.pass_(PASSWORD)
        _, listing, _ = client.uidl()
        result, order = {}, []
        for line in listing:
            number, uidl = line.split()
            order.append(uidl)
            result[uidl] = None
            if retrieve:
                _, lines, _ = client.retr(int(number))
                result[uidl] = b"\r\n".join(lines) + b"\r\n"
        client.quit()
        return result, order
    finally:
        client.close()


class Sender(threading.Thread):
    """One SMTP client: sends its numbered messages in order, each until it gets a 250
    (a 4xx or a lost connection is tried again), and records every 250."""

    def __init__(self, test, client, acknowledged, lock, deadline, killed):
        super().__init__(daemon=True)
        self.test, self.client = test, client
        self.acknowledged, self.lock, self.deadline = acknowledged, lock, deadline
        self.killed = killed  # threading.Event, set once the primary is killed
        self.failures = []
        self.retries = 0

    def run(self):
        for number in range(MESSAGES_PER_CLIENT):
            mailbox, message = numbered_message(self.client, number)
            with self.lock:
                hold = len(self.acknowledged) >= HOLD_AFTER
            if hold:
                self.killed.wait(max(0.0, self.deadline - time.monotonic()))
            while True:
                if time.monotonic() > self.deadline:
                    self.failures.append("client %d message %d: no 250 before the deadline" % (self.client, number))
                    return
                try:
                    with smtplib.SMTP("127.0.0.1", self.test.maild.ports["smtp"], local_hostname="client.test",
                                      timeout=IO_TIMEOUT) as smtp:
                        smtp.sendmail("client%d@remote.test" % self.client, [mailbox], message)
                    with self.lock:
                        self.acknowledged[(self.client, number)] = (mailbox, message)
                    break
                except smtplib.SMTPResponseException as error:
                    if not 400 <= error.smtp_code < 500:
                        self.failures.append("client %d message %d: %s" % (self.client, number, error))
                        return
                except smtplib.SMTPRecipientsRefused as error:
                    codes = [code for code, _ in error.recipients.values()]
                    if not all(400 <= code < 500 for code in codes):
                        self.failures.append("client %d message %d: %s" % (self.client, number, error))
                        return
                except (OSError, smtplib.SMTPException):
                    pass  # a lost connection: the message was not acknowledged
                self.retries += 1
                time.sleep(0.2)


@unittest.skipIf(missing_tools(), missing_tools())
class NoAcknowledgedMessageLost(unittest.TestCase):

    def setUp(self):
        # Both servers start at once (each takes seconds); an error in either fails the test.
        servers, errors = {}, []

        def start(name, server_id):
            try:
                servers[name] = MariaDB(self, name, server_id=server_id, extra_cnf=SERVER_OPTIONS)
            except BaseException as error:  # SkipTest too: raised again below
                errors.append(error)

        starters = [threading.Thread(target=start, args=(name, server_id))
                    for name, server_id in (("primary", 1), ("standby", 2))]
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join(120)
        if errors:
            raise errors[0]
        self.assertEqual(sorted(servers), ["primary", "standby"], "a server did not start in 120 s")
        self.primary, self.standby = servers["primary"], servers["standby"]
        store = MysqlStore(self.primary.host, self.primary.port, self.primary.user,
                           self.primary.password, self.primary.database)
        self.endpoints = "%s, %s" % (store.endpoint(), "127.0.0.1:%d" % self.standby.port)
        self.maild = Maild(self, "[mysql]\nendpoints = %s\nsemi_sync = true" % self.endpoints, mysql=store)
        # An administrator account on each server (outside the binary log, like the
        # fixture's own set-up), and one maild password for both endpoints.
        self.admin_password_file = os.path.join(self.maild.dir, "admin-password")
        with open(self.admin_password_file, "w") as f:
            f.write("admin-secret\n")
        for db in (self.primary, self.standby):
            db.sql("SET SESSION sql_log_bin = 0;"
                   "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin-secret';"
                   "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;"
                   "ALTER USER 'maild'@'127.0.0.1' IDENTIFIED BY '%s'" % self.primary.password)
        self.admin = ["--admin-user", "admin", "--admin-password-file", self.admin_password_file]

    def status(self):
        result = self.maild.mailctl("--json", "db", "status", *self.admin)
        return {row["endpoint"]: row for row in json.loads(result.stdout)["endpoints"]}, result

    def test_no_acknowledged_message_is_lost_when_the_primary_is_killed(self):
        started = time.monotonic()
        primary = "127.0.0.1:%d" % self.primary.port
        standby = "127.0.0.1:%d" % self.standby.port
        out = mailctl_ok(self.maild, "db", "replicate", "--primary", primary, "--standby", standby,
                         "--semi-sync-timeout", "5s", *self.admin)
        self.assertIn("acknowledges as a semi-sync standby", out)
        again = mailctl_ok(self.maild, "db", "replicate", "--primary", primary, "--standby", standby,
                           "--semi-sync-timeout", "5s", *self.admin)
        self.assertIn("already replicates", again)  # idempotent
        provision(self.maild, MAILBOXES, password=PASSWORD)
        self.maild.start()
        pid = self.maild.process.pid
        endpoints, _ = self.status()
        self.assertEqual(endpoints[primary]["role"], "primary", endpoints)
        self.assertEqual(endpoints[primary]["semi_sync"], "on (1 standby)", endpoints)
        self.assertEqual(endpoints[standby]["role"], "standby", endpoints)
        self.assertEqual(endpoints[standby]["replication"], "running from " + primary, endpoints)

        acknowledged, lock = {}, threading.Lock()
        deadline = time.monotonic() + RUN_DEADLINE
        killed = threading.Event()
        senders = [Sender(self, client, acknowledged, lock, deadline, killed) for client in range(CLIENTS)]
        for sender in senders:
            sender.start()

        def count():
            with lock:
                return len(acknowledged)

        def wait_for(acks):
            while count() < acks and time.monotonic() < deadline and any(s.is_alive() for s in senders):
                time.sleep(0.05)
            self.assertGreaterEqual(count(), acks, [s.failures for s in senders])

        wait_for(SNAPSHOT_AFTER)
        listed_before = {mailbox: pop3_maildrop(self.maild, mailbox)[1] for mailbox in MAILBOXES}
        wait_for(KILL_AFTER)
        kill_time = time.monotonic()
        self.primary.kill()
        killed_at = count()
        killed.set()
        failover = self.maild.mailctl("db", "failover", *self.admin)
        self.assertEqual(failover.returncode, 0, failover.stdout + failover.stderr)
        self.assertIn("new primary  " + standby, failover.stdout)
        self.assertIn("not fenced", failover.stdout)          # the old primary is unreachable
        self.assertIn("has no standby", failover.stdout)
        failover_done = time.monotonic()

        for sender in senders:
            sender.join(max(0.1, deadline - time.monotonic()))
        self.assertFalse(any(s.is_alive() for s in senders), "clients still sending at the deadline")
        self.assertEqual([f for s in senders for f in s.failures], [])
        self.assertEqual(len(acknowledged), CLIENTS * MESSAGES_PER_CLIENT)
        self.assertLess(killed_at, CLIENTS * MESSAGES_PER_CLIENT, "the kill came after the last message")
        self.assertGreater(sum(s.retries for s in senders), 0, "no client saw the failover")
        self.assertEqual(self.maild.process.pid, pid)
        self.assertIsNone(self.maild.process.poll(), "maild exited")

        # Every acknowledged message exactly once, byte for byte, in its own mailbox.
        expected = {}
        for (client, number), (mailbox, message) in acknowledged.items():
            expected.setdefault(mailbox, []).append(message)
        for mailbox in MAILBOXES:
            drop, order = pop3_maildrop(self.maild, mailbox, retrieve=True)
            contents = [split_trace(message)[1] for message in drop.values()]
            self.assertEqual(len(contents), len(set(contents)), "a message stored twice in " + mailbox)
            self.assertEqual(sorted(contents), sorted(expected.get(mailbox, [])), mailbox)
            missing = [uidl for uidl in listed_before[mailbox] if uidl not in drop]
            self.assertEqual(missing, [], "UIDLs listed before the failover are gone from " + mailbox)
            # The order of those listed before is kept too (ids replicated as they were).
            self.assertEqual([u for u in order if u in set(listed_before[mailbox])], listed_before[mailbox])

        endpoints, _ = self.status()
        self.assertEqual(endpoints[standby]["role"], "primary", endpoints)
        self.assertEqual(endpoints[primary]["role"], "unreachable", endpoints)
        self.maild.wait_for_log("writing to " + standby)
        print("\n%d messages from %d clients, primary killed after %d acknowledged; failover took "
              "%.1f s after the kill; %d retries; %.1f s in all"
              % (len(acknowledged), CLIENTS, killed_at, failover_done - kill_time,
                 sum(s.retries for s in senders), time.monotonic() - started))


if __name__ == "__main__":
    unittest.main()
