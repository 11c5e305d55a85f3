"""The MariaDB test servers themselves, without maild: a private mariadbd
starts in a temp datadir on a free loopback port, the maild user reaches it
over TCP, binary log and GTID are on, two run side by side, stop() leaves
nothing behind, and a SIGKILL loses no committed row. If these fail, a failing
MariaDB store test says nothing about maild."""

import os
import time
import unittest

from mariadb_server import MariaDB, missing_tools, port_free


def rows(text):
    return [line.split("\t") for line in text.splitlines()]


@unittest.skipIf(missing_tools(), missing_tools())
class MariaDBServerTest(unittest.TestCase):
    def check_ok(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_maild_user_creates_inserts_and_reads_back_over_tcp(self):
        db = MariaDB(self)
        self.assertNotEqual(db.port, 3306)
        self.check_ok(db.tcp_client(
            "-e", "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(100)) ENGINE=InnoDB;"
                  "INSERT INTO notes VALUES (1, 'first'), (2, 'sch\u00f6n \U0001f4ec');"))
        out = self.check_ok(db.tcp_client("-e", "SELECT id, body FROM notes ORDER BY id"))
        self.assertEqual(rows(out), [["1", "first"], ["2", "sch\u00f6n \U0001f4ec"]])
        self.assertEqual(self.check_ok(db.tcp_client("-e", "SELECT CURRENT_USER()")).strip(),
                         "maild@127.0.0.1")
        # The same table through root's socket connection.
        self.assertEqual(db.sql("SELECT COUNT(*) FROM notes", database="maild").strip(), "2")
        # A wrong password, and root over TCP, are refused.
        self.assertNotEqual(db.tcp_client("-e", "SELECT 1", password="wrong").returncode, 0)
        self.assertNotEqual(db.tcp_client("-e", "SELECT 1", user="root", password="").returncode, 0)

    def test_binary_log_gtid_and_innodb_are_on_and_setup_is_not_logged(self):
        db = MariaDB(self, server_id=7)
        out = db.sql("SELECT @@log_bin, @@gtid_strict_mode, @@default_storage_engine, @@server_id,"
                     " @@bind_address, @@port, @@binlog_format")
        self.assertEqual(rows(out), [["1", "1", "InnoDB", "7", "127.0.0.1", str(db.port), "ROW"]])
        # The fixture's CREATE DATABASE/USER stayed out of the binary log.
        self.assertEqual(db.sql("SELECT @@gtid_binlog_pos").strip(), "")
        self.assertIn("REPLICATION SLAVE", db.sql("SHOW GRANTS FOR 'maild'@'127.0.0.1'"))
        self.check_ok(db.tcp_client("-e", "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)"))
        self.assertEqual(db.sql("SELECT ENGINE FROM information_schema.TABLES"
                                " WHERE TABLE_SCHEMA = 'maild' AND TABLE_NAME = 't'").strip(), "InnoDB")
        self.assertEqual(db.sql("SELECT @@gtid_binlog_pos").strip(), "0-7-2")

    def test_two_instances_run_side_by_side(self):
        primary = MariaDB(self, name="primary", server_id=1)
        standby = MariaDB(self, name="standby", server_id=2,
                          extra_cnf={"read_only": "ON", "max_connections": 50})
        self.assertNotEqual(primary.port, standby.port)
        self.assertNotEqual(primary.socket, standby.socket)
        self.assertNotEqual(primary.password, standby.password)
        self.assertEqual(rows(primary.sql("SELECT @@server_id, @@read_only")), [["1", "0"]])
        self.assertEqual(rows(standby.sql("SELECT @@server_id, @@read_only, @@max_connections")),
                         [["2", "1", "50"]])
        self.check_ok(primary.tcp_client("-e", "CREATE TABLE only_here (id INT PRIMARY KEY)"))
        self.assertEqual(primary.sql("SHOW TABLES", database="maild").split(), ["only_here"])
        self.assertEqual(standby.sql("SHOW TABLES", database="maild").split(), [])
        # Each one's credentials work only on its own server.
        self.assertNotEqual(standby.tcp_client("-e", "SELECT 1", password=primary.password).returncode, 0)

    def test_stop_leaves_no_process_and_frees_the_port(self):
        db = MariaDB(self)
        pid = db.process.pid
        self.assertFalse(port_free(db.port))
        self.assertEqual(db.stop(), 0, db.log()[-4000:])
        self.assertFalse(os.path.exists("/proc/%d" % pid))
        self.assertTrue(port_free(db.port))
        self.assertFalse(os.path.exists(db.socket))
        self.assertIn("Shutdown complete", db.log())
        self.assertNotEqual(db.tcp_client("-e", "SELECT 1").returncode, 0)

    def test_sigkill_then_restart_recovers_committed_rows(self):
        db = MariaDB(self)
        self.check_ok(db.tcp_client(
            "-e", "CREATE TABLE ledger (id INT PRIMARY KEY, amount INT) ENGINE=InnoDB;"
                  "INSERT INTO ledger VALUES (1, 100);"
                  "START TRANSACTION; INSERT INTO ledger VALUES (2, 200); COMMIT;"))
        gtid = db.sql("SELECT @@gtid_binlog_pos").strip()
        self.assertEqual(db.kill(), -9)
        self.assertFalse(os.path.exists("/proc/%d" % db.process.pid))
        started = time.monotonic()
        db.start()
        self.assertLess(time.monotonic() - started, 60)
        out = self.check_ok(db.tcp_client("-e", "SELECT id, amount FROM ledger ORDER BY id"))
        self.assertEqual(rows(out), [["1", "100"], ["2", "200"]])
        # The binary log recovered too (sync_binlog=1): same GTID position.
        self.assertEqual(db.sql("SELECT @@gtid_binlog_pos").strip(), gtid)
        self.assertEqual(db.sql("SELECT @@gtid_strict_mode").strip(), "1")


if __name__ == "__main__":
    unittest.main()
