"""SOURCE/GET on the real maild: SOURCE from Python's smtplib and raw
transcripts, GET of a pickup offered with mailctl (authorised as a trusted
peer; DNS authorisation is covered by tests/protocol/smtp_source_get_test.cpp
against dnsmasq), the unknown-token throttle, the per-domain policy for
unverified DATA mail changed with mailctl while maild runs, and what
mailctl stats and mail list show."""

import json
import smtplib
import time
import unittest

from maild_harness import (IO_TIMEOUT, TRICKY_BODY, Maild, deliveries, export_message, mailctl_ok,
                           provision, split_trace)

TOKEN = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"
OTHER_TOKEN = "00112233445566778899aabbccddeeff"
USERS = ("alice@example.test", "bob@example.test")

MESSAGE = (b"From: Alice <alice@example.test>\r\n"
           b"To: <someone@dest.test>\r\n"
           b"Subject: offered for GET\r\n"
           b"Message-ID: <source-get-1@example.test>\r\n"
           b"\r\n" + TRICKY_BODY)


def started(test, config=""):
    maild = Maild(test, config_extra=config)
    provision(maild, users=USERS)
    return maild.start()


def stats(maild):
    return json.loads(mailctl_ok(maild, "--json", "stats"))


def smtp(maild):
    return smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="origin.test", timeout=IO_TIMEOUT)


def unstuff(lines):
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


class SourceTest(unittest.TestCase):
    def test_smtplib_sees_the_keyword_and_source_is_recorded(self):
        # A DNS server that does not answer: the retrieval worker cannot fetch, it stays pending.
        maild = started(self, "[log]\nlevel = debug\n[dns]\nservers = 127.0.0.1:9\ntimeout = 1s")
        with smtp(maild) as client:
            client.ehlo()
            self.assertTrue(client.has_extn("source"), client.esmtp_features)
            self.assertEqual(client.mail("alice@origin.test", ["SIZE=321"])[0], 250)
            self.assertEqual(client.rcpt("bob@example.test")[0], 250)
            code, text = client.docmd("SOURCE", TOKEN)
            self.assertEqual((code, text), (250, b"2.0.0 " + TOKEN.encode() + b" accepted for retrieval"))
            # SOURCE ended the transaction.
            self.assertEqual(client.rcpt("bob@example.test")[0], 503)
        counts = stats(maild)
        self.assertEqual(counts["source_accepted"], 1)
        self.assertEqual(counts["retrievals_pending"], 1)
        self.assertEqual(deliveries(maild), [])  # nothing is delivered before the GET
        maild.wait_for_log("SOURCE 5f0c2e8a... from <alice@origin.test>: 1 recipient,")
        log = maild.log()
        self.assertIn("> 250 2.0.0 5f0c2e8a... accepted for retrieval", log)
        self.assertNotIn(TOKEN, log)
        self.assertNotIn(TOKEN[:9], log)

    def test_every_refusal_of_source(self):
        maild = started(self)
        d = maild.admitted_dialogue()
        d.send("EHLO origin.test\r\n")
        self.assertIn("250-SOURCE", d.reply())
        d.send("SOURCE %s\r\n" % TOKEN)
        d.expect("503 5.5.1")  # no MAIL
        d.send("MAIL FROM:<alice@origin.test>\r\nRCPT TO:<nobody@example.test>\r\nSOURCE %s\r\n" % TOKEN)
        d.expect("250 ")
        d.expect("550 5.1.1")
        d.expect("503 5.5.1")  # no accepted RCPT
        d.send("RCPT TO:<bob@example.test>\r\nSOURCE %s\r\n" % TOKEN.upper())
        d.expect("250 ")
        d.expect("501 5.5.4")  # malformed token
        d.send("SOURCE %s\r\nNOOP\r\n" % TOKEN)
        d.expect("503 5.5.1")  # not last in its pipelined group
        d.expect("250 ")
        d.send("RSET\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nSOURCE %s\r\n" % TOKEN)
        d.expect("250 ")
        d.expect("250 ")
        d.expect("250 ")
        d.expect("501 5.5.4")  # a bounce cannot be fetched back
        d.send("QUIT\r\n")
        d.expect("221 ")
        self.assertEqual(stats(maild)["source_accepted"], 0)

    def test_accept_source_off_refuses_by_policy(self):
        maild = started(self, "[reverse]\naccept_source = false")
        with smtp(maild) as client:
            client.ehlo()
            self.assertTrue(client.has_extn("source"))  # use_source is on: we still answer GET
            client.mail("alice@origin.test")
            client.rcpt("bob@example.test")
            self.assertEqual(client.docmd("SOURCE", TOKEN)[0], 550)
            client.rset()  # the origin's fallback to DATA
            self.assertEqual(client.sendmail("alice@origin.test", ["bob@example.test"], MESSAGE), {})
        self.assertEqual(len(deliveries(maild)), 1)

    def test_submission_does_not_offer_source(self):
        maild = started(self)
        d = maild.admitted_dialogue("submission")
        d.send("EHLO origin.test\r\n")
        self.assertNotIn("250-SOURCE", d.reply())


