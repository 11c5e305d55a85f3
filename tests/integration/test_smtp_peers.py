"""maild's SMTP receiver against third-party peers: swaks (pipelining,
STARTTLS, AUTH on submission, implicit TLS on submissions) and a private
Postfix instance relaying to maild through a transport map. What maild
stores is read back with mailctl and compared byte for byte."""

import os
import re
import smtplib
import unittest

from maild_harness import (TRICKY_BODY, IO_TIMEOUT, Maild, deliveries, export_message, mailctl_ok, provision,
                           split_trace)
from postfix_peer import SWAKS, PostfixPeer, missing_tools, run_smtp_source, swaks

PASSWORD = "battery staple"

MESSAGE = (
    b"From: Sender <sender@remote.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: through a real peer\r\n"
    b"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
    b"Message-ID: <peers-test-1@remote.test>\r\n"
    b"\r\n"
    + TRICKY_BODY
)


def started(test, config=""):
    maild = Maild(test, config)
    provision(maild, ["alice@example.test", "bob@example.test"], password=PASSWORD)
    return maild.start()


def swaks_data(maild, content=MESSAGE):
    """--data for swaks: "@file" with content without its last CRLF (swaks
    adds CRLF "." CRLF), which swaks dot-stuffs as it sends."""
    path = os.path.join(maild.dir, "message.eml")
    with open(path, "wb") as f:
        f.write(content[:-2])
    return "@" + path


