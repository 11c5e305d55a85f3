"""Real MariaDB servers for integration tests: each a private mariadbd in its
own temp datadir, on a free 127.0.0.1 port and a socket in that folder,
started by the test (its PID is ours) and stopped by that PID.

    db = MariaDB(self)                  # self: the unittest.TestCase
    db.sql("SELECT 1")                  # as root, through the socket
    ... connect to 127.0.0.1:db.port as db.user / db.password, database db.database

Never uses the system's MariaDB (/etc/mysql, /var/lib/mysql, /run/mysqld, port
3306): every program runs with --no-defaults and explicit paths, and only binds
127.0.0.1. Binary log and GTID (strict mode) are on, so a second instance can
replicate from the first later; the fixture's own setup (database, user,
grants) is kept out of the binary log, so every instance starts with an empty
GTID history.

Needs root: mariadbd is started as root and drops to the 'mysql' system user
(--user=mysql), which owns the temp folder; the temp folder lives where that
user can reach it (MAILD_TEST_TMP when it can, else the system's temp).
Like maild_harness, every wait is bounded and cleanup (test.addCleanup, so
also when a test fails) stops, by PID, only the server this fixture started,
then removes its folder."""

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from maild_harness import IO_TIMEOUT, _tmp_root, free_port


def _find(name, *fallbacks):
    return shutil.which(name) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)


MARIADBD = _find("mariadbd", "/usr/sbin/mariadbd")
MARIADB = _find("mariadb", "/usr/bin/mariadb")
INSTALL_DB = _find("mariadb-install-db", "/usr/bin/mariadb-install-db")

SERVER_USER = "mysql"          # mariadbd drops root for this user
START_TIMEOUT = 60.0           # install-db and first start, bounded
STOP_TIMEOUT = 30.0            # SIGTERM -> exit (InnoDB shutdown), then SIGKILL
SOCKET_PATH_MAX = 100          # sun_path is 108 bytes


def missing_tools():
    """Why MariaDB servers cannot run here ('' when they can): for skipTest."""
    if os.geteuid() != 0:
        return "MariaDB test servers need root (mariadbd starts as root, runs as %s)" % SERVER_USER
    for name, path in (("mariadbd", MARIADBD), ("mariadb", MARIADB), ("mariadb-install-db", INSTALL_DB)):
        if path is None:
            return "%s is missing: run scripts/install-deps.sh test" % name
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        return "no '%s' user: run scripts/install-deps.sh test" % SERVER_USER
    return ""


def _reachable_by_others(folder):
    path = os.path.realpath(folder)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def _server_tmp_root():
    """MAILD_TEST_TMP when the mysql user can reach it (and the socket path stays
    short enough), else the system's temp."""
    for root in (_tmp_root(), tempfile.gettempdir(), "/tmp"):
        if root is None or not os.path.isdir(root):
            continue
        if _reachable_by_others(root) and len(os.path.realpath(root)) + 40 < SOCKET_PATH_MAX:
            return root
    raise AssertionError("no temp folder that the %s user can reach" % SERVER_USER)


def _cnf_options(extra_cnf):
    """extra_cnf as mariadbd command-line options: a dict {"option": value}
    (value None or True: a bare --option), or a string of my.cnf lines
    ("option = value" / "option"; [section] headers and # comments ignored)."""
    if not extra_cnf:
        return []
    if isinstance(extra_cnf, str):
        items = []
        for raw in extra_cnf.splitlines():
            raw = raw.strip()
            if not raw or raw.startswith(("#", ";", "[")):
                continue
            if "=" in raw:
                key, value = (part.strip() for part in raw.split("=", 1))
                items.append((key, value))
            else:
                items.append((raw, None))
    else:
        items = list(extra_cnf.items())
    options = []
    for key, value in items:
        key = key.strip().lstrip("-").replace("_", "-")
        options.append("--%s" % key if value is None or value is True else "--%s=%s" % (key, value))
    return options


