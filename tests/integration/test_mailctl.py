"""mailctl against a real store: each test gets a temp dir with a minimal
mail.conf and runs the real binary (MAILCTL_BIN) the way an administrator would.
"""

import datetime
import json
import os
import pty
import re
import select
import sqlite3
import shutil
import subprocess
import tempfile
import unittest

MAILCTL = os.environ.get("MAILCTL_BIN", "")
TIMEOUT = 60

MESSAGE = (
    b"From: Sender <s@remote.test>\n"
    b"To: a@example.test\n"
    b"Subject: quarterly report\n"
    b"\n"
    b"From the desk of the sender,\n"
    b">From quoted already\n"
    b"the end\n"
)
# What the store keeps: CRLF lines, with the Return-Path trace line in front.
MESSAGE_AS_SERVED = b"Return-Path: <s@remote.test>\r\n" + MESSAGE.replace(b"\n", b"\r\n")


def read_until(fd, marker, timeout=TIMEOUT):
    """Reads a pty until `marker` has been seen (or, for None, until it closes)."""
    data = b""
    while marker is None or marker not in data:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise AssertionError("no %r from mailctl within %ss; got %r" % (marker, timeout, data))
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            if marker is None:
                return data
            raise AssertionError("mailctl closed the terminal before %r; got %r" % (marker, data))
        data += chunk
    return data


def setUpModule():
    if not MAILCTL or not os.access(MAILCTL, os.X_OK):
        raise RuntimeError("set MAILCTL_BIN to the mailctl executable (got %r)" % MAILCTL)


class MailctlCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mailctl-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.config = os.path.join(self.dir, "mail.conf")
        self.write_config("[store]\npath = mail.db\n")
        self.store = os.path.join(self.dir, "mail.db")

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def run_mailctl(self, *args, stdin=b"", env=None, config=True):
        command = [MAILCTL] + (["--config", self.config] if config else []) + list(args)
        environment = {k: v for k, v in os.environ.items() if k != "MAILD_CONFIG"}
        environment.update(env or {})
        return subprocess.run(command, input=stdin, capture_output=True, timeout=TIMEOUT, env=environment)

    def ok(self, *args, stdin=b""):
        """Runs mailctl, expects exit 0 and no stderr, returns stdout as text."""
        result = self.run_mailctl(*args, stdin=stdin)
        self.assertEqual(result.returncode, 0, "mailctl %s: %s" % (" ".join(args), result.stderr.decode()))
        return result.stdout.decode()

    def ok_json(self, *args, stdin=b""):
        return json.loads(self.ok("--json", *args, stdin=stdin))

    def fails(self, *args, code=1, stdin=b"", mentioning=()):
        """Runs mailctl, expects exit `code` and one "mailctl: ..." line on stderr, returns it."""
        result = self.run_mailctl(*args, stdin=stdin)
        error = result.stderr.decode()
        self.assertEqual(result.returncode, code, "mailctl %s: %r" % (" ".join(args), error))
        self.assertRegex(error, r"\Amailctl: [^\n]+\n\Z")
        self.assertEqual(result.stdout, b"")
        for text in mentioning:
            self.assertIn(text, error)
        return error

    def migrated(self):
        self.ok("db", "migrate")

    def with_user(self, address="a@example.test"):
        self.migrated()
        self.ok("domain", "add", address.split("@")[1])
        self.ok("user", "add", address, stdin=b"secret\n")

    def inject(self, mailbox="a@example.test", sender="s@remote.test", message=MESSAGE):
        args = ["mail", "inject", "--mailbox", mailbox] + (["--from", sender] if sender else [])
        return self.ok_json(*args, stdin=message)["id"]