@unittest.skipUnless(os.access(SWAKS, os.X_OK), "swaks is missing: run scripts/install-deps.sh test")
class Swaks(unittest.TestCase):
    def swaks(self, maild, *args, service="smtp", ok=True):
        result = swaks("--server", "127.0.0.1:%d" % maild.ports[service], "--helo", "swaks.test",
                       "--from", "sender@remote.test", *args, timeout=IO_TIMEOUT * 3)
        if ok:
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # swaks marks lines sent or read under TLS with "~" instead of "-".
        return result.stdout + result.stderr

    def only_content(self, maild):
        [row] = deliveries(maild)
        trace, content = split_trace(export_message(maild, row["id"]))
        return trace, content

    def test_pipelined_transaction_on_port_25_is_stored_byte_exact(self):
        maild = started(self)
        out = self.swaks(maild, "--to", "alice@example.test", "--pipeline", "--data", swaks_data(maild))
        # With PIPELINING swaks sends MAIL, RCPT and DATA before reading a reply.
        self.assertRegex(out, r" -> MAIL FROM:<sender@remote\.test>\n -> RCPT TO:<alice@example\.test>\n"
                              r" -> DATA\n<-  250 2\.1\.0 OK\n<-  250 2\.1\.5 OK\n<-  354 ")
        self.assertRegex(out, r"<-  250 2\.0\.0 OK stored as [0-9a-f]{16}\n")
        trace, content = self.only_content(maild)
        self.assertEqual(content, MESSAGE)
        self.assertIn(b"Received: from swaks.test ([127.0.0.1])\r\n"
                      b"\tby mx.example.test (maild) with ESMTP id ", trace)

    def test_starttls_on_port_25_with_a_verified_certificate(self):
        maild = started(self)
        out = self.swaks(maild, "--to", "alice@example.test", "-tls", "--tls-verify", "--tls-ca-path", maild.cert,
                         "--data", swaks_data(maild))
        match = re.search(r"=== TLS started with cipher (TLSv1\.[23]):(\S+):\d+\n", out)
        self.assertIsNotNone(match, out)
        self.assertIn('=== TLS peer DN="/CN=mx.example.test"', out)
        trace, content = self.only_content(maild)
        self.assertEqual(content, MESSAGE)
        unfolded = trace.replace(b"\r\n\t", b" ").decode()
        self.assertIn("with ESMTPS id ", unfolded)
        self.assertIn("(using %s with cipher %s)" % match.groups(), unfolded)

    def test_submission_with_starttls_and_auth_plain_and_login(self):
        maild = started(self)
        for mechanism in ("PLAIN", "LOGIN"):
            with self.subTest(mechanism=mechanism):
                out = self.swaks(maild, "--to", "bob@example.test", "-tls", "--tls-verify", "--tls-ca-path",
                                 maild.cert, "--auth", mechanism, "--auth-user", "alice@example.test",
                                 "--auth-password", PASSWORD, "--header", "Subject: via submission " + mechanism,
                                 service="submission")
                self.assertIn("<~  235 2.7.0 authentication successful", out)
                self.assertRegex(out, r"<~  250 2\.0\.0 OK stored as ")
        self.assertEqual(sorted(r["subject"] for r in deliveries(maild, "bob@example.test")),
                         ["via submission LOGIN", "via submission PLAIN"])

    def test_submissions_implicit_tls_with_auth_login(self):
        maild = started(self, "[smtp]\nreceived_auth_user = true")
        out = self.swaks(maild, "--to", "bob@example.test", "--tls-on-connect", "--tls-verify",
                         "--tls-ca-path", maild.cert, "--auth", "LOGIN", "--auth-user", "alice@example.test",
                         "--auth-password", PASSWORD, "--data", swaks_data(maild),
                         service="submissions")
        self.assertIn("=== TLS started with cipher TLSv1.3", out)
        self.assertIn("<~  220 mx.example.test ESMTP maild", out)
        self.assertIn("<~  235 2.7.0 authentication successful", out)
        trace, content = self.only_content(maild)
        self.assertEqual(content, MESSAGE)
        unfolded = trace.replace(b"\r\n\t", b" ").decode()
        self.assertIn("with ESMTPSA id ", unfolded)
        self.assertIn("(authenticated as alice@example.test)", unfolded)

    def test_refusals_as_swaks_reports_them(self):
        maild = started(self)
        cases = [
            (["--to", "nobody@example.test"], "smtp", "<** 550 5.1.1 <nobody@example.test>: mailbox unavailable"),
            (["--to", "bob@example.test"], "submission", "<** 530 5.7.0 must issue a STARTTLS command first"),
            (["--to", "bob@example.test", "-tls", "--auth", "PLAIN", "--auth-user", "alice@example.test",
              "--auth-password", "wrong"], "submission", "<~* 535 5.7.8 authentication credentials invalid"),
            (["--to", "bob@example.test", "--auth", "PLAIN", "--auth-user", "alice@example.test",
              "--auth-password", PASSWORD], "smtp", "Host did not advertise authentication"),
        ]
        for args, service, expected in cases:
            with self.subTest(expected=expected):
                out = self.swaks(maild, *args, service=service, ok=False)
                self.assertIn(expected, out)
        self.assertEqual(deliveries(maild), [])


