"""Outbound delivery through the real maild: MX answers from a private dnsmasq,
receiving peers that are Postfix (into a Maildir, byte-exact) and Postfix's
smtp-sink (answering 4xx or 5xx on demand), all on 127.0.0.x; retries,
notices (RFC 3464) to the sender's local mailbox, TLS policy, and the queue
as mailctl shows it."""

import json
import smtplib
import socket
import time
import unittest

from dns_server import DnsServer
from maild_harness import (IO_TIMEOUT, TRICKY_BODY, Maild, client_tls_context, deliveries,
                           distinct_message, export_message, mailctl_ok, provision, split_trace)
from postfix_peer import PostfixPeer, SmtpSink, missing_tools, strip_trace_headers

# How long a test waits for maild to deliver or give up: a few retry rounds.
DELIVERY_TIMEOUT = 30.0


def port_free_on(hosts):
    """A TCP port free on every one of hosts (127.0.0.x) right now."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind((hosts[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        ok = True
        for host in hosts:
            s = socket.socket()
            try:
                s.bind((host, port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise AssertionError("no port free on all of %s" % (hosts,))


def wait_until(predicate, what, timeout=DELIVERY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.1)


class DeliveryTest(unittest.TestCase):
    # The peers' addresses: mx.example.org on .2, a second MX on .3, a dead one on .4.
    PEERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")

    def setUp(self):
        problem = missing_tools()
        if problem:
            self.skipTest(problem)
        self.port = port_free_on(self.PEERS)
        self.dns = DnsServer(self, mx={
            "example.org": [(10, "mx.example.org")],
            "fallback.test": [(10, "dead.fallback.test"), (20, "live.fallback.test")],
            "nullmx.test": [(0, ".")],
        }, hosts={
            "mx.example.org": "127.0.0.2",
            "live.fallback.test": "127.0.0.3",
            "dead.fallback.test": "127.0.0.4",
        })

    def start_maild(self, extra="", users=("alice@example.test",)):
        maild = Maild(self, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n"
            "[delivery]\nsmtp_port = %d\nretry_schedule = 1s\nlease_time = 10s\n%s"
            % (self.dns.endpoint, self.port, extra)))
        provision(maild, users=users)
        maild.start()
        return maild

    def send(self, maild, recipients, message, sender="alice@example.test", mail_options=(),
             rcpt_options=()):
        with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], timeout=IO_TIMEOUT) as client:
            client.ehlo("client.test")
            refused = client.sendmail(sender, recipients, message, mail_options, rcpt_options)
        self.assertEqual(refused, {})

    def send_each(self, maild, sender, recipients, message, mail_options=()):
        """One transaction with each recipient's own RCPT parameters: [(address, [options])]."""
        with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], timeout=IO_TIMEOUT) as client:
            client.ehlo("client.test")
            self.assertEqual(client.mail(sender, list(mail_options))[0], 250)
            for address, options in recipients:
                self.assertEqual(client.rcpt(address, options)[0], 250, address)
            self.assertEqual(client.data(message)[0], 250)

    def queue(self, maild):
        """Every queued message as mailctl --json queue show prints it (recipients in detail)."""
        listed = json.loads(mailctl_ok(maild, "--json", "queue", "list"))
        return [json.loads(mailctl_ok(maild, "--json", "queue", "show", str(entry["id"])))
                for entry in listed]

    def notices(self, maild, mailbox="alice@example.test"):
        return [d for d in deliveries(maild, mailbox) if d["from"] == "<>"]

    # ---- the quick-start path: submission to an outside address ----

    def test_submission_reaches_a_postfix_peer_byte_exact(self):
        peer = PostfixPeer(self, hostname="mx.example.org", host="127.0.0.2", port=self.port)
        peer.receive_into_maildir("example.org", ["bob"])
        peer.start()
        maild = self.start_maild()
        message = (b"From: Alice <alice@example.test>\r\nTo: <bob@example.org>\r\n"
                   b"Subject: outward\r\nMessage-ID: <outward-1@example.test>\r\n\r\n" + TRICKY_BODY)
        with smtplib.SMTP("127.0.0.1", maild.ports["submission"], timeout=IO_TIMEOUT) as client:
            context = client_tls_context(maild.cert)
            context.check_hostname = False  # smtplib names the host 127.0.0.1
            client.starttls(context=context)
            client.login("alice@example.test", "secret")
            self.assertEqual(client.sendmail("alice@example.test", ["bob@example.org"], message), {})
        received = peer.wait_for_maildir("bob@example.org", timeout=DELIVERY_TIMEOUT)[0]
        # Postfix stores LF line ends; the content is otherwise exactly what was submitted.
        self.assertEqual(strip_trace_headers(received), message.replace(b"\r\n", b"\n"))
        self.assertIn(b"by mx.example.test (maild)", received)
        wait_until(lambda: not self.queue(maild), "the message leaves maild's queue")
        self.assertEqual(self.notices(maild), [])

    def test_a_forwarding_alias_delivers_its_copy(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port)
        maild = self.start_maild()
        mailctl_ok(maild, "alias", "add", "fwd@example.test", "carol@example.org")
        mailctl_ok(maild, "alias", "add", "fwd@example.test", "alice@example.test")
        self.send(maild, ["fwd@example.test"], distinct_message("forwarded", to="fwd@example.test"),
                  sender="someone@remote.test")
        captured = sink.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
        self.assertIn(b"X-Rcpt-Args: <carol@example.org>", captured)
        self.assertIn(b"X-Mail-Args: <someone@remote.test>", captured)
        self.assertEqual(len(deliveries(maild, "alice@example.test")), 1)  # and the local copy

    def test_recipients_at_one_destination_share_one_transaction(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port)
        maild = self.start_maild()
        rcpts = ["a@example.org", "b@example.org", "c@example.org"]
        self.send(maild, rcpts, distinct_message("three at once", to="a@example.org"))
        captured = sink.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)
        time.sleep(1.0)  # nothing else arrives
        self.assertEqual(len(sink.messages()), 1)
        for rcpt in rcpts:
            self.assertIn(b"X-Rcpt-Args: <%s>" % rcpt.encode(), captured[0])

    def test_mx_preference_falls_back_when_the_first_is_down(self):
        sink = SmtpSink(self, host="127.0.0.3", port=self.port)  # nothing listens on .4
        maild = self.start_maild()
        self.send(maild, ["dan@fallback.test"], distinct_message("fallback", to="dan@fallback.test"))
        captured = sink.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
        self.assertIn(b"X-Rcpt-Args: <dan@fallback.test>", captured)
        wait_until(lambda: not self.queue(maild), "the message leaves maild's queue")

    # ---- failures ----

    def test_temporary_failure_then_success(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-r", "RCPT"])
        maild = self.start_maild()
        self.send(maild, ["bob@example.org"], distinct_message("later", to="bob@example.org"))
        entry = wait_until(lambda: [m for m in self.queue(maild)
                                    if m["recipients"][0]["attempts"] >= 2],
                           "two deferred attempts")[0]
        recipient = entry["recipients"][0]
        self.assertEqual(recipient["state"], "queued")
        self.assertTrue(recipient["last_reply"].startswith("4"), recipient)
        self.assertEqual(sink.messages(), [])
        sink.stop()
        good = SmtpSink(self, host="127.0.0.2", port=self.port)
        good.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)
        wait_until(lambda: not self.queue(maild), "the message leaves maild's queue")
        self.assertEqual(self.notices(maild), [])  # no delay notice: delay_warning is 4h

    def test_permanent_failure_sends_one_notice_and_never_retries(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-f", "RCPT"])
        maild = self.start_maild()
        self.send(maild, ["bob@example.org", "carol@example.org"],
                  distinct_message("refused", to="bob@example.org"))
        notice = wait_until(lambda: self.notices(maild), "a notice to alice")
        time.sleep(3.0)  # three retry periods: no second attempt, no second notice
        self.assertEqual(len(self.notices(maild)), 1)
        self.assertEqual(maild.log().count("<bob@example.org> of message"), 1, maild.log()[-3000:])
        self.assertEqual(self.queue(maild), [])
        text = export_message(maild, notice[0]["id"])
        _, content = split_trace(text)
        self.assertIn(b"Subject: Undelivered Mail Returned to Sender", content)
        self.assertIn(b"Content-Type: multipart/report; report-type=delivery-status", content)
        self.assertIn(b"Final-Recipient: rfc822;bob@example.org\r\nAction: failed\r\nStatus: 5.", content)
        self.assertIn(b"Final-Recipient: rfc822;carol@example.org\r\nAction: failed", content)
        self.assertIn(b"Diagnostic-Code: smtp; 5", content)
        self.assertIn(b"Subject: refused", content)  # the original comes back
        self.assertTrue(text.startswith(b"Return-Path: <>\r\n"))

    def test_notify_never_gets_no_notice_and_ret_hdrs_gets_the_header_only(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-f", "RCPT"])
        maild = self.start_maild()
        self.send(maild, ["quiet@example.org"], distinct_message("hush", to="quiet@example.org"),
                  rcpt_options=["NOTIFY=NEVER"])
        self.send(maild, ["bob@example.org"], distinct_message("headers only", to="bob@example.org"),
                  mail_options=["RET=HDRS", "ENVID=env-42"])
        notice = wait_until(lambda: self.notices(maild), "a notice to alice")
        time.sleep(2.0)
        self.assertEqual(len(self.notices(maild)), 1)  # only the RET=HDRS one
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Original-Envelope-Id: env-42", content)
        self.assertIn(b"Content-Type: text/rfc822-headers", content)
        self.assertIn(b"Subject: headers only", content)
        self.assertNotIn(b"Hello.", content)  # distinct_message's body stays out

    # ---- success notices (RFC 3461 NOTIFY=SUCCESS) ----

    def test_notify_success_to_local_mailboxes_gets_one_delivered_notice(self):
        maild = self.start_maild(users=("alice@example.test", "bob@example.test",
                                        "carol@example.test"))
        self.send_each(maild, "alice@example.test",
                       [("bob@example.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob@example.test"]),
                        ("carol@example.test", ["NOTIFY=SUCCESS,FAILURE"]),
                        ("alice@example.test", [])],
                       distinct_message("arrived", to="bob@example.test"),
                       mail_options=["ENVID=env-ok"])
        notice = wait_until(lambda: self.notices(maild), "a delivered notice to alice")
        time.sleep(2.0)  # two retry periods: no second notice
        self.assertEqual(len(self.notices(maild)), 1)
        self.assertEqual(self.queue(maild), [])
        self.assertEqual(len(deliveries(maild, "bob@example.test")), 1)
        text = export_message(maild, notice[0]["id"])
        self.assertTrue(text.startswith(b"Return-Path: <>\r\n"))
        _, content = split_trace(text)
        self.assertIn(b"Subject: Successful Mail Delivery Report", content)
        self.assertIn(b"Content-Type: multipart/report; report-type=delivery-status", content)
        self.assertIn(b"Original-Envelope-Id: env-ok\r\n", content)
        self.assertIn(b"Original-Recipient: rfc822;Bob@example.test\r\n"
                      b"Final-Recipient: rfc822;bob@example.test\r\n"
                      b"Action: delivered\r\nStatus: 2.0.0\r\n", content)
        self.assertIn(b"Final-Recipient: rfc822;carol@example.test\r\n"
                      b"Action: delivered\r\nStatus: 2.0.0\r\n", content)
        self.assertEqual(content.count(b"Final-Recipient:"), 2)  # not alice: no NOTIFY=SUCCESS
        self.assertIn(b"Content-Type: text/rfc822-headers", content)
        self.assertIn(b"Subject: arrived", content)
        self.assertNotIn(b"Hello.", content)  # headers only without RET=FULL

    def test_no_success_notice_unless_asked_and_never_to_the_null_sender(self):
        maild = self.start_maild(users=("alice@example.test", "bob@example.test"))
        self.send(maild, ["bob@example.test"], distinct_message("failure only"),
                  rcpt_options=["NOTIFY=FAILURE,DELAY"])
        self.send(maild, ["bob@example.test"], distinct_message("never"),
                  rcpt_options=["NOTIFY=NEVER"])
        self.send(maild, ["bob@example.test"], distinct_message("no notify"))
        self.send(maild, ["bob@example.test"], distinct_message("from nobody"), sender="",
                  rcpt_options=["NOTIFY=SUCCESS"])
        self.assertEqual(self.queue(maild), [])  # nothing owed, so nothing queued
        # A last message that does ask: its notice is the only one.
        self.send(maild, ["bob@example.test"], distinct_message("marker"),
                  mail_options=["ENVID=marker"], rcpt_options=["NOTIFY=SUCCESS"])
        notice = wait_until(lambda: self.notices(maild), "the marker's notice")
        time.sleep(2.0)
        self.assertEqual(len(self.notices(maild)), 1)
        self.assertEqual(len(deliveries(maild, "bob@example.test")), 5)
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Original-Envelope-Id: marker\r\n", content)
        self.assertEqual(maild.log().count("queue: notice for message"), 1, maild.log()[-3000:])

    def test_ret_full_returns_the_whole_message_with_a_delivered_notice(self):
        maild = self.start_maild(users=("alice@example.test", "bob@example.test"))
        self.send(maild, ["bob@example.test"], distinct_message("whole"),
                  mail_options=["RET=FULL"], rcpt_options=["NOTIFY=SUCCESS"])
        notice = wait_until(lambda: self.notices(maild), "a delivered notice to alice")
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Content-Type: message/rfc822", content)
        self.assertIn(b"Hello.", content)

    def test_a_peer_without_dsn_makes_one_relayed_notice(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-N"])  # no DSN
        maild = self.start_maild()
        self.send_each(maild, "alice@example.test",
                       [("bob@example.org", ["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@example.org"]),
                        ("carol@example.org", ["NOTIFY=FAILURE"])],
                       distinct_message("relayed", to="bob@example.org"),
                       mail_options=["ENVID=env-relay"])
        captured = sink.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
        self.assertNotIn(b"NOTIFY", captured)  # not offered: not passed on
        notice = wait_until(lambda: self.notices(maild), "a relayed notice to alice")
        time.sleep(2.0)
        self.assertEqual(len(self.notices(maild)), 1)
        self.assertEqual(self.queue(maild), [])
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Subject: Successful Mail Relay Report", content)
        self.assertIn(b"Original-Envelope-Id: env-relay\r\n", content)
        self.assertIn(b"Original-Recipient: rfc822;bob@example.org\r\n"
                      b"Final-Recipient: rfc822;bob@example.org\r\n"
                      b"Action: relayed\r\nStatus: 2.", content)
        self.assertIn(b"Remote-MTA: dns; mx.example.org", content)
        self.assertNotIn(b"carol@example.org\r\nAction:", content)

    def test_a_peer_with_dsn_gets_the_parameters_and_maild_sends_no_notice(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port)  # smtp-sink offers DSN
        maild = self.start_maild()
        self.send(maild, ["bob@example.org"], distinct_message("passed on", to="bob@example.org"),
                  mail_options=["ENVID=env-on"],
                  rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@example.org"])
        captured = sink.wait_for_messages(1, timeout=DELIVERY_TIMEOUT)[0]
        self.assertIn(b"NOTIFY=SUCCESS", captured)
        self.assertIn(b"ORCPT=rfc822;bob@example.org", captured)
        wait_until(lambda: not self.queue(maild), "the message leaves maild's queue")
        time.sleep(1.0)
        self.assertEqual(self.notices(maild), [])

    def test_null_mx_fails_at_once(self):
        maild = self.start_maild()
        self.send(maild, ["eve@nullmx.test"], distinct_message("nowhere", to="eve@nullmx.test"))
        notice = wait_until(lambda: self.notices(maild), "a notice to alice")
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Final-Recipient: rfc822;eve@nullmx.test\r\nAction: failed\r\nStatus: 5.1.10", content)

    def test_delay_warning_is_sent_once(self):
        SmtpSink(self, host="127.0.0.2", port=self.port, options=["-r", "RCPT"])
        maild = self.start_maild("delay_warning = 2s\n")
        self.send(maild, ["slow@example.org"], distinct_message("slow", to="slow@example.org"))
        notice = wait_until(lambda: self.notices(maild), "a delay notice to alice")
        time.sleep(3.0)
        self.assertEqual(len(self.notices(maild)), 1)
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Action: delayed", content)
        self.assertIn(b"Will-Retry-Until:", content)
        self.assertEqual(self.queue(maild)[0]["recipients"][0]["state"], "queued")

    def test_tls_required_but_not_offered_stays_queued(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port)  # smtp-sink has no STARTTLS
        maild = self.start_maild("tls = encrypt\n")
        self.send(maild, ["bob@example.org"], distinct_message("secret", to="bob@example.org"))
        entry = wait_until(lambda: [m for m in self.queue(maild)
                                    if m["recipients"][0]["attempts"] >= 2],
                           "two deferred attempts")[0]
        self.assertIn("4.7.4", entry["recipients"][0]["last_reply"])
        self.assertEqual(sink.messages(), [])
        self.assertEqual(self.notices(maild), [])


    def test_a_domains_own_tls_policy_overrides_the_default(self):
        protected = SmtpSink(self, host="127.0.0.2", port=self.port)  # example.org, no STARTTLS
        other = SmtpSink(self, host="127.0.0.3", port=self.port)      # fallback.test
        maild = self.start_maild()  # [delivery] tls = may
        mailctl_ok(maild, "policy", "set", "example.org", "--tls", "encrypt")
        self.send(maild, ["bob@example.org", "carol@fallback.test"],
                  distinct_message("policy", to="bob@example.org"))
        wait_until(other.messages, "carol's copy at fallback.test (tls = may)")
        entry = wait_until(lambda: [m for m in self.queue(maild)
                                    if m["recipients"][0]["attempts"] >= 2],
                           "two deferred attempts for example.org")[0]
        self.assertEqual([r["address"] for r in entry["recipients"] if r["state"] == "queued"],
                         ["bob@example.org"])
        self.assertIn("4.7.4", entry["recipients"][0]["last_reply"])
        self.assertEqual(protected.messages(), [])
        # Back to the default: the next attempt (made due now) goes without TLS.
        mailctl_ok(maild, "policy", "set", "example.org", "--tls", "default")
        mailctl_ok(maild, "queue", "retry", "--all")
        wait_until(protected.messages, "bob's copy once the domain's policy is gone")
        self.assertEqual(self.notices(maild), [])

if __name__ == "__main__":
    unittest.main()
