"""mailctl queue against a real store: messages are queued with the hidden
`queue inject` (the same store call maild makes), and what the delivery engine
would write (results, leases, age) is written into the SQLite file directly.
"""

import json
import os
import re
import sqlite3
import time
import unittest

import test_mailctl

MESSAGE = b"From: Sender <s@remote.test>\nSubject: outbound\n\nhello\n"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
REASON = "5.0.0 bounced by the administrator"


def setUpModule():
    test_mailctl.setUpModule()


class QueueCase(test_mailctl.MailctlCase):
    def setUp(self):
        super().setUp()
        self.migrated()

    def queue(self, to, sender="s@remote.test", message=MESSAGE):
        args = ["queue", "inject", "--to", to] + (["--from", sender] if sender else [])
        return self.ok_json(*args, stdin=message)["id"]

    def sql(self, statement, *parameters):
        """What the delivery engine would write; mailctl is not running meanwhile."""
        with sqlite3.connect(self.store) as db:
            db.execute(statement, parameters)
        db.close()

    def listed(self, *filters):
        return [m["id"] for m in self.ok_json("queue", "list", *filters)]

    def recipients(self, id):
        return {r["address"]: r for r in self.ok_json("queue", "show", str(id))["recipients"]}


class InjectListShowTest(QueueCase):
    def test_empty_queue(self):
        self.assertRegex(self.ok("queue", "list"),
                         r"\AID +QUEUED AT +FROM +SIZE +QUEUED +DELIVERED +FAILED +NEXT ATTEMPT +RECIPIENTS\n\Z")
        self.assertEqual(self.ok_json("queue", "list"), [])

    def test_inject_then_list_and_show(self):
        before = int(time.time())
        output = self.ok("queue", "inject", "--from", "s@remote.test",
                         "--to", "bob@remote.test,carol@Other.TEST,BOB@remote.test", stdin=MESSAGE)
        self.assertRegex(output, r"\Aqueued as id \d+\n\Z")
        id = int(output.split()[-1])
        size = len(MESSAGE.replace(b"\n", b"\r\n"))  # no trace line: the content alone

        [row] = self.ok_json("queue", "list")
        self.assertEqual(row["id"], id)
        self.assertEqual(row["from"], "s@remote.test")
        self.assertEqual(row["size"], size)
        self.assertEqual((row["queued"], row["delivered"], row["failed"]), (2, 0, 0))
        self.assertEqual(row["recipients"], "bob@remote.test, carol@other.test")  # duplicates once
        self.assertRegex(row["queued_at"], "^%s$" % ISO)
        self.assertRegex(row["next_attempt"], "^%s$" % ISO)

        table = self.ok("queue", "list").splitlines()
        self.assertEqual(len(table), 2)
        self.assertRegex(table[1], r"^ *%d +%s +s@remote.test +%d +2 +0 +0 +%s +bob@remote.test, carol@other.test$"
                         % (id, ISO, size, ISO))

        shown = self.ok("queue", "show", str(id))
        envelope, recipients = shown.split("\n\n")
        self.assertRegex(envelope, r"(?m)^id +%d$" % id)
        self.assertRegex(envelope, r"(?m)^from +s@remote.test$")
        self.assertRegex(envelope, r"(?m)^size +%d$" % size)
        self.assertRegex(envelope, r"(?m)^envid +-$")
        self.assertRegex(envelope, r"(?m)^ret +unspecified$")
        self.assertRegex(envelope, r"(?m)^smtputf8 +no$")
        self.assertRegex(envelope, r"(?m)^8bitmime +no$")
        self.assertRegex(envelope, r"(?m)^content hash +[0-9a-f]{64}$")
        lines = recipients.splitlines()
        self.assertRegex(lines[0], r"^ADDRESS +STATE +ATTEMPTS +NEXT ATTEMPT +LEASE +NOTIFY +NOTICE +REMOTE HOST +LAST REPLY$")
        self.assertRegex(lines[1], r"^bob@remote.test +queued +0 +%s +- +- +- +- +-$" % ISO)
        self.assertRegex(lines[2], r"^carol@other.test +queued +0 +%s +- +- +- +- +-$" % ISO)
        self.assertEqual(len(lines), 3)

        detail = self.ok_json("queue", "show", str(id))
        self.assertEqual(detail["id"], id)
        self.assertEqual(detail["from"], "s@remote.test")
        self.assertEqual(detail["envid"], "")
        self.assertEqual(detail["smtputf8"], "no")
        self.assertEqual([r["address"] for r in detail["recipients"]], ["bob@remote.test", "carol@other.test"])
        bob = detail["recipients"][0]
        self.assertEqual(bob["state"], "queued")
        self.assertEqual(bob["attempts"], 0)
        self.assertEqual((bob["lease"], bob["lease_owner"], bob["last_reply"], bob["notice_owed"]), ("", "", "", ""))
        self.assertGreaterEqual(bob["next_attempt"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before)))

        status = self.ok_json("db", "status")
        self.assertEqual(status["queued"], 2)
        self.assertEqual(status["deliveries"], 0)
        self.assertRegex(self.ok("db", "status"), r"(?m)^queued +2$")

    def test_null_sender_and_json_inject(self):
        document = self.ok_json("queue", "inject", "--to", "x@remote.test", stdin=b"Subject: n\n\nb")
        self.assertEqual(set(document), {"id", "message_id", "content_hash"})
        [row] = self.ok_json("queue", "list")
        self.assertEqual(row["from"], "<>")
        self.assertEqual(row["size"], len(b"Subject: n\r\n\r\nb\r\n"))

    def test_what_the_engine_wrote_shows(self):
        id = self.queue("ok@remote.test,slow@remote.test,busy@remote.test")
        now = int(time.time())
        self.sql("UPDATE queue_recipients SET state = 1, attempts = 1, last_reply = '250 2.0.0 ok',"
                 " remote_host = 'mx.remote.test' WHERE address = 'ok@remote.test'")
        self.sql("UPDATE queue_recipients SET attempts = 2, next_attempt = ?, last_reply = '451 4.7.1 later',"
                 " remote_host = 'mx.remote.test', notify = 12, orcpt = 'rfc822;slow@remote.test',"
                 " notice_owed = 1, delay_warned = 1 WHERE address = 'slow@remote.test'", now + 3600)
        self.sql("UPDATE queue_recipients SET lease_owner = 'node-a/3', lease_expires = ?"
                 " WHERE address = 'busy@remote.test'", now + 600)

        lines = self.ok("queue", "show", str(id)).split("\n\n")[1].splitlines()
        self.assertRegex(lines[1], r"^ok@remote.test +delivered +1 +- +- +- +- +mx.remote.test +250 2.0.0 ok$")
        self.assertRegex(lines[2], r"^slow@remote.test +queued +2 +%s +- +failure,delay +owed +mx.remote.test +451 4.7.1 later$" % ISO)
        self.assertRegex(lines[3], r"^busy@remote.test +queued +0 +%s +node-a/3 until %s +- +- +- +-$" % (ISO, ISO))

        recipients = self.recipients(id)
        self.assertEqual(recipients["slow@remote.test"]["orcpt"], "rfc822;slow@remote.test")
        self.assertEqual(recipients["slow@remote.test"]["notify"], "failure,delay")
        self.assertEqual(recipients["slow@remote.test"]["delay_warned"], "yes")
        self.assertEqual(recipients["slow@remote.test"]["notice_owed"], "owed")
        self.assertEqual(recipients["slow@remote.test"]["next_attempt"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)))
        self.assertEqual(recipients["busy@remote.test"]["lease_owner"], "node-a/3")
        self.assertEqual(recipients["busy@remote.test"]["lease_expires"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600)))
        self.assertEqual(recipients["ok@remote.test"]["next_attempt"], "")

        [row] = self.ok_json("queue", "list")
        self.assertEqual((row["queued"], row["delivered"], row["failed"]), (2, 1, 0))

    def test_reply_text_is_safe_for_a_terminal(self):
        id = self.queue("x@remote.test")
        self.sql("UPDATE queue_recipients SET last_reply = ?", "550 \x1b[31mred\x1b[0m")
        self.assertNotIn("\x1b", self.ok("queue", "show", str(id)))
        self.assertEqual(self.recipients(id)["x@remote.test"]["last_reply"], "550 \x1b[31mred\x1b[0m")

    def test_unknown_and_bad_ids(self):
        for verb in ("show", "retry", "delete", "bounce"):
            self.fails("queue", verb, "999", mentioning=["no queued message with id 999"])
            self.fails("queue", verb, "abc", mentioning=["bad id"])
            self.fails("--json", "queue", verb, "999", mentioning=["999"])

    def test_inject_errors(self):
        self.fails("queue", "inject", stdin=b"x\n", code=2, mentioning=["--to"])
        self.fails("queue", "inject", "--to", "not an address", stdin=b"x\n", mentioning=["bad address"])
        self.fails("queue", "inject", "--to", "a@remote.test,,b@remote.test", stdin=b"x\n", mentioning=["bad address"])
        self.fails("queue", "inject", "--to", "a@remote.test", "--from", "bad", stdin=b"x\n", mentioning=["bad address"])
        self.fails("queue", "inject", "--to", "a@remote.test", stdin=b"", mentioning=["no message"])
        self.assertEqual(self.ok_json("queue", "list"), [])


