"""One private MariaDB server shared by a whole ctest run: the MySQL store
tests (C++ and Python) need a server, and starting one per test would cost
seconds each. ctest runs `start` as a FIXTURES_SETUP test and `stop` as its
FIXTURES_CLEANUP; the tests in between read the server's coordinates from
the state file and each makes databases of its own (named maild_*), so tests
running in parallel never share one.

    python3 mariadb_fixture.py start STATE_FILE
    python3 mariadb_fixture.py stop STATE_FILE

STATE_FILE (JSON): host, port, socket, user, password, pid, dir. The maild
user has every privilege on maild_* databases and none on the server (so
read_only applies to it); root reaches the server only through the socket.
Like mariadb_server.MariaDB, which this reuses, the server runs as the mysql
user in its own temp folder and is stopped by its PID only."""

import json
import os
import shutil
import signal
import sys
import time

import mariadb_server
from mariadb_server import MariaDB

STOP_TIMEOUT = mariadb_server.STOP_TIMEOUT

# What maild's MySQL store needs of a server (docs/store.md): a max_allowed_packet
# above [smtp] max_message_size (35M by default), and, with binary logging on,
# leave for a user without SUPER to create the schema's trigger. No test crashes
# this shared server, so it flushes its logs once a second rather than at each
# commit: maild's durability (nothing acknowledged before COMMIT answered) does
# not depend on it, and the run is quicker. Tests that crash a server start
# their own (mariadb_server.MariaDB), fully durable.
SERVER_OPTIONS = {"max_allowed_packet": "64M", "log_bin_trust_function_creators": "ON",
                  "innodb_flush_log_at_trx_commit": 2, "sync_binlog": 0,
                  "max_connections": 300}


class _Detached:
    """What MariaDB expects of a unittest.TestCase, for a server that must
    outlive this process: cleanups are left to `stop`."""

    def addCleanup(self, function, *args, **kwargs):
        pass


def start(state_file):
    if os.path.exists(state_file):
        stop(state_file)  # a previous run died before its cleanup
    reason = mariadb_server.missing_tools()
    if reason:
        raise SystemExit("cannot start the shared MariaDB server: " + reason)
    db = MariaDB(_Detached(), name="shared", extra_cnf=SERVER_OPTIONS)
    db.sql("SET SESSION sql_log_bin = 0;"
           "GRANT ALL PRIVILEGES ON `maild\\_%%`.* TO '%s'@'127.0.0.1';" % db.user)
    state = {"host": db.host, "port": db.port, "socket": db.socket, "user": db.user,
             "password": db.password, "pid": db.process.pid, "dir": db.dir}
    os.makedirs(os.path.dirname(os.path.abspath(state_file)), exist_ok=True)
    temporary = state_file + ".tmp"
    with open(temporary, "w") as f:
        json.dump(state, f)
    os.replace(temporary, state_file)
    print("MariaDB %s on 127.0.0.1:%d (pid %d), state in %s"
          % (db.sql("SELECT VERSION()").strip(), db.port, db.process.pid, state_file))


def _is_our_server(pid, folder):
    """True when pid is still the mariadbd that runs on folder's datadir."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(arg == ("--datadir=%s" % os.path.join(folder, "data")).encode() for arg in argv)


def stop(state_file):
    try:
        with open(state_file) as f:
            state = json.load(f)
    except FileNotFoundError:
        print("no shared MariaDB server to stop (%s is missing)" % state_file)
        return
    pid, folder = state["pid"], state["dir"]
    if _is_our_server(pid, folder):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _is_our_server(pid, folder) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_our_server(pid, folder):
            os.kill(pid, signal.SIGKILL)
            print("mariadbd %d did not stop within %ss; killed" % (pid, STOP_TIMEOUT))
    shutil.rmtree(folder, ignore_errors=True)
    os.remove(state_file)
    print("stopped the shared MariaDB server (pid %d)" % pid)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        raise SystemExit("usage: mariadb_fixture.py start|stop STATE_FILE")
    (start if argv[1] == "start" else stop)(argv[2])


if __name__ == "__main__":
    main(sys.argv)