class GetTest(unittest.TestCase):
    def offer(self, maild, token=TOKEN, message=MESSAGE):
        result = maild.mailctl("pickup", "inject", token, "--from", "alice@example.test",
                               "--to", "someone@dest.test", input=message.decode())
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_trusted_peer_fetches_the_message_byte_exact(self):
        maild = started(self, "[reverse]\ntrusted_peers = 127.0.0.1\n[log]\nlevel = debug")
        self.offer(maild)
        self.assertEqual(stats(maild)["pickups_waiting"], 1)
        d = maild.admitted_dialogue()
        d.send("EHLO dest.test\r\n")
        d.expect("250 ")
        d.send("GET %s\r\n" % TOKEN)
        d.expect("354 2.0.0 %s message follows" % TOKEN)
        lines = []
        while True:
            line = d.line().encode()
            if line == b".":
                break
            lines.append(line)
        d.expect("250 2.0.0 %s transferred" % TOKEN)
        self.assertEqual(unstuff(lines), MESSAGE)
        self.assertIn(b"..A line that starts with a dot", b"\r\n".join(lines))  # stuffed on the wire
        d.send("QUIT\r\n")
        d.expect("221 ")
        maild.wait_for_log("5f0c2e8a... transferred")
        maild.wait_for_log("octets transferred")
        counts = stats(maild)
        self.assertEqual(counts["pickups_served"], 1)
        self.assertEqual(counts["pickups_waiting"], 0)
        self.assertNotIn(TOKEN, maild.log())

    def test_unauthorised_without_dns_is_deferred_and_never_sent(self):
        # No trusted peer, and a DNS server that does not answer: the check
        # cannot pass, so nothing is sent (450, the fetcher retries).
        maild = Maild(self, config_extra="[dns]\nservers = 127.0.0.1:9\ntimeout = 1s")
        provision(maild, users=USERS)
        maild.start()
        self.offer(maild)
        d = maild.admitted_dialogue()
        d.send("EHLO dest.test\r\nGET %s\r\n" % TOKEN)
        d.expect("250 ")
        d.expect("450 4.3.0")
        self.assertEqual(stats(maild)["pickups_served"], 0)

    def test_unknown_tokens_are_answered_slowly_but_a_real_token_still_comes(self):
        maild = started(self, "[reverse]\ntrusted_peers = 127.0.0.1\nmax_unknown_tokens = 2")
        self.offer(maild)
        d = maild.admitted_dialogue()
        d.send("EHLO dest.test\r\n")
        d.expect("250 ")
        for _ in range(3):  # below, at and past max_unknown_tokens: a 550 each, never a 421
            d.send("GET %s\r\n" % OTHER_TOKEN)
            d.expect("550 5.1.0")
        started_at = time.monotonic()
        d.send("GET %s\r\n" % TOKEN)
        d.expect("354 2.0.0")
        self.assertLess(time.monotonic() - started_at, 1.0)

    def test_get_needs_ehlo(self):
        maild = started(self, "[reverse]\ntrusted_peers = 127.0.0.1")
        self.offer(maild)
        d = maild.admitted_dialogue()
        d.send("GET %s\r\n" % TOKEN)
        d.expect("503 5.5.1")


