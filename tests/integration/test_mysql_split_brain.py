"""No split brain after a failover, on two private MariaDB servers.

A is the primary, B its standby (read_only = ON in its configuration, as
docs/operations.md says). B stops receiving, A commits two transactions B
never gets, A dies, `mailctl db failover` promotes B and maild writes there.
Then B restarts and comes back read-only (its configuration still says so),
and A comes back writable (its configuration unchanged) with its two
transactions: the only writable endpoint is the stale one. maild must refuse
it (451, nothing written there, a loud log line), also after a restart of
maild, `mailctl db status` must exit non-zero naming the divergence, and mail
must flow again once B is writable and A read-only.

`mailctl db replicate` with an errant transaction on the standby (accounts
created on both servers with the binary log on, so each has one GTID, with
equal sequence numbers) must refuse before changing anything, and work once
the standby's binary log is reset as its message says."""

import json
import os
import poplib
import smtplib
import time
import unittest

from maild_harness import IO_TIMEOUT, Maild, MysqlStore, mailctl_ok, provision
from mariadb_server import missing_tools, start_pair

PASSWORD = "secret"
MAILBOX = "user@example.test"
SEMI_SYNC_TIMEOUT = "2s"   # A's commits after B stopped wait this long once, then run alone


def send(maild, number):
    """One message to MAILBOX; the SMTP reply code of the transaction (250, or the refusal)."""
    message = (b"From: <sender@remote.test>\r\nTo: <%s>\r\nSubject: message %d\r\n"
               b"Message-ID: <split-%d-%d@remote.test>\r\n\r\nbody %d\r\n"
               % (MAILBOX.encode(), number, os.getpid(), number, number))
    try:
        with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="client.test",
                          timeout=IO_TIMEOUT) as smtp:
            smtp.sendmail("sender@remote.test", [MAILBOX], message)
        return 250
    except smtplib.SMTPRecipientsRefused as error:
        return min(code for code, _ in error.recipients.values())
    except smtplib.SMTPResponseException as error:
        return error.smtp_code
    except (OSError, smtplib.SMTPException):
        return 0  # no reply: the connection was lost


def pop3_count(maild):
    client = poplib.POP3("127.0.0.1", maild.ports["pop3"], timeout=IO_TIMEOUT)
    try:
        client.user(MAILBOX)
        client.pass_(PASSWORD)
        count, _ = client.stat()
        client.quit()
        return count
    finally:
        client.close()


def deliveries(server):
    return int(server.sql("SELECT COUNT(*) FROM deliveries", database="maild").strip())


def admin_account(test, maild, servers, log_bin):
    """An administrator account on each server, and maild's password the same on both;
    with log_bin off (docs/operations.md) or on (what made standbys errant)."""
    password_file = os.path.join(maild.dir, "admin-password")
    with open(password_file, "w") as f:
        f.write("admin-secret\n")
    for db in servers:
        db.sql("SET SESSION sql_log_bin = %d;"
               "CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY 'admin-secret';"
               "GRANT ALL PRIVILEGES ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;"
               "ALTER USER 'maild'@'127.0.0.1' IDENTIFIED BY '%s'"
               % (1 if log_bin else 0, servers[0].password))
    return ["--admin-user", "admin", "--admin-password-file", password_file]


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.2)