class FilterTest(QueueCase):
    def setUp(self):
        super().setUp()
        self.first = self.queue("a@x.test,b@y.test")
        self.second = self.queue("c@y.test")
        self.third = self.queue("d@z.test")

    def test_oldest_first_and_limit(self):
        self.assertEqual(self.listed(), [self.first, self.second, self.third])
        self.assertEqual(self.listed("--limit", "2"), [self.first, self.second])
        self.assertEqual(len(self.ok("queue", "list", "--limit", "1").splitlines()), 2)

    def test_domain_and_status(self):
        self.assertEqual(self.listed("--domain", "Y.TEST"), [self.first, self.second])
        self.assertEqual(self.listed("--domain", "nowhere.test"), [])
        self.sql("UPDATE queue_recipients SET state = 1 WHERE address = 'b@y.test'")
        self.ok("queue", "bounce", str(self.third))
        self.assertEqual(self.listed("--status", "queued"), [self.first, self.second])
        self.assertEqual(self.listed("--status", "delivered"), [self.first])
        self.assertEqual(self.listed("--status", "failed"), [self.third])
        # Both filters hold for one recipient: y.test's queued one is in the second message only.
        self.assertEqual(self.listed("--domain", "y.test", "--status", "queued"), [self.second])

    def test_older_than(self):
        self.assertEqual(self.listed("--older-than", "1h"), [])
        self.sql("UPDATE queue_messages SET queued_at = queued_at - 7200 WHERE id = ?", self.second)
        self.assertEqual(self.listed("--older-than", "1h"), [self.second])
        self.assertEqual(self.listed("--older-than", "90m"), [self.second])
        self.assertEqual(self.listed("--older-than", "3h"), [])
        self.assertIn(self.second, self.listed("--older-than", "0s"))  # the others: this very second

    def test_bad_filters(self):
        self.fails("queue", "list", "--status", "pending", code=2, mentioning=["pending"])
        self.fails("queue", "list", "--limit", "0", code=2)
        self.fails("queue", "list", "--limit", "many", code=2)
        self.fails("queue", "list", "--older-than", "5", code=2, mentioning=["duration"])
        self.fails("queue", "list", "--older-than", "1w", code=2)
        self.fails("queue", "list", "--domain", "bad_domain", mentioning=["bad domain name"])
        self.fails("queue", "list", "extra", code=2)