class UnverifiedPolicyTest(unittest.TestCase):
    # 127.0.0.1 must not be in relay_networks: our own clients are exempt.
    CONFIG = "[smtp]\nrelay_networks = 10.0.0.0/8"

    def send(self, maild, subject):
        message = b"From: <a@origin.test>\r\nSubject: %s\r\n\r\nbody\r\n" % subject.encode()
        with smtp(maild) as client:
            return client.sendmail("a@origin.test", ["bob@example.test"], message)

    def test_policy_changes_apply_to_a_running_maild(self):
        maild = started(self, self.CONFIG)
        self.send(maild, "accepted")
        mailctl_ok(maild, "policy", "set", "example.test", "--unverified", "reject")
        with self.assertRaises(smtplib.SMTPDataError) as refused:
            self.send(maild, "refused")
        self.assertEqual(refused.exception.smtp_code, 550)
        self.assertIn(b"5.7.1", refused.exception.smtp_error)
        mailctl_ok(maild, "policy", "set", "example.test", "--unverified", "tag")
        self.send(maild, "tagged")
        mail = deliveries(maild)
        self.assertEqual([m["subject"] for m in mail], ["tagged", "accepted"])
        self.assertEqual({m["origin"] for m in mail}, {"unverified"})
        tagged = export_message(maild, mail[0]["id"])
        self.assertTrue(tagged.startswith(b"Return-Path: <a@origin.test>\r\n"
                                          b"Authentication-Results: mx.example.test; source-get=none\r\n"
                                          b"Received: from "), tagged[:300])
        trace, _ = split_trace(export_message(maild, mail[1]["id"]))
        self.assertTrue(trace.startswith(b"Return-Path: <a@origin.test>\r\nReceived: from "), trace)
        self.assertNotIn(b"source-get", export_message(maild, mail[1]["id"]))

    def test_the_mail_conf_default_and_a_domain_override(self):
        maild = started(self, self.CONFIG + "\n[reverse]\nunverified_policy = reject")
        with self.assertRaises(smtplib.SMTPDataError):
            self.send(maild, "refused by default")
        mailctl_ok(maild, "policy", "set", "example.test", "--unverified", "accept")
        self.send(maild, "accepted by the domain's policy")
        self.assertEqual(len(deliveries(maild)), 1)
        shown = json.loads(mailctl_ok(maild, "--json", "policy", "show", "example.test"))
        self.assertEqual(shown["unverified"], "accept")
        mailctl_ok(maild, "policy", "set", "example.test", "--unverified", "default")
        shown = json.loads(mailctl_ok(maild, "--json", "policy", "show", "example.test"))
        self.assertEqual((shown["unverified"], shown["unverified_effective"]), ("default", "reject"))


class MailctlTest(unittest.TestCase):
    def test_policy_commands(self):
        maild = Maild(self)
        provision(maild, users=USERS)
        mailctl_ok(maild, "policy", "set", "example.test", "--unverified", "tag")
        mailctl_ok(maild, "policy", "set", "remote.test", "--tls", "encrypt")
        self.assertEqual(mailctl_ok(maild, "policy", "list"),
                         "DOMAIN        UNVERIFIED        TLS\n"
                         "example.test  tag               default (may)\n"
                         "remote.test   default (accept)  encrypt\n")
        self.assertEqual(json.loads(mailctl_ok(maild, "--json", "policy", "list")),
                         [{"domain": "example.test", "unverified": "tag", "tls": "default"},
                          {"domain": "remote.test", "unverified": "default", "tls": "encrypt"}])
        # A policy for unverified mail is for our own domains only.
        result = maild.mailctl("policy", "set", "remote.test", "--unverified", "reject")
        self.assertEqual(result.returncode, 1)
        self.assertIn("remote.test", result.stderr)
        for bad in (["policy", "set", "example.test"], ["policy", "set", "example.test", "--unverified", "maybe"],
                    ["policy", "set", "example.test", "--tls", "always"]):
            self.assertEqual(maild.mailctl(*bad).returncode, 2, bad)
        mailctl_ok(maild, "policy", "set", "remote.test", "--tls", "default")
        self.assertEqual(len(json.loads(mailctl_ok(maild, "--json", "policy", "list"))), 1)

    def test_stats_and_the_origin_column(self):
        maild = Maild(self)
        provision(maild, users=USERS)
        self.assertEqual(stats(maild), {"source_accepted": 0, "get_fetched": 0, "get_failed": 0,
                                        "get_expired": 0, "pickups_served": 0, "pickups_expired": 0,
                                        "retrievals_pending": 0, "pickups_waiting": 0})
        self.assertIn("GET failed (forgery signals)  0\n", mailctl_ok(maild, "stats"))
        mailctl_ok(maild, "mail", "inject", "--mailbox", "bob@example.test", input="Subject: x\n\nhi\n")
        self.assertRegex(mailctl_ok(maild, "mail", "list"),
                         r"\AID +RECEIVED +MAILBOX +FROM +SIZE +STATUS +ORIGIN +SUBJECT\n.* unverified +x\n\Z")


if __name__ == "__main__":
    unittest.main()