@unittest.skipIf(missing_tools(), missing_tools())
class NoSplitBrain(unittest.TestCase):

    def setUp(self):
        self.a, self.b = start_pair(self, {"read_only": "ON"})
        self.a_endpoint = "127.0.0.1:%d" % self.a.port
        self.b_endpoint = "127.0.0.1:%d" % self.b.port
        store = MysqlStore(self.a.host, self.a.port, self.a.user, self.a.password, self.a.database)
        self.maild = Maild(self, "[mysql]\nendpoints = %s, %s" % (self.a_endpoint, self.b_endpoint),
                           mysql=store)
        self.admin = admin_account(self, self.maild, [self.a, self.b], log_bin=False)

    def test_maild_refuses_an_old_primary_back_writable_after_a_failover(self):
        mailctl_ok(self.maild, "db", "replicate", "--primary", self.a_endpoint, "--standby",
                   self.b_endpoint, "--semi-sync-timeout", SEMI_SYNC_TIMEOUT, *self.admin)
        provision(self.maild, [MAILBOX], password=PASSWORD)
        self.maild.start()
        for number in range(3):
            self.assertEqual(send(self.maild, number), 250)
        position_file = os.path.join(self.maild.dir, "mysql-gtid-position")
        with open(position_file) as f:
            self.assertTrue(f.read().startswith("0-1-"), "maild's position names server 1 (A)")

        # B applies what it received (semi-sync waits for receipt only), then stops
        # receiving; A commits two transactions that B never gets, then dies.
        applied = self.a.sql("SELECT @@GLOBAL.gtid_binlog_pos").strip()
        waited = self.b.sql("SELECT MASTER_GTID_WAIT('%s', 30)" % applied).strip()
        self.assertEqual(waited, "0", "B did not apply A's %s within 30 s" % applied)
        self.b.sql("STOP SLAVE")
        self.a.sql("CREATE TABLE maild.scratch (id INT PRIMARY KEY) ENGINE=InnoDB;"
                   "INSERT INTO maild.scratch VALUES (1)")
        self.a.kill()
        failover = self.maild.mailctl("db", "failover", "--semi-sync-timeout", SEMI_SYNC_TIMEOUT,
                                      *self.admin)
        self.assertEqual(failover.returncode, 0, failover.stdout + failover.stderr)
        self.assertIn("new primary  " + self.b_endpoint, failover.stdout)
        # The lines that make the change survive a restart, for both servers.
        self.assertIn("in the [mariadbd] section of each server's option file", failover.stdout)
        for line in ("%s: read_only = OFF" % self.b_endpoint,
                     "%s: rpl_semi_sync_master_enabled = ON" % self.b_endpoint,
                     "%s: rpl_semi_sync_master_timeout = 2000" % self.b_endpoint,
                     "%s: read_only = ON" % self.a_endpoint,
                     "%s: rpl_semi_sync_slave_enabled = ON" % self.a_endpoint):
            self.assertIn("\n  " + line + "\n", failover.stdout)

        # maild moves to B (it has everything maild acknowledged) and writes there.
        wait_until(lambda: send(self.maild, 10) == 250, 30, "maild writes to the new primary")
        for number in range(11, 14):
            self.assertEqual(send(self.maild, number), 250)
        acknowledged = pop3_count(self.maild)
        self.assertEqual(acknowledged, 7)
        with open(position_file) as f:
            self.assertTrue(f.read().startswith("0-2-"), "maild's position names server 2 (B)")

        # B restarts read-only (its configuration says so); A comes back writable.
        self.b.stop()
        self.b.start()
        self.a.start()
        self.assertEqual(self.b.sql("SELECT @@GLOBAL.read_only").strip(), "1")
        self.assertEqual(self.a.sql("SELECT @@GLOBAL.read_only").strip(), "0")
        stale_before = deliveries(self.a)

        # maild refuses A: a 4xx, nothing stored there, a loud log line.
        for number in range(20, 23):
            code = send(self.maild, number)
            self.assertTrue(400 <= code < 500, "message %d got %d on the stale primary" % (number, code))
        self.assertEqual(deliveries(self.a), stale_before, "maild wrote to the stale primary")
        self.maild.wait_for_log("refusing to write to %s, the only writable endpoint" % self.a_endpoint)
        self.assertIn(" error mysql: refusing to write to", self.maild.log())
        with self.assertRaises(poplib.error_proto):  # nor does POP3 show A's stale maildrop
            pop3_count(self.maild)

        # mailctl db status: non-zero, naming the divergence and what maild acknowledged.
        status = self.maild.mailctl("db", "status", *self.admin)
        self.assertNotEqual(status.returncode, 0, status.stdout)
        self.assertIn("diverged: %s" % self.a_endpoint, status.stdout)
        self.assertIn("and %s at '0-2-" % self.b_endpoint, status.stdout)
        self.assertIn("behind: the primary %s" % self.a_endpoint, status.stdout)
        self.assertIn(position_file, status.stdout)
        as_json = self.maild.mailctl("--json", "db", "status", *self.admin)
        self.assertNotEqual(as_json.returncode, 0, as_json.stdout)
        divergence = json.loads(as_json.stdout)["divergence"].split("\n")
        self.assertEqual([line.split(":")[0] for line in divergence], ["diverged", "behind"])

        # A restarted maild remembers (its position file): it does not start on A.
        self.maild.stop()
        with self.assertRaises(AssertionError) as refused:
            self.maild.start()
        self.assertIn("refusing to write to %s" % self.a_endpoint, str(refused.exception))
        self.assertEqual(deliveries(self.a), stale_before)

        # The right primary writable again, the stale one read-only: mail flows, to B.
        self.a.sql("SET GLOBAL read_only = ON")
        self.b.sql("SET GLOBAL read_only = OFF")
        self.maild.start()
        wait_until(lambda: send(self.maild, 30) == 250, 30, "maild writes to B again")
        self.assertEqual(pop3_count(self.maild), acknowledged + 1)
        self.maild.wait_for_log("writing to " + self.b_endpoint)
        self.assertEqual(deliveries(self.a), stale_before)