@unittest.skipIf(missing_tools(), missing_tools())
class PostfixSendsToMaild(unittest.TestCase):
    def relay(self, maild, **main_cf):
        peer = PostfixPeer(self, hostname="peer.test", main_cf_extra=main_cf)
        peer.relay_to("example.test", "127.0.0.1", maild.ports["smtp"])
        return peer.start()

    def submit(self, peer, recipients, message=MESSAGE):
        with smtplib.SMTP("127.0.0.1", peer.port, local_hostname="client.test", timeout=IO_TIMEOUT) as smtp:
            return smtp.sendmail("sender@remote.test", recipients, message)

    def test_postfix_relays_and_maild_stores_the_message_byte_exact(self):
        maild = started(self)
        peer = self.relay(maild)

        self.assertEqual(self.submit(peer, ["alice@example.test", "bob@example.test"]), {})

        match = peer.wait_for_log(r"to=<alice@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*"
                                  r"status=sent \(250 2\.0\.0 OK stored as ([0-9a-f]{16})\)" % maild.ports["smtp"])
        peer.wait_queue_empty()
        rows = deliveries(maild)
        self.assertEqual(sorted(r["mailbox"] for r in rows), ["alice@example.test", "bob@example.test"])
        for row in rows:
            trace, content = split_trace(export_message(maild, row["id"]))
            # Postfix's own Received field comes after maild's trace lines; the
            # message itself is what the first client sent, byte for byte.
            self.assertEqual(content, MESSAGE)
            fields = trace.replace(b"\r\n\t", b" ").decode().split("\r\n")
            self.assertEqual(fields[0], "Return-Path: <sender@remote.test>")
            self.assertRegex(fields[1], r"^Received: from peer\.test \(\[127\.0\.0\.1\]\) by mx\.example\.test "
                                        r"\(maild\) with ESMTP id [0-9A-Z]{12}; ")
            self.assertRegex(fields[2], r"^Received: from client\.test .* by peer\.test \(Postfix\)")
        self.assertIn("stored %s from <sender@remote.test>" % match.group(1), maild.log())

    def test_postfix_relays_over_starttls(self):
        maild = started(self)
        peer = self.relay(maild, smtp_tls_security_level="encrypt", smtp_tls_loglevel="1")

        self.submit(peer, ["alice@example.test"])

        peer.wait_for_log(r"(Trusted|Untrusted|Anonymous) TLS connection established "
                          r"to 127\.0\.0\.1\[127\.0\.0\.1\]:%d" % maild.ports["smtp"])
        peer.wait_for_log(r"to=<alice@example\.test>.*status=sent \(250 2\.0\.0 OK stored as ")
        [row] = deliveries(maild)
        trace, content = split_trace(export_message(maild, row["id"]))
        self.assertEqual(content, MESSAGE)
        self.assertRegex(trace.replace(b"\r\n\t", b" ").decode(),
                         r"by mx\.example\.test \(maild\) with ESMTPS id [0-9A-Z]{12} "
                         r"\(using TLSv1\.[23] with cipher \S+\) for <alice@example\.test>; ")

    def test_postfix_bounces_an_unknown_recipient_and_delivers_the_other(self):
        maild = started(self)
        peer = self.relay(maild)

        self.submit(peer, ["nobody@example.test", "alice@example.test"])

        peer.wait_for_log(r"to=<nobody@example\.test>.*status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
                          r"550 5\.1\.1 <nobody@example\.test>: mailbox unavailable "
                          r"\(in reply to RCPT TO command\)\)")
        peer.wait_for_log(r"to=<alice@example\.test>.*status=sent")
        self.assertEqual([r["mailbox"] for r in deliveries(maild)], ["alice@example.test"])

    def test_postfix_defers_on_452_and_delivers_the_rest_later(self):
        users = ["u%d@example.test" % n for n in range(5)]
        maild = Maild(self, "[smtp]\nmax_recipients = 3")
        provision(maild, users, password=PASSWORD)
        maild.start()
        peer = self.relay(maild)

        self.submit(peer, users)

        # The first transaction takes three; Postfix keeps the other two and sends them again.
        peer.wait_for_log(r"452 4\.5\.3 too many recipients")
        deadline = 60.0
        peer.wait_for_log(r"to=<u4@example\.test>.*status=sent", timeout=deadline)
        peer.wait_for_log(r"to=<u3@example\.test>.*status=sent", timeout=deadline)
        self.assertEqual(sorted(r["mailbox"] for r in deliveries(maild)), users)

    def test_smtp_source_load_is_stored_completely(self):
        maild = started(self)

        result, elapsed = run_smtp_source("127.0.0.1", maild.ports["smtp"], messages=200, sessions=10,
                                          size=5000, recipient="alice@example.test", timeout=60)

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(len(deliveries(maild, "alice@example.test")), 200)
        self.assertLess(elapsed, 60)


if __name__ == "__main__":
    unittest.main()
