"""maild on a MySQL store when the server misbehaves: a primary that turns
read-only and back (SMTP says 451 4.3.0 and POP3 -ERR [SYS/TEMP] meanwhile,
then mail flows again without a restart), connections killed inside a
delivery and between deliveries (451, then the client's retry stores the
message once), and the checks that stop maild at start (max_allowed_packet,
semi-synchronous replication). The real binaries on free ports, smtplib and
poplib as clients; MariaDB servers of the test run (mariadb_fixture.py) or
the test's own (mariadb_server.py)."""

import poplib
import smtplib
import time
import unittest

from maild_harness import (IO_TIMEOUT, Maild, MysqlStore, deliveries, distinct_message, provision,
                           smtp_send)
from mariadb_fixture import SERVER_OPTIONS
from mariadb_server import MariaDB, missing_tools

BOB = "bob@example.test"
PASSWORD = "secret"
TEMPORARY_SMTP = "4.3.0"
TEMPORARY_POP3 = b"-ERR [SYS/TEMP]"


def send(maild, message, sender="sender@remote.test"):
    """One SMTP transaction for bob; (code, text) of the first refusal, or (250, b"")."""
    with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="client.test",
                      timeout=IO_TIMEOUT) as client:
        try:
            client.sendmail(sender, [BOB], message)
        except smtplib.SMTPRecipientsRefused as refused:
            return refused.recipients[BOB]
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error
        return 250, b""


def pop3_login(maild):
    """USER/PASS as bob: the status line of PASS (or of the refusal), and the message count."""
    client = poplib.POP3("127.0.0.1", maild.ports["pop3"], timeout=IO_TIMEOUT)
    try:
        client.user(BOB)
        reply = client.pass_(PASSWORD)
        count = client.stat()[0]
        client.quit()
        return reply, count
    except poplib.error_proto as error:
        return error.args[0], None
    finally:
        client.close()


def close_pipes(maild):
    """Closes the pipes of maild's last process (it has exited) before it starts again."""
    for stream in (maild.process.stdout, maild.process.stderr):
        if stream:
            stream.close()