class DbTest(MailctlCase):
    def test_migrate_creates_the_store_then_status_describes_it(self):
        output = self.ok("db", "migrate")
        self.assertRegex(output, r"\Aschema version [1-9][0-9]*\n\Z")
        version = int(output.split()[-1])
        self.assertTrue(os.path.exists(self.store))
        self.assertEqual(self.ok("db", "migrate"), output)  # nothing left to apply

        status = self.ok("db", "status")
        self.assertRegex(status, r"(?m)^backend +sqlite$")
        self.assertIn(self.store, status)
        self.assertRegex(status, r"(?m)^schema version +%d/%d$" % (version, version))
        self.assertRegex(status, r"(?m)^domains +0$")

        document = self.ok_json("db", "status")
        self.assertEqual(document["backend"], "sqlite")
        self.assertEqual(document["schema_version"], version)
        self.assertEqual(document["latest_schema_version"], version)
        for count in ("domains", "mailboxes", "aliases", "messages", "deliveries"):
            self.assertEqual(document[count], 0)

    def test_migrate_as_json(self):
        self.assertGreaterEqual(self.ok_json("db", "migrate")["schema_version"], 1)

    def test_missing_store_names_the_remedy_and_creates_nothing(self):
        for command in (["db", "status"], ["domain", "list"], ["mail", "list"]):
            self.fails(*command, mentioning=["mailctl db migrate"])
        self.assertFalse(os.path.exists(self.store))

    def test_unmigrated_store_asks_for_migration(self):
        open(self.store, "wb").close()  # an empty SQLite file is a store at schema version 0
        self.fails("domain", "list", mentioning=["needs migration", "mailctl db migrate"])

    def test_bad_config_names_file_and_line(self):
        self.write_config("[store]\npath = mail.db\nno_such_key = 1\n")
        self.fails("db", "migrate", mentioning=["mail.conf:3"])
        self.fails("domain", "list", mentioning=["mail.conf:3"])

    def test_missing_config_is_an_error(self):
        os.remove(self.config)
        self.fails("db", "status", mentioning=["mail.conf"])

    def test_config_from_environment(self):
        result = self.run_mailctl("db", "migrate", config=False, env={"MAILD_CONFIG": self.config})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.exists(self.store))


