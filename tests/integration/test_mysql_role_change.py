"""Reads follow a role change without waiting for a write to fail, on two
private MariaDB servers.

A is the primary, B its standby; maild runs on A and has served POP3 from
it, so its pool holds connections to A. `mailctl db failover` with A still
up fences A (read_only = ON, A then replicates B) and promotes B: A stays
reachable, and every statement but a write still works there. One delivery
is then marked deleted on B alone (sql_log_bin = 0: it never reaches A), so
a listing read on A and one read on B differ. With no traffic at all, maild
must notice within its role check interval (limits::mysql_role_check, 2 s),
log one line naming A and B, and the next POP3 listing must be B's -- and
no store call may have failed on the way (no write was refused by A)."""

import os
import poplib
import smtplib
import time
import unittest

from maild_harness import IO_TIMEOUT, Maild, MysqlStore, mailctl_ok, provision
from mariadb_server import missing_tools, start_pair

PASSWORD = "secret"
MAILBOX = "user@example.test"
ROLE_CHECK = 2.0   # limits::mysql_role_check
SLACK = 3.0        # one survey of both endpoints, and a loaded machine
FAILED_CALL = "looking for the writable endpoint again"   # what a failed store call logs


def send(maild, number):
    message = (b"From: <sender@remote.test>\r\nTo: <%s>\r\nSubject: message %d\r\n"
               b"Message-ID: <role-%d-%d@remote.test>\r\n\r\nbody %d\r\n"
               % (MAILBOX.encode(), number, os.getpid(), number, number))
    with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="client.test",
                      timeout=IO_TIMEOUT) as smtp:
        smtp.sendmail("sender@remote.test", [MAILBOX], message)


def pop3_uidls(maild):
    """The UIDLs of MAILBOX's listing; QUIT deletes nothing."""
    client = poplib.POP3("127.0.0.1", maild.ports["pop3"], timeout=IO_TIMEOUT)
    try:
        client.user(MAILBOX)
        client.pass_(PASSWORD)
        _, listing, _ = client.uidl()
        client.quit()
        return [line.split()[1].decode() for line in listing]
    finally:
        client.close()


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.1)


@unittest.skipIf(missing_tools(), missing_tools())
class ReadsFollowARoleChange(unittest.TestCase):

    def setUp(self):
        self.a, self.b = start_pair(self, {"read_only": "ON"})
        self.a_endpoint = "127.0.0.1:%d" % self.a.port
        self.b_endpoint = "127.0.0.1:%d" % self.b.port
        store = MysqlStore(self.a.host, self.a.port, self.a.user, self.a.password, self.a.database)
        self.maild = Maild(self, "[mysql]\nendpoints = %s, %s" % (self.a_endpoint, self.b_endpoint),
                           mysql=store)
        password_file = os.path.join(self.maild.dir, "admin-password")
        with open(password_file, "w") as f:
            f.write("admin-secret\n")
        for db in (self.a, self.b):
            db.sql("SET SESSION sql_log_bin = 0;"
                   "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin-secret';"
                   "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;"
                   "ALTER USER 'maild'@'127.0.0.1' IDENTIFIED BY '%s'" % self.a.password)
        self.admin = ["--admin-user", "admin", "--admin-password-file", password_file]

    def deliveries_on(self, server):
        return int(server.sql("SELECT COUNT(*) FROM deliveries WHERE status < 2",
                              database="maild").strip())

    def test_a_listing_follows_a_failover_within_the_role_check_interval(self):
        mailctl_ok(self.maild, "db", "replicate", "--primary", self.a_endpoint, "--standby",
                   self.b_endpoint, "--semi-sync-timeout", "2s", *self.admin)
        provision(self.maild, [MAILBOX], password=PASSWORD)
        self.maild.start()
        send(self.maild, 1)
        send(self.maild, 2)
        before = pop3_uidls(self.maild)   # the pool now holds connections to A
        self.assertEqual(len(before), 2)
        wait_until(lambda: self.deliveries_on(self.b) == 2, 10, "B has both deliveries")

        out = mailctl_ok(self.maild, "db", "failover", *self.admin)
        failed_over = time.monotonic()
        self.assertIn("new primary  " + self.b_endpoint, out)
        self.assertIn("fenced       yes", out)
        self.assertEqual(self.a.sql("SELECT @@GLOBAL.read_only").strip(), "1")

        # The first delivery is deleted on B only: a listing read on A still shows it.
        self.b.sql("SET SESSION sql_log_bin = 0; UPDATE deliveries SET status = 2 ORDER BY id LIMIT 1",
                   database="maild")
        self.assertEqual(self.deliveries_on(self.b), 1)
        self.assertEqual(self.deliveries_on(self.a), 2)

        # Without a single store call, maild moves to B within the interval.
        self.maild.wait_for_log("writing to " + self.b_endpoint, timeout=ROLE_CHECK + SLACK)
        self.assertLessEqual(time.monotonic() - failed_over, ROLE_CHECK + SLACK)
        self.assertIn("%s is no longer the writable endpoint" % self.a_endpoint, self.maild.log())
        self.assertEqual(pop3_uidls(self.maild), before[1:])
        self.assertNotIn(FAILED_CALL, self.maild.log())

        # Mail goes to B too, and is listed from there.
        send(self.maild, 3)
        after = pop3_uidls(self.maild)
        self.assertEqual(len(after), 2)
        self.assertEqual(after[0], before[1])
        self.assertEqual(self.deliveries_on(self.b), 2)
        self.assertNotIn(FAILED_CALL, self.maild.log())


if __name__ == "__main__":
    unittest.main()