class MariaDB:
    """One private MariaDB server, started by the constructor.

    port, socket, user, password, database: how maild (or a test) connects;
    host is always 127.0.0.1. The maild user has ALL on maild.* and
    REPLICATION SLAVE, REPLICATION CLIENT on *.*; root (no password) is
    reachable only through the socket (root@localhost; the other root
    accounts mariadb-install-db makes are dropped).

    extra_cnf: more mariadbd options (see _cnf_options), e.g.
    {"rpl_semi_sync_master_enabled": "ON"}; they come after the defaults here,
    so they override them."""

    def __init__(self, test, name="primary", server_id=1, extra_cnf=None):
        reason = missing_tools()
        if reason:
            raise unittest.SkipTest(reason)
        self.test = test
        self.name = name
        self.server_id = server_id
        self.extra_cnf = extra_cnf
        self.process = None
        self.dir = tempfile.mkdtemp(prefix="mariadb-%s-" % name, dir=_server_tmp_root())
        test.addCleanup(self.cleanup)   # from here on, even if the start fails
        self.data_dir = os.path.join(self.dir, "data")
        self.tmp_dir = os.path.join(self.dir, "tmp")
        self.socket = os.path.join(self.dir, "mysql.sock")
        self.pid_file = os.path.join(self.dir, "mariadbd.pid")
        self.log_path = os.path.join(self.dir, "error.log")
        self.output_path = os.path.join(self.dir, "mariadbd.out")
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = "maild"
        self.password = secrets.token_hex(16)
        self.database = "maild"
        os.makedirs(self.tmp_dir)
        server_user = pwd.getpwnam(SERVER_USER)
        for folder in (self.dir, self.tmp_dir):
            os.chown(folder, server_user.pw_uid, server_user.pw_gid)
        os.chmod(self.dir, 0o755)  # the socket must be reachable by clients
        self._install_db()
        self.start()
        self._create_database_and_user()

    # -- lifecycle -------------------------------------------------------

    def _install_db(self):
        # --tmpdir (passed on to mariadbd): its bootstrap's temporary tables stay in our folder,
        # not in the system's /tmp beside those of other servers being installed at the time.
        command = [INSTALL_DB, "--no-defaults", "--datadir=%s" % self.data_dir,
                   "--tmpdir=%s" % self.tmp_dir,
                   "--auth-root-authentication-method=normal", "--skip-test-db",
                   "--skip-name-resolve", "--user=%s" % SERVER_USER,
                   "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.dir)
        except subprocess.TimeoutExpired:
            raise AssertionError("mariadb-install-db did not finish within %ss" % START_TIMEOUT)
        if result.returncode != 0:
            raise AssertionError("mariadb-install-db failed (%d): %s%s"
                                 % (result.returncode, result.stdout[-4000:], result.stderr[-4000:]))

    def command(self):
        """The mariadbd command line."""
        return [
            MARIADBD, "--no-defaults",
            "--user=%s" % SERVER_USER,
            "--datadir=%s" % self.data_dir,
            "--tmpdir=%s" % self.tmp_dir,
            "--socket=%s" % self.socket,
            "--port=%d" % self.port,
            "--bind-address=127.0.0.1",
            "--pid-file=%s" % self.pid_file,
            "--log-error=%s" % self.log_path,
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--max-connections=100",
            # Binary log with GTID, crash-safe, ready to be a primary or standby.
            "--server-id=%d" % self.server_id,
            "--log-bin=mariadb-bin",
            "--relay-log=relay-bin",
            "--binlog-format=ROW",
            "--log-slave-updates=ON",
            "--gtid-strict-mode=ON",
            "--sync-binlog=1",
            "--innodb-flush-log-at-trx-commit=1",
            "--default-storage-engine=InnoDB",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ] + _cnf_options(self.extra_cnf)

    def start(self, timeout=START_TIMEOUT):
        """Starts mariadbd on this datadir and port (again, after stop() or
        kill()); returns when root can run SELECT 1 through the socket."""
        if self.running():
            raise AssertionError("MariaDB %s already runs (pid %d)" % (self.name, self.process.pid))
        with open(self.output_path, "ab") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.process.poll() is not None:
                raise AssertionError("mariadbd %s exited with %s:\n%s"
                                     % (self.name, self.process.returncode, self.log()[-4000:]))
            result = self._client(["-e", "SELECT 1"], check=False, timeout=IO_TIMEOUT)
            if result.returncode == 0:
                return self
            last = result.stderr.strip()
            if time.monotonic() > deadline:
                raise AssertionError("MariaDB %s did not answer within %ss (last: %s):\n%s"
                                     % (self.name, timeout, last, self.log()[-4000:]))
            time.sleep(0.1)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM to our mariadbd (a clean InnoDB shutdown); SIGKILL to that
        PID only if it outlives timeout. Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=IO_TIMEOUT)
                raise AssertionError("mariadbd %s did not stop within %ss; killed:\n%s"
                                     % (self.name, timeout, self.log()[-4000:]))
        return self.process.returncode

    def kill(self):
        """SIGKILL to our mariadbd (a crash: no shutdown, InnoDB recovers on the
        next start()). Returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=IO_TIMEOUT)
        return self.process.returncode

    def cleanup(self):
        try:
            if self.process is not None and self.process.poll() is None:
                try:
                    self.stop()
                except AssertionError:
                    pass  # killed: the folder goes anyway
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- SQL -------------------------------------------------------------

    def _client(self, args, check=True, timeout=IO_TIMEOUT, database=None):
        # --no-defaults also skips Debian's client config, whose utf8mb4 would
        # otherwise be the client's character set (latin1 without it).
        command = [MARIADB, "--no-defaults", "--protocol=socket", "--socket=%s" % self.socket,
                   "--user=root", "--connect-timeout=5", "--default-character-set=utf8mb4", "--batch", "--skip-column-names"]
        if database:
            command.append("--database=%s" % database)
        try:
            result = subprocess.run(command + list(args), capture_output=True, text=True,
                                    timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("mariadb client on %s timed out after %ss: %r"
                                 % (self.name, timeout, args))
        if check and result.returncode != 0:
            raise AssertionError("SQL on MariaDB %s failed (%d): %s\n%r"
                                 % (self.name, result.returncode, result.stderr.strip(), args))
        return result

    def sql(self, statement, database=None, timeout=IO_TIMEOUT):
        """Runs statement (one or more, ';'-separated) as root through the
        socket; returns stdout: rows as tab-separated lines, no column names.
        A failing statement fails the test."""
        return self._client(["-e", statement], database=database, timeout=timeout).stdout

    def _create_database_and_user(self):
        # sql_log_bin=0: the setup stays out of the binary log, so each
        # instance starts with an empty GTID history and a standby can
        # replicate a primary from its first transaction.
        self.sql(
            "SET SESSION sql_log_bin = 0;"
            # install-db also makes passwordless root@127.0.0.1, root@::1 and
            # root@<hostname>: root stays reachable only through the socket.
            "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';"
            "FLUSH PRIVILEGES;"
            "CREATE DATABASE `%(db)s` CHARACTER SET utf8mb4;"
            "CREATE USER '%(user)s'@'127.0.0.1' IDENTIFIED BY '%(pw)s';"
            "GRANT ALL PRIVILEGES ON `%(db)s`.* TO '%(user)s'@'127.0.0.1';"
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%(user)s'@'127.0.0.1';"
            % {"db": self.database, "user": self.user, "pw": self.password})

    # -- observation -----------------------------------------------------

    def log(self):
        """The server's error log (and anything it wrote to stdout/stderr)."""
        text = ""
        for path in (self.log_path, self.output_path):
            try:
                with open(path, errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def tcp_client(self, *args, user=None, password=None, database=None, timeout=IO_TIMEOUT):
        """The mariadb client over TCP to 127.0.0.1:port (as the maild user by
        default), with args (e.g. "-e", "SELECT 1"); returns the CompletedProcess."""
        command = [MARIADB, "--no-defaults", "--protocol=tcp", "-h", self.host, "-P", str(self.port),
                   "--user=%s" % (user or self.user),
                   "--password=%s" % (password if password is not None else self.password),
                   "--connect-timeout=5", "--default-character-set=utf8mb4", "--batch", "--skip-column-names",
                   database if database is not None else self.database]
        return subprocess.run(command + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


def port_free(port, host="127.0.0.1"):
    """True when a new listener could bind host:port (nobody listens there)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


# What the replication tests run both servers with: maild's messages need a bigger packet,
# and the schema's trigger is created with the binary log on.
REPLICATION_OPTIONS = {"max_allowed_packet": "64M", "log_bin_trust_function_creators": "ON"}


def start_pair(test, standby_options):
    """A (server id 1) and B (server id 2), private and started at once; B with
    standby_options on top of REPLICATION_OPTIONS. Skips as MariaDB() does."""
    servers, errors = {}, []

    def start(name, server_id, options):
        try:
            servers[name] = MariaDB(test, name, server_id=server_id, extra_cnf=options)
        except BaseException as error:  # SkipTest too: raised again below
            errors.append(error)

    starters = [threading.Thread(target=start, args=("a", 1, REPLICATION_OPTIONS)),
                threading.Thread(target=start,
                                 args=("b", 2, dict(REPLICATION_OPTIONS, **standby_options)))]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(120)
    if errors:
        raise errors[0]
    test.assertEqual(sorted(servers), ["a", "b"], "a server did not start in 120 s")
    return servers["a"], servers["b"]