class DomainTest(MailctlCase):
    def test_add_list_delete(self):
        self.migrated()
        self.assertEqual(self.ok("domain", "add", "Example.TEST"), "added domain example.test\n")
        self.ok("domain", "add", "other.test")
        listing = self.ok("domain", "list").splitlines()
        self.assertRegex(listing[0], r"^DOMAIN +CREATED$")
        self.assertEqual([line.split()[0] for line in listing[1:]], ["example.test", "other.test"])
        self.assertEqual(self.ok("domain", "del", "example.test"), "deleted domain example.test\n")
        self.assertEqual([d["name"] for d in self.ok_json("domain", "list")], ["other.test"])

    def test_duplicate_and_unknown(self):
        self.migrated()
        self.ok("domain", "add", "example.test")
        self.fails("domain", "add", "EXAMPLE.test", mentioning=["example.test"])
        self.fails("domain", "del", "nowhere.test", mentioning=["nowhere.test"])

    def test_bad_names_never_reach_the_store(self):
        self.migrated()
        for name in ("exa mple.test", "bad-.test", "a..test", "x_y.test", ""):
            self.fails("domain", "add", name, mentioning=["bad domain name"])
        self.assertEqual(self.ok_json("domain", "list"), [])

    def test_json_fields(self):
        self.migrated()
        self.assertEqual(self.ok_json("domain", "add", "example.test"),
                         {"ok": True, "message": "added domain example.test"})
        [domain] = self.ok_json("domain", "list")
        self.assertEqual(domain["name"], "example.test")
        self.assertRegex(domain["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class UserTest(MailctlCase):
    def setUp(self):
        super().setUp()
        self.migrated()
        self.ok("domain", "add", "example.test")

    def users(self, *domain):
        return [u["address"] for u in self.ok_json("user", "list", *domain)]

    def test_add_list_passwd_delete(self):
        self.assertEqual(self.ok("user", "add", "a@Example.Test", stdin=b"secret\r\n"), "added user a@example.test\n")
        self.ok("user", "add", "b.c+d@example.test", stdin=b"other")
        listing = self.ok("user", "list").splitlines()
        self.assertRegex(listing[0], r"^ID +ADDRESS +CREATED$")
        self.assertEqual(self.users(), ["a@example.test", "b.c+d@example.test"])
        self.assertEqual(self.users("example.test"), ["a@example.test", "b.c+d@example.test"])
        first = self.ok_json("user", "list")[0]
        self.assertEqual(set(first), {"id", "address", "created"})
        self.assertIsInstance(first["id"], int)

        self.assertEqual(self.ok("user", "passwd", "a@example.test", stdin=b"new secret\n"),
                         "changed the password of a@example.test\n")
        self.assertEqual(self.ok("user", "del", "a@example.test"), "deleted user a@example.test\n")
        self.assertEqual(self.users(), ["b.c+d@example.test"])

    def stored_hash(self, address):
        with sqlite3.connect(self.store) as db:
            return db.execute("SELECT password_hash FROM mailboxes WHERE address = ?",
                              (address,)).fetchone()[0]

    def test_hash_scheme(self):
        self.ok("user", "add", "y@example.test", stdin=b"secret\n")
        self.assertTrue(self.stored_hash("y@example.test").startswith("$y$"))
        self.ok("user", "add", "s@example.test", "--hash-scheme", "sha512-crypt", stdin=b"secret\n")
        self.assertTrue(self.stored_hash("s@example.test").startswith("$6$"))
        self.ok("user", "passwd", "y@example.test", "--hash-scheme=sha512-crypt", stdin=b"other\n")
        self.assertTrue(self.stored_hash("y@example.test").startswith("$6$"))
        self.ok("user", "passwd", "s@example.test", "--hash-scheme", "yescrypt", stdin=b"other\n")
        self.assertTrue(self.stored_hash("s@example.test").startswith("$y$"))
        self.fails("user", "add", "m@example.test", "--hash-scheme", "md5", stdin=b"secret\n",
                   code=2, mentioning=["--hash-scheme", "md5"])
        self.assertEqual(self.users(), ["s@example.test", "y@example.test"])

    def test_duplicate_unknown_domain_and_unknown_user(self):
        self.ok("user", "add", "a@example.test", stdin=b"secret\n")
        self.fails("user", "add", "a@example.test", stdin=b"secret\n", mentioning=["a@example.test"])
        self.fails("user", "add", "a@nowhere.test", stdin=b"secret\n", mentioning=["nowhere.test"])
        self.fails("user", "passwd", "z@example.test", stdin=b"secret\n", mentioning=["z@example.test"])
        self.fails("user", "del", "z@example.test", mentioning=["z@example.test"])

    def test_password_must_not_be_empty(self):
        self.fails("user", "add", "a@example.test", stdin=b"", mentioning=["password"])
        self.fails("user", "add", "a@example.test", stdin=b"\r\nsecret\n", mentioning=["empty password"])
        self.assertEqual(self.users(), [])

    def test_a_password_cannot_be_given_on_the_command_line(self):
        self.fails("user", "add", "a@example.test", "--password", "secret", code=2)
        self.fails("user", "add", "a@example.test", "secret", code=2)
        self.fails("user", "passwd", "a@example.test", "--password=secret", code=2)
        self.assertEqual(self.users(), [])

    def test_terminal_prompts_twice_without_echo(self):
        def session(first, second):
            pid, terminal = pty.fork()
            if pid == 0:  # the child becomes mailctl with the pty as its terminal
                os.execv(MAILCTL, [MAILCTL, "--config", self.config, "user", "add", "tty@example.test"])
            transcript = b""
            try:
                for prompt, answer in ((b"New password: ", first), (b"Repeat password: ", second)):
                    transcript += read_until(terminal, prompt)
                    os.write(terminal, answer + b"\n")
                transcript += read_until(terminal, None)
            finally:
                os.close(terminal)
                _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status), transcript

        code, transcript = session(b"typo-one", b"typo-two")
        self.assertEqual(code, 1)
        self.assertIn(b"mailctl: the passwords do not match", transcript)
        code, transcript = session(b"hidden-word", b"hidden-word")
        self.assertEqual(code, 0, transcript)
        self.assertIn(b"added user tty@example.test", transcript)
        self.assertNotIn(b"hidden-word", transcript)
        self.assertEqual(self.users(), ["tty@example.test"])

    def test_bad_addresses(self):
        for address in ("nobody", "a b@example.test", ".a@example.test", "a..b@example.test",
                        "a@", "@example.test", "a@exa_mple.test"):
            self.fails("user", "add", address, stdin=b"secret\n", mentioning=["bad address"])
        self.assertEqual(self.users(), [])


class AliasTest(MailctlCase):
    def test_add_list_delete_with_catch_all(self):
        self.with_user()
        self.ok("domain", "add", "other.test")
        self.assertEqual(self.ok("alias", "add", "postmaster@example.test", "a@example.test"),
                         "added alias postmaster@example.test -> a@example.test\n")
        self.assertEqual(self.ok("alias", "add", "@Example.Test", "a@example.test"),
                         "added alias @example.test -> a@example.test\n")
        self.ok("alias", "add", "info@other.test", "someone@elsewhere.test")

        listing = self.ok("alias", "list").splitlines()
        self.assertRegex(listing[0], r"^SOURCE +TARGET$")
        pairs = {(a["source"], a["target"]) for a in self.ok_json("alias", "list")}
        self.assertEqual(pairs, {("postmaster@example.test", "a@example.test"),
                                 ("@example.test", "a@example.test"),
                                 ("info@other.test", "someone@elsewhere.test")})
        only = {a["source"] for a in self.ok_json("alias", "list", "other.test")}
        self.assertEqual(only, {"info@other.test"})

        self.assertEqual(self.ok("alias", "del", "@example.test", "a@example.test"),
                         "deleted alias @example.test -> a@example.test\n")
        self.assertNotIn("@example.test", {a["source"] for a in self.ok_json("alias", "list")})

    def test_errors(self):
        self.with_user()
        self.fails("alias", "add", "@nowhere.test", "a@example.test", mentioning=["nowhere.test"])
        self.fails("alias", "add", "bad source@example.test", "a@example.test", mentioning=["bad address"])
        self.fails("alias", "add", "x@example.test", "@example.test", mentioning=["bad address"])
        self.fails("alias", "del", "x@example.test", "a@example.test")
        self.fails("alias", "add", "x@example.test", code=2)


class MailTest(MailctlCase):
    def test_list_on_an_empty_store(self):
        self.migrated()
        self.assertRegex(self.ok("mail", "list"), r"\AID +RECEIVED +MAILBOX +FROM +SIZE +STATUS +ORIGIN +SUBJECT\n\Z")
        self.assertEqual(self.ok_json("mail", "list"), [])

    def test_unknown_or_bad_id(self):
        self.migrated()
        self.fails("mail", "show", "999", mentioning=["999"])
        self.fails("mail", "export", "999", mentioning=["999"])
        self.fails("mail", "export", "999", "--format", "mbox", mentioning=["999"])
        self.fails("mail", "show", "abc", mentioning=["bad id"])

    def test_inject_list_show_export(self):
        self.with_user()
        id = self.inject()

        [row] = self.ok_json("mail", "list")
        self.assertEqual(row["id"], id)
        self.assertEqual(row["mailbox"], "a@example.test")
        self.assertEqual(row["from"], "s@remote.test")
        self.assertEqual(row["subject"], "quarterly report")
        self.assertEqual(row["size"], len(MESSAGE_AS_SERVED))
        self.assertEqual(row["status"], "new")
        self.assertEqual(row["origin"], "unverified")  # not fetched by GET
        self.assertRegex(row["received"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        table = self.ok("mail", "list").splitlines()
        self.assertEqual(len(table), 2)
        self.assertRegex(table[1], r"^ *%d +%s +a@example.test +s@remote.test +%d +new +unverified +quarterly report$"
                         % (id, re.escape(row["received"]), len(MESSAGE_AS_SERVED)))

        shown = self.run_mailctl("mail", "show", str(id)).stdout
        metadata, message = shown.split(b"\n\n", 1)
        self.assertEqual(message, MESSAGE_AS_SERVED)
        self.assertRegex(metadata.decode(), r"(?m)^id +%d$" % id)
        self.assertRegex(metadata.decode(), r"(?m)^subject +quarterly report$")
        self.assertRegex(metadata.decode(), r"(?m)^content hash +[0-9a-f]{64}$")

        detail = self.ok_json("mail", "show", str(id))
        self.assertEqual(detail["message"], MESSAGE_AS_SERVED.decode())
        self.assertEqual(detail["mailbox"], "a@example.test")

        eml = self.run_mailctl("mail", "export", str(id))
        self.assertEqual(eml.returncode, 0)
        self.assertEqual(eml.stdout, MESSAGE_AS_SERVED)
        self.assertEqual(self.run_mailctl("mail", "export", str(id), "--format", "eml").stdout, MESSAGE_AS_SERVED)

        received = datetime.datetime.strptime(row["received"], "%Y-%m-%dT%H:%M:%SZ")
        asctime = "%s %2d %s" % (received.strftime("%a %b"), received.day, received.strftime("%H:%M:%S %Y"))
        mbox = self.run_mailctl("mail", "export", str(id), "--format", "mbox").stdout
        self.assertEqual(mbox, ("From s@remote.test %s\n" % asctime).encode()
                         + b"Return-Path: <s@remote.test>\n"
                         + b"From: Sender <s@remote.test>\n"
                         + b"To: a@example.test\n"
                         + b"Subject: quarterly report\n"
                         + b"\n"
                         + b">From the desk of the sender,\n"
                         + b">>From quoted already\n"
                         + b"the end\n"
                         + b"\n")

    def test_null_sender(self):
        self.with_user()
        id = self.inject(sender=None, message=b"Subject: bounce\r\n\r\nbody")
        [row] = self.ok_json("mail", "list")
        self.assertEqual(row["from"], "<>")
        self.assertEqual(self.run_mailctl("mail", "export", str(id)).stdout,
                         b"Return-Path: <>\r\nSubject: bounce\r\n\r\nbody\r\n")
        mbox = self.run_mailctl("mail", "export", str(id), "--format", "mbox").stdout
        self.assertRegex(mbox, rb"\AFrom MAILER-DAEMON [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}\n")

    def test_last_and_mailbox_filters(self):
        self.with_user()
        self.ok("user", "add", "b@example.test", stdin=b"secret\n")
        ids = [self.inject(mailbox=m, message=b"Subject: %d\n\nbody\n" % n)
               for n, m in enumerate(["a@example.test", "b@example.test", "a@example.test"])]
        self.assertEqual([r["id"] for r in self.ok_json("mail", "list")], ids[::-1])
        self.assertEqual([r["id"] for r in self.ok_json("mail", "list", "--last", "2")], ids[:0:-1])
        self.assertEqual([r["id"] for r in self.ok_json("mail", "list", "--mailbox", "b@example.test")], [ids[1]])
        self.fails("mail", "list", "--last", "0", code=2)
        self.fails("mail", "list", "--last", "many", code=2)

    def test_subject_is_safe_for_a_terminal_and_for_json(self):
        self.with_user()
        self.inject(message="Subject: caf\u00e9 \x1b[31mred\n\nbody\n".encode())
        [row] = self.ok_json("mail", "list")
        self.assertIn("caf\u00e9", row["subject"])
        self.assertNotIn("\x1b", self.ok("mail", "list"))

    def test_inject_errors(self):
        self.with_user()
        self.fails("mail", "inject", "--mailbox", "nobody@example.test", stdin=b"x\n", mentioning=["nobody@example.test"])
        self.fails("mail", "inject", "--mailbox", "a@example.test", stdin=b"", mentioning=["no message"])
        self.fails("mail", "inject", stdin=b"x\n", code=2)

    def test_export_format_must_be_known(self):
        self.migrated()
        self.fails("mail", "export", "1", "--format", "xml", code=2)


class UsageTest(MailctlCase):
    def test_usage_errors_exit_2(self):
        self.fails(code=2)
        self.fails("nonsense", code=2, mentioning=["nonsense"])
        self.fails("domain", code=2, mentioning=["add", "del", "list"])
        self.fails("domain", "rename", "a", code=2, mentioning=["rename"])
        self.fails("domain", "add", code=2)
        self.fails("domain", "add", "a.test", "b.test", code=2)
        self.fails("--no-such-option", "domain", "list", code=2)

    def test_help(self):
        for args in (["help"], ["--help"]):
            text = self.ok(*args)
            self.assertIn("usage: mailctl [--config FILE] [--json] GROUP VERB [ARGS]", text)
            for command in ("db migrate", "domain add NAME", "user passwd ADDRESS", "alias add SOURCE TARGET",
                            "mail export ID"):
                self.assertIn(command, text)
            self.assertNotIn("inject", text)
        group = self.ok("user", "--help")
        self.assertIn("user add ADDRESS", group)
        self.assertNotIn("domain add", group)
        self.assertIn("--last N", self.ok("mail", "list", "--help"))
        self.assertIn("user list", self.ok("help", "user"))

    def test_internationalized_addresses_are_refused_saying_why(self):
        self.ok("db", "migrate")
        self.ok("domain", "add", "example.test")
        for args in (["domain", "add", "bücher.example"], ["user", "add", "jöhn@example.test"],
                     ["alias", "add", "ünï@example.test", "bob@example.test"],
                     ["alias", "add", "bob@example.test", "jöhn@example.test"]):
            with self.subTest(args=args):
                self.fails(*args, stdin=b"secret\nsecret\n",
                           mentioning=("is not ASCII", "RFC 6531"))
        self.assertIn("xn--bcher-kva.example", self.ok("domain", "add", "xn--bcher-kva.example"))

    def test_version_matches_maild_and_needs_no_store(self):
        text = self.ok("--version")
        self.assertRegex(text, r"^mailctl \d+\.\d+\.\d+\n$")
        self.assertFalse(os.path.exists(self.store))
        maild_version = subprocess.run([os.environ.get("MAILD_BIN", "maild"), "--version"],
                                       capture_output=True, text=True, timeout=TIMEOUT).stdout
        self.assertEqual(text.split()[1], maild_version.split()[1])


if __name__ == "__main__":
    unittest.main()