class ChangeTest(QueueCase):
    def test_retry_one_and_all(self):
        first = self.queue("a@remote.test,b@remote.test")
        second = self.queue("c@remote.test")
        later = int(time.time()) + 3600
        self.sql("UPDATE queue_recipients SET next_attempt = ?", later)
        in_an_hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later))
        self.assertEqual([m["next_attempt"] for m in self.ok_json("queue", "list")], [in_an_hour] * 2)

        self.assertEqual(self.ok("queue", "retry", str(first)),
                         "made 2 recipients of queued message %d due now\n" % first)
        rows = self.ok_json("queue", "list")
        self.assertLess(rows[0]["next_attempt"], in_an_hour)
        self.assertEqual(rows[1]["next_attempt"], in_an_hour)

        self.assertEqual(self.ok_json("queue", "retry", "--all"),
                         {"ok": True, "message": "made 3 queued recipients due now"})
        self.assertLess(self.ok_json("queue", "list")[1]["next_attempt"], in_an_hour)
        self.assertEqual(self.ok("queue", "retry", str(second)), "made 1 recipient of queued message %d due now\n" % second)

        self.fails("queue", "retry", code=2, mentioning=["--all"])
        self.fails("queue", "retry", str(first), "--all", code=2)
        self.fails("queue", "retry", "--all=yes", code=2)

    def test_delete(self):
        first = self.queue("a@remote.test")
        second = self.queue("b@remote.test")
        self.assertEqual(self.ok("queue", "delete", str(first)), "deleted queued message %d\n" % first)
        self.assertEqual(self.listed(), [second])
        self.fails("queue", "delete", str(first), mentioning=[str(first)])
        self.assertEqual(self.ok_json("queue", "delete", str(second)),
                         {"ok": True, "message": "deleted queued message %d" % second})
        self.assertEqual(self.listed(), [])
        self.assertEqual(self.ok_json("db", "status")["queued"], 0)

    def test_bounce_owes_the_sender_a_notice(self):
        id = self.queue("a@remote.test,b@remote.test,c@remote.test")
        self.sql("UPDATE queue_recipients SET state = 1, last_reply = '250 ok' WHERE address = 'c@remote.test'")
        self.sql("UPDATE queue_recipients SET notify = 1 WHERE address = 'b@remote.test'")  # NOTIFY=NEVER
        self.assertEqual(self.ok("queue", "bounce", str(id)),
                         "bounced 2 recipients of queued message %d; maild will send s@remote.test a notice\n" % id)
        recipients = self.recipients(id)
        for address in ("a@remote.test", "b@remote.test"):
            self.assertEqual(recipients[address]["state"], "failed")
            self.assertEqual(recipients[address]["last_reply"], REASON)
        self.assertEqual(recipients["a@remote.test"]["notice_owed"], "owed")
        self.assertEqual(recipients["b@remote.test"]["notice_owed"], "")
        self.assertEqual(recipients["c@remote.test"]["state"], "delivered")
        self.assertEqual(recipients["c@remote.test"]["last_reply"], "250 ok")
        shown = self.ok("queue", "show", str(id))
        self.assertRegex(shown, r"(?m)^a@remote.test +failed +0 +- +- +- +owed +- +%s$" % re.escape(REASON))
        self.assertEqual(self.listed("--status", "failed"), [id])
        self.assertEqual(self.ok_json("db", "status")["queued"], 0)
        # Nothing left to bounce: done, and said so.
        self.assertEqual(self.ok_json("queue", "bounce", str(id))["message"],
                         "bounced 0 recipients of queued message %d; maild will send s@remote.test a notice" % id)

    def test_bounce_from_the_null_sender_owes_nothing(self):
        id = self.queue("a@remote.test", sender=None)
        self.assertEqual(self.ok("queue", "bounce", str(id)),
                         "bounced 1 recipient of queued message %d; no notice is owed\n" % id)
        self.assertEqual(self.listed(), [])  # nothing to do and nobody to tell: it left the queue


class HelpTest(QueueCase):
    def test_help_lists_the_verbs_but_not_inject(self):
        help = self.ok("queue", "--help")
        for verb in ("list", "show", "retry", "delete", "bounce"):
            self.assertRegex(help, r"(?m)^  queue %s" % verb)
        self.assertNotIn("inject", help)
        self.assertRegex(help, r"(?m)^  queue bounce ID\n      fail its queued recipients now; the running maild composes and sends the notice$")
        self.assertIn("[--all]", self.ok("queue", "retry", "--help"))
        self.fails("queue", code=2, mentioning=["list", "show", "retry", "delete", "bounce"])
        self.fails("queue", "flush", code=2, mentioning=["flush"])


if __name__ == "__main__":
    unittest.main()