@unittest.skipIf(missing_tools(), missing_tools())
class ReplicateRefusesAnErrantStandby(unittest.TestCase):

    def setUp(self):
        self.a, self.b = start_pair(self, {})
        self.a_endpoint = "127.0.0.1:%d" % self.a.port
        self.b_endpoint = "127.0.0.1:%d" % self.b.port
        store = MysqlStore(self.a.host, self.a.port, self.a.user, self.a.password, self.a.database)
        self.maild = Maild(self, "[mysql]\nendpoints = %s, %s" % (self.a_endpoint, self.b_endpoint),
                           mysql=store)
        # As the old docs had it: the binary log on, so each server has transactions of its own,
        # numbered alike (0-1-N on A, 0-2-N on B).
        self.admin = admin_account(self, self.maild, [self.a, self.b], log_bin=True)

    def replication_state(self):
        return {
            "slave status": self.b.sql("SHOW SLAVE STATUS"),
            "gtid_slave_pos": self.b.sql("SELECT @@GLOBAL.gtid_slave_pos"),
            "gtid_current_pos": self.b.sql("SELECT @@GLOBAL.gtid_current_pos"),
            "standby globals": self.b.sql(
                "SELECT @@GLOBAL.read_only, @@GLOBAL.rpl_semi_sync_slave_enabled, "
                "@@GLOBAL.rpl_semi_sync_master_enabled, @@GLOBAL.rpl_semi_sync_master_timeout"),
            "primary globals": self.a.sql(
                "SELECT @@GLOBAL.rpl_semi_sync_master_enabled, @@GLOBAL.rpl_semi_sync_master_timeout"),
            "replication account": self.a.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'maild_repl'"),
            "primary position": self.a.sql("SELECT @@GLOBAL.gtid_binlog_pos"),
        }

    def test_errant_standby_is_refused_before_anything_changes(self):
        a_pos = self.a.sql("SELECT @@GLOBAL.gtid_binlog_pos").strip()
        b_pos = self.b.sql("SELECT @@GLOBAL.gtid_current_pos").strip()
        self.assertTrue(a_pos.startswith("0-1-") and b_pos == "0-2-" + a_pos[4:], (a_pos, b_pos))
        before = self.replication_state()
        started = time.monotonic()
        result = self.maild.mailctl("db", "replicate", "--primary", self.a_endpoint, "--standby",
                                    self.b_endpoint, *self.admin)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertLess(time.monotonic() - started, 15, "refused only after waiting")
        self.assertIn("errant GTIDs %s" % b_pos, result.stderr)
        self.assertIn("nothing was changed", result.stderr)
        self.assertIn("RESET MASTER", result.stderr)
        self.assertEqual(self.replication_state(), before)

        # The fix the message gives: the standby's own history goes; the primary's is the same
        # set-up, already on the standby, so the standby starts after it.
        self.assertIn("SET GLOBAL gtid_slave_pos = '%s'" % a_pos, result.stderr)
        self.b.sql("RESET MASTER; SET GLOBAL gtid_slave_pos = '%s'" % a_pos)
        out = mailctl_ok(self.maild, "db", "replicate", "--primary", self.a_endpoint, "--standby",
                         self.b_endpoint, "--semi-sync-timeout", SEMI_SYNC_TIMEOUT, *self.admin)
        self.assertIn("acknowledges as a semi-sync standby", out)
        # Caught up with the primary, whose history now has the replication account too.
        self.assertEqual(self.b.sql("SELECT @@GLOBAL.gtid_slave_pos").strip(),
                         self.a.sql("SELECT @@GLOBAL.gtid_binlog_pos").strip())
        self.assertEqual(self.b.sql("SHOW GLOBAL STATUS LIKE 'Slave_running'").split(), ["Slave_running", "ON"])


if __name__ == "__main__":
    unittest.main()