def until(condition, timeout=20.0):
    """Polls condition() until it returns something true, within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@unittest.skipIf(missing_tools(), missing_tools())
class PrimaryTurnsReadOnly(unittest.TestCase):
    """A private server: read_only is global, the shared one must not see it."""

    def setUp(self):
        self.db = MariaDB(self, extra_cnf=SERVER_OPTIONS)
        store = MysqlStore(self.db.host, self.db.port, self.db.user, self.db.password, self.db.database)
        self.maild = Maild(self, mysql=store)
        provision(self.maild, [BOB], password=PASSWORD)
        self.maild.start()

    def test_read_only_primary_gets_451_then_mail_flows_again_without_restart(self):
        pid = self.maild.process.pid
        self.assertEqual(send(self.maild, distinct_message("before")), (250, b""))

        self.db.sql("SET GLOBAL read_only = 1")
        # The first write refused by the server fails at DATA (the recipient was still read)...
        code, text = send(self.maild, distinct_message("refused"))
        self.assertEqual(code, 451, text)
        self.assertIn(TEMPORARY_SMTP.encode(), text)
        # ...and from then on, with no writable endpoint, every store call fails: RCPT too.
        code, text = send(self.maild, distinct_message("refused again"))
        self.assertEqual(code, 451, text)
        self.assertIn(b"temporary failure looking up the recipient", text)
        reply, _ = pop3_login(self.maild)
        self.assertTrue(reply.startswith(TEMPORARY_POP3), reply)
        self.maild.wait_for_log("no writable endpoint")

        self.db.sql("SET GLOBAL read_only = 0")
        accepted = until(lambda: send(self.maild, distinct_message("after")) == (250, b""))
        self.assertTrue(accepted, self.maild.log()[-3000:])
        self.assertEqual(self.maild.process.pid, pid)
        self.assertIsNone(self.maild.process.poll())
        reply, count = pop3_login(self.maild)
        self.assertTrue(reply.startswith(b"+OK"), reply)
        self.assertEqual(count, 2)  # "before" and "after": nothing refused was kept
        subjects = sorted(d["subject"] for d in deliveries(self.maild))
        self.assertEqual(subjects, ["after", "before"])

    def test_semi_sync_required_refuses_a_primary_without_it_and_accepts_one_with_it(self):
        self.assertEqual(self.maild.stop(), 0)
        self.maild.write_config("[mysql]\nsemi_sync = true")
        close_pipes(self.maild)
        self.maild.start(wait=False)
        self.assertEqual(self.maild.process.wait(timeout=30), 1)
        close_pipes(self.maild)
        self.assertIn("semi-synchronous replication is off on this primary "
                      "(rpl_semi_sync_master_enabled)", self.maild.log())

        # No standby is attached: a commit would wait this long, then go on without one.
        self.db.sql("SET GLOBAL rpl_semi_sync_master_timeout = 100;"
                    "SET GLOBAL rpl_semi_sync_master_enabled = ON")
        self.maild.start()
        self.assertEqual(send(self.maild, distinct_message("semi-sync")), (250, b""))


@unittest.skipIf(missing_tools(), missing_tools())
class LostConnections(unittest.TestCase):
    """On the run's shared server, in this test's own database."""

    def setUp(self):
        self.maild = Maild(self, mysql=MysqlStore.shared())
        provision(self.maild, [BOB], password=PASSWORD)
        self.maild.start()
        self.store = self.maild.mysql

    def kill(self, where):
        """KILL CONNECTION for each of maild's connections to its database matching where."""
        ids = self.store.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' "
                             "AND ID <> CONNECTION_ID() AND %s" % (self.store.database, where)).split()
        for connection in ids:
            self.store.sql("KILL CONNECTION %s" % connection)
        return len(ids)

    def test_a_connection_killed_inside_a_delivery_gets_451_and_the_retry_is_stored_once(self):
        # The delivery row's insert sleeps for this sender: time to kill its connection.
        self.store.sql("CREATE TRIGGER slow BEFORE INSERT ON deliveries FOR EACH ROW "
                       "SET @slept = IF(NEW.reverse_path = 'slow@remote.test', SLEEP(5), 0)",
                       database=self.store.database)
        message = distinct_message("killed")
        client = smtplib.SMTP("127.0.0.1", self.maild.ports["smtp"], local_hostname="client.test",
                              timeout=IO_TIMEOUT)
        self.addCleanup(client.close)
        client.ehlo()
        client.mail("slow@remote.test")
        client.rcpt(BOB)
        client.putcmd("data")
        self.assertEqual(client.getreply()[0], 354)
        client.send(message + b".\r\n")
        killed = until(lambda: self.kill("INFO LIKE 'SET @slept%'"), timeout=IO_TIMEOUT)
        self.assertEqual(killed, 1)
        code, text = client.getreply()
        self.assertEqual(code, 451, text)
        self.assertIn(TEMPORARY_SMTP.encode(), text)
        client.quit()
        self.assertEqual(deliveries(self.maild), [])
        self.maild.wait_for_log("looking for the writable endpoint again")

        self.store.sql("DROP TRIGGER slow", database=self.store.database)
        self.assertEqual(send(self.maild, message, sender="slow@remote.test"), (250, b""))
        self.assertEqual(send(self.maild, message, sender="slow@remote.test"), (250, b""))  # a 250 lost
        stored = deliveries(self.maild)
        self.assertEqual(len(stored), 1, stored)
        self.assertEqual(stored[0]["subject"], "killed")

    def test_connections_killed_between_deliveries_are_replaced(self):
        smtp_send(self.maild, [BOB], distinct_message("first"))
        self.assertGreater(self.kill("TRUE"), 0)
        self.assertEqual(send(self.maild, distinct_message("second")), (250, b""))
        reply, count = pop3_login(self.maild)
        self.assertTrue(reply.startswith(b"+OK"), reply)
        self.assertEqual(count, 2)


@unittest.skipIf(missing_tools(), missing_tools())
class StartupChecks(unittest.TestCase):
    def test_a_max_allowed_packet_below_the_message_size_stops_maild(self):
        maild = Maild(self, "[smtp]\nmax_message_size = 100M", mysql=MysqlStore.shared())
        maild.start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("max_allowed_packet is 64M, less than the 101M a message of [smtp] "
                      "max_message_size needs", maild.log())

    def test_no_reachable_endpoint_stops_maild_naming_each(self):
        unreachable = MysqlStore("127.0.0.1", 1, "maild", "x", "maild_unused")
        maild = Maild(self, mysql=unreachable)
        maild.start(wait=False)
        self.assertEqual(maild.process.wait(timeout=30), 1)
        self.assertIn("mysql: no writable endpoint (127.0.0.1:1: ", maild.log())


if __name__ == "__main__":
    unittest.main()
