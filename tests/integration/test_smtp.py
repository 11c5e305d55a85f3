"""maild's SMTP receiver against Python's smtplib and raw transcripts: the
real binary, a temp store with accounts made by mailctl, and every stored
message read back with mailctl and compared byte for byte."""

import base64
import json
import hashlib
import re
import smtplib
import socket
import ssl
import subprocess
import unittest

from maild_harness import (TRICKY_BODY, IO_TIMEOUT, Dialogue, Maild, deliveries, export_message, mailctl_ok,
                           provision, split_trace)

PASSWORD = "correct horse"

MESSAGE = (
    b"From: Sender <sender@remote.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: byte for byte\r\n"
    b"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
    b"Message-ID: <smtp-test-1@remote.test>\r\n"
    b"\r\n"
    + TRICKY_BODY
)

# maild's Received field, unfolded: from, by, optional TLS and user clauses,
# the recipient when there is exactly one, and the date.
RECEIVED = re.compile(
    r"Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)"
    r" by mx\.example\.test \(maild\) with (?P<protocol>[A-Z0-9]+) id (?P<id>[0-9A-Z]{12})"
    r"(?: \(using (?P<tls_version>\S+) with cipher (?P<cipher>\S+)\))?"
    r"(?: \(authenticated as (?P<user>\S+)\))?"
    r"(?: for <(?P<recipient>[^>]*)>)?"
    r"; (?P<date>(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d \+0000)\r\n\Z")


def plain(user, password=PASSWORD):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def tls_context(maild):
    """Verifies maild's self-signed certificate; smtplib names the host 127.0.0.1."""
    context = ssl.create_default_context(cafile=maild.cert)
    context.check_hostname = False
    return context


def smtp_client(maild, service="smtp"):
    port = maild.ports[service]
    if service == "submissions":
        return smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test", timeout=IO_TIMEOUT,
                                context=tls_context(maild))
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=IO_TIMEOUT)


def queued_recipients(maild):
    """The addresses of every recipient in maild's outbound queue (mailctl --json queue list)."""
    entries = json.loads(mailctl_ok(maild, "--json", "queue", "list"))
    return sorted(address for entry in entries for address in entry["recipients"].split(", "))


def started(test, config="", users=("alice@example.test", "bob@example.test")):
    """maild with example.test and the given mailboxes (password PASSWORD)."""
    maild = Maild(test, config)
    provision(maild, users, password=PASSWORD)
    return maild.start()


def ehlo(d, name="client.test"):
    """EHLO in a raw dialogue; returns the reply's lines."""
    d.send("EHLO %s\r\n" % name)
    lines = d.reply()
    if not lines[-1].startswith("250 "):
        raise AssertionError("EHLO refused: %r" % lines)
    return lines


def starttls(maild, d):
    """STARTTLS in a raw dialogue; the dialogue continues under TLS."""
    d.send("STARTTLS\r\n")
    d.expect("220 2.0.0")
    assert d.buffer == b"", d.buffer
    context = ssl.create_default_context(cafile=maild.cert)
    d.sock = context.wrap_socket(d.sock, server_hostname="mx.example.test")


def content_of_size(size, subject="size"):
    """A message of exactly size octets in CRLF lines of at most 100 octets."""
    head = b"Subject: %s\r\n\r\n" % subject.encode()
    full, rest = divmod(size - len(head), 100)
    if rest == 1:  # a line needs at least its CRLF
        full, rest = full - 1, rest + 100
    content = head + (b"y" * 98 + b"\r\n") * full + (b"y" * (rest - 2) + b"\r\n" if rest else b"")
    assert len(content) == size, (len(content), size)
    return content


class SmtpCase(unittest.TestCase):
    def only_message(self, maild, mailbox=None):
        """The one delivery in the store (of mailbox): (row, trace, content)."""
        rows = deliveries(maild, mailbox)
        self.assertEqual(len(rows), 1, rows)
        trace, content = split_trace(export_message(maild, rows[0]["id"]))
        return rows[0], trace, content

    def received(self, trace):
        """The Return-Path line and maild's Received field of trace, parsed."""
        return_path, received = trace.split(b"\r\n", 1)
        self.assertTrue(return_path.startswith(b"Return-Path: <"), trace)
        for line in received.split(b"\r\n")[:-1]:
            self.assertLessEqual(len(line), 78, received)  # folded as RFC 5322 2.1.1 asks
        match = RECEIVED.match(received.replace(b"\r\n\t", b" ").decode())
        self.assertIsNotNone(match, received)
        return return_path.decode(), match


class Delivery(SmtpCase):
    def test_smtplib_message_is_stored_byte_exact_after_return_path_and_received(self):
        maild = started(self)
        with smtp_client(maild) as smtp:
            smtp.ehlo()
            self.assertEqual(smtp.mail("sender@remote.test"), (250, b"2.1.0 OK"))
            self.assertEqual(smtp.rcpt("alice@example.test"), (250, b"2.1.5 OK"))
            code, text = smtp.data(MESSAGE)
        # The reply names the SHA-256 of the content maild stored.
        digest = hashlib.sha256(MESSAGE).hexdigest()[:16].encode()
        self.assertEqual((code, text), (250, b"2.0.0 OK stored as " + digest))

        row, trace, content = self.only_message(maild, "alice@example.test")
        self.assertEqual(content, MESSAGE)
        self.assertEqual((row["from"], row["subject"], row["status"]),
                         ("sender@remote.test", "byte for byte", "new"))
        self.assertEqual(row["size"], len(trace) + len(MESSAGE))
        return_path, received = self.received(trace)
        self.assertEqual(return_path, "Return-Path: <sender@remote.test>")
        self.assertEqual((received["helo"], received["ip"], received["protocol"], received["recipient"]),
                         ("client.test", "127.0.0.1", "ESMTP", "alice@example.test"))
        self.assertIsNone(received["tls_version"])
        self.assertIsNone(received["user"])
        # The id in Received is the session id on maild's log lines.
        self.assertRegex(maild.log(), r" info %s stored %s from <sender@remote\.test>: %d octets, 1 mailbox,"
                         % (received["id"], digest.decode(), len(MESSAGE)))

    def test_250_only_after_the_commit_the_message_is_there_when_the_client_hears_it(self):
        maild = started(self)
        with smtp_client(maild) as smtp:
            for n in range(3):
                smtp.sendmail("sender@remote.test", ["alice@example.test"], b"Subject: %d\r\n\r\nbody\r\n" % n)
                # No waiting, no polling: 250 means it is durable and visible.
                self.assertEqual(len(deliveries(maild)), n + 1)

    def test_an_ipv6_client_is_named_with_the_ipv6_tag(self):
        maild = Maild(self)
        port = maild.ports["smtp"]  # the same port on ::1 as on 127.0.0.1 (where wait_ready() looks)
        maild.write_config("[smtp]\nlisten = 127.0.0.1:%d, [::1]:%d" % (port, port))
        provision(maild, ["alice@example.test"], password=PASSWORD)
        maild.start()
        with smtplib.SMTP("::1", port, local_hostname="client.test", timeout=IO_TIMEOUT) as smtp:
            smtp.sendmail("sender@remote.test", ["alice@example.test"], MESSAGE)
        _, trace, content = self.only_message(maild)
        self.assertEqual(content, MESSAGE)
        self.assertEqual(self.received(trace)[1]["ip"], "IPv6:::1")

    def test_two_recipients_one_stored_content_and_no_for_clause(self):
        maild = started(self)
        with smtp_client(maild) as smtp:
            refused = smtp.sendmail("<>", ["alice@example.test", "bob@example.test"], MESSAGE)
        self.assertEqual(refused, {})
        rows = deliveries(maild)
        self.assertEqual(sorted(r["mailbox"] for r in rows), ["alice@example.test", "bob@example.test"])
        self.assertEqual({r["from"] for r in rows}, {"<>"})
        for row in rows:
            trace, content = split_trace(export_message(maild, row["id"]))
            self.assertEqual(content, MESSAGE)
            return_path, received = self.received(trace)
            self.assertEqual(return_path, "Return-Path: <>")
            self.assertIsNone(received["recipient"])  # it would tell one recipient about the other
        status = dict(line.split(None, 1) for line in mailctl_ok(maild, "db", "status").splitlines()
                      if line.startswith(("messages", "deliveries")))
        self.assertEqual((status["messages"].strip(), status["deliveries"].strip()), ("1", "2"))

    def test_8bitmime_content_is_kept(self):
        maild = started(self)
        message = (b"Subject: caf\xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                   b"\xc3\xa9t\xc3\xa9 \xe2\x82\xac\r\n")
        with smtp_client(maild) as smtp:
            smtp.sendmail("sender@remote.test", ["alice@example.test"], message, mail_options=["BODY=8BITMIME"])
        self.assertEqual(self.only_message(maild)[2], message)

    def test_pipelined_group_gets_its_replies_in_order(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<nobody@example.test>\r\n"
               "RCPT TO:<alice@example.test>\r\nDATA\r\n")
        d.expect("250 2.1.0")
        d.expect("550 5.1.1 <nobody@example.test>: mailbox unavailable")
        d.expect("250 2.1.5")
        d.expect("354 ")
        d.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        d.expect("250 2.0.0 OK stored as ")
        d.expect("250 2.0.0")
        d.expect("221 2.0.0")
        self.assertTrue(d.closed())
        self.assertEqual(self.only_message(maild)[2], b"Subject: pipelined\r\n\r\nbody\r\n")


class Commands(SmtpCase):
    def test_ehlo_announces_every_extension_and_helo_none(self):
        maild = started(self, "[smtp]\nmax_message_size = 20M")
        d = maild.dialogue()
        d.expect("220 mx.example.test ESMTP maild")
        self.assertEqual(ehlo(d), [
            "250-mx.example.test greets client.test",
            "250-PIPELINING",
            "250-SIZE 20971520",
            "250-8BITMIME",
            "250-ENHANCEDSTATUSCODES",
            "250-STARTTLS",
            "250-SMTPUTF8",
            "250-CHUNKING",
            "250-DSN",
            "250-SOURCE",
            "250 HELP",
        ])
        d.send("HELO client.test\r\n")
        self.assertEqual(d.reply(), ["250 mx.example.test"])
        # After HELO there are no extensions: MAIL parameters are refused.
        d.send("MAIL FROM:<s@remote.test> SIZE=10\r\n")
        d.expect("555 5.5.4 MAIL parameters need EHLO")
        d.send("MAIL FROM:<s@remote.test>\r\n")
        d.expect("250 2.1.0")

    def test_under_tls_auth_is_offered_and_starttls_is_not(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        starttls(maild, d)
        lines = ehlo(d)
        self.assertIn("250-AUTH PLAIN LOGIN", lines)
        self.assertNotIn("250-STARTTLS", lines)
        d.send("STARTTLS\r\n")
        d.expect("503 5.5.1 TLS already active")

    def test_commands_out_of_order_get_503(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        d.send("MAIL FROM:<s@remote.test>\r\n")
        d.expect("503 5.5.1 send HELO or EHLO first")
        ehlo(d)
        for command, reply in (("RCPT TO:<alice@example.test>", "503 5.5.1 need MAIL before RCPT"),
                               ("DATA", "503 5.5.1 need MAIL before DATA"),
                               ("MAIL FROM:<s@remote.test>", "250 2.1.0"),
                               ("MAIL FROM:<s@remote.test>", "503 5.5.1 nested MAIL command"),
                               ("DATA", "554 5.5.1 no valid recipients"),
                               ("RSET", "250 2.0.0"),
                               ("RCPT TO:<alice@example.test>", "503 5.5.1 need MAIL before RCPT")):
            d.send(command + "\r\n")
            d.expect(reply)

    def test_vrfy_252_expn_502_help_214_noop_rset(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("VRFY alice@example.test\r\n")
        d.expect("252 2.5.0 cannot VRFY user")
        d.send("VRFY nobody@example.test\r\n")  # the same answer: VRFY enumerates nothing
        d.expect("252 2.5.0 cannot VRFY user")
        d.send("EXPN staff\r\n")
        d.expect("502 5.5.1")
        d.send("HELP\r\n")
        d.expect("214 2.0.0 maild commands:")
        d.send("QUIT\r\n")
        d.expect("221 2.0.0 mx.example.test closing connection")
        self.assertTrue(d.closed())

    def test_client_talking_before_the_greeting_gets_554_and_is_closed(self):
        maild = started(self)
        # maild looks for early bytes when the session starts; should the client
        # be descheduled between connect() and send(), its bytes come too late
        # to count (a 220 greeting): that attempt says nothing and is repeated.
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", maild.ports["smtp"]), timeout=IO_TIMEOUT) as sock:
                sock.sendall(b"EHLO hasty.test\r\nMAIL FROM:<spam@bot.test>\r\n")
                d = Dialogue(sock)
                lines = d.reply()
                if lines[0].startswith("220 "):
                    continue
                self.assertEqual(lines, ["554 5.5.1 mx.example.test protocol error: you spoke before my greeting"])
                self.assertTrue(d.closed())
                break
        else:
            self.fail("maild greeted a client that spoke first, 5 times")
        maild.wait_for_log("client spoke before the greeting; refused")


class Tls(SmtpCase):
    def test_starttls_with_smtplib_and_received_names_version_and_cipher(self):
        maild = started(self)
        with smtp_client(maild) as smtp:
            smtp.starttls(context=tls_context(maild))
            version, cipher = smtp.sock.version(), smtp.sock.cipher()[0]
            smtp.sendmail("sender@remote.test", ["alice@example.test"], MESSAGE)
        _, trace, content = self.only_message(maild)
        self.assertEqual(content, MESSAGE)
        _, received = self.received(trace)
        self.assertEqual((received["protocol"], received["tls_version"], received["cipher"]),
                         ("ESMTPS", version, cipher))
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    def test_starttls_forgets_the_session_before_it(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("MAIL FROM:<s@remote.test>\r\n")
        d.expect("250 ")
        starttls(maild, d)
        d.send("RCPT TO:<alice@example.test>\r\n")  # the transaction before TLS is gone
        d.expect("503 5.5.1 need MAIL before RCPT")
        d.send("MAIL FROM:<s@remote.test>\r\n")  # and so is the EHLO
        d.expect("503 5.5.1 send HELO or EHLO first")


class Auth(SmtpCase):
    def test_submission_requires_starttls_then_auth_before_mail(self):
        maild = started(self)
        d = maild.dialogue("submission")
        d.expect("220 ")
        lines = ehlo(d)
        self.assertIn("250-STARTTLS", lines)
        self.assertNotIn("250-AUTH PLAIN LOGIN", lines)
        for command in ("MAIL FROM:<alice@example.test>", "AUTH PLAIN " + plain("alice@example.test"),
                        "VRFY alice"):
            d.send(command + "\r\n")
            d.expect("530 5.7.0 must issue a STARTTLS command first")
        starttls(maild, d)
        self.assertIn("250-AUTH PLAIN LOGIN", ehlo(d))
        d.send("MAIL FROM:<alice@example.test>\r\n")
        d.expect("530 5.7.0 authentication required")
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test"))
        d.expect("235 2.7.0 authentication successful")
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test"))
        d.expect("503 5.5.1 already authenticated")
        d.send("MAIL FROM:<alice@example.test>\r\n")
        d.expect("250 2.1.0")

    def test_submissions_is_implicit_tls_and_requires_auth_before_mail(self):
        maild = started(self)
        d = maild.dialogue("submissions", tls=True)
        d.expect("220 mx.example.test ESMTP maild")
        lines = ehlo(d)
        self.assertIn("250-AUTH PLAIN LOGIN", lines)
        self.assertNotIn("250-STARTTLS", lines)
        d.send("MAIL FROM:<alice@example.test>\r\n")
        d.expect("530 5.7.0 authentication required")

    def test_auth_plain_and_login_with_smtplib_on_both_submission_ports(self):
        maild = started(self)
        cases = [("submission", "PLAIN", True), ("submission", "LOGIN", True),
                 ("submissions", "PLAIN", False), ("submissions", "LOGIN", False)]
        for n, (service, mechanism, initial_response) in enumerate(cases):
            with self.subTest(service=service, mechanism=mechanism, initial_response=initial_response):
                with smtp_client(maild, service) as smtp:
                    if service == "submission":
                        smtp.starttls(context=tls_context(maild))
                    smtp.ehlo()
                    smtp.user, smtp.password = "alice@example.test", PASSWORD
                    authobject = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
                    code, _ = smtp.auth(mechanism, authobject, initial_response_ok=initial_response)
                    self.assertEqual(code, 235)
                    smtp.sendmail("alice@example.test", ["bob@example.test"], b"Subject: %d\r\n\r\nhi\r\n" % n)
        rows = deliveries(maild, "bob@example.test")
        self.assertEqual(sorted(r["subject"] for r in rows), ["0", "1", "2", "3"])
        for row in rows:
            _, received = self.received(split_trace(export_message(maild, row["id"]))[0])
            self.assertEqual(received["protocol"], "ESMTPSA")
            self.assertIsNone(received["user"])  # not named unless received_auth_user = true
            self.assertIsNotNone(received["tls_version"])
        self.assertNotIn(PASSWORD, maild.log())
        self.assertNotIn(plain("alice@example.test"), maild.log())

    def test_received_names_the_user_with_received_auth_user(self):
        maild = started(self, "[smtp]\nreceived_auth_user = true")
        with smtp_client(maild, "submissions") as smtp:
            smtp.login("alice@example.test", PASSWORD)
            smtp.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
        _, trace, content = self.only_message(maild)
        self.assertEqual(content, MESSAGE)
        _, received = self.received(trace)
        self.assertEqual((received["protocol"], received["user"]), ("ESMTPSA", "alice@example.test"))

    def test_auth_is_not_offered_before_tls_on_port_25(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        self.assertFalse([l for l in ehlo(d) if "AUTH" in l])
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test"))
        d.expect("538 5.7.11 encryption required for requested authentication mechanism")
        starttls(maild, d)
        ehlo(d)
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test"))
        d.expect("235 2.7.0")

    def test_auth_in_clear_when_tls_is_not_required_for_it(self):
        maild = started(self, "[smtp]\nrequire_tls_for_auth = false")
        with smtp_client(maild) as smtp:
            smtp.ehlo()
            self.assertEqual(smtp.esmtp_features["auth"], " PLAIN LOGIN")
            self.assertEqual(smtp.login("alice@example.test", PASSWORD)[0], 235)

    def test_wrong_password_535_and_the_throttle_closes_with_421(self):
        maild = started(self, "[smtp]\nmax_auth_failures = 2")
        d = maild.dialogue("submissions", tls=True)
        d.expect("220 ")
        ehlo(d)
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test", "wrong"))
        d.expect("535 5.7.8 authentication credentials invalid")
        d.send("AUTH LOGIN\r\n")
        d.expect("334 VXNlcm5hbWU6")
        d.send(base64.b64encode(b"nobody@example.test").decode() + "\r\n")  # unknown user: the same 535
        d.expect("334 UGFzc3dvcmQ6")
        d.send(base64.b64encode(b"whatever").decode() + "\r\n")
        d.expect("535 5.7.8 authentication credentials invalid")
        d.send("AUTH PLAIN %s\r\n" % plain("alice@example.test"))  # right, but too late
        d.expect("421 4.7.0 mx.example.test too many failed authentications")
        self.assertTrue(d.closed())
        # The count is per client address, not per session.
        with self.assertRaises(smtplib.SMTPException):
            with smtp_client(maild, "submissions") as smtp:
                smtp.login("alice@example.test", PASSWORD)
        self.assertIn("AUTH refused: too many failures from 127.0.0.1", maild.log())

    def test_wrong_password_with_smtplib(self):
        maild = started(self)
        with smtp_client(maild, "submissions") as smtp:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as refused:
                smtp.login("alice@example.test", "not the password")
            self.assertEqual(refused.exception.smtp_code, 535)
            self.assertEqual(smtp.login("alice@example.test", PASSWORD)[0], 235)

    def test_authenticated_client_may_relay_and_the_message_is_queued(self):
        maild = started(self, "[smtp]\nrelay_networks = 10.0.0.0/8\n[dns]\nservers = 127.0.0.1:9")
        with smtp_client(maild, "submissions") as smtp:
            smtp.login("alice@example.test", PASSWORD)
            smtp.mail("alice@example.test")
            self.assertEqual(smtp.rcpt("carol@elsewhere.test"), (250, b"2.1.5 OK"))
            self.assertEqual(smtp.data(MESSAGE)[0], 250)
        self.assertEqual(queued_recipients(maild), ["carol@elsewhere.test"])


class Recipients(SmtpCase):
    def transaction(self, maild):
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("MAIL FROM:<sender@remote.test>\r\n")
        d.expect("250 2.1.0")
        return d

    def test_unknown_recipient_550_5_1_1_and_the_session_goes_on(self):
        maild = started(self)
        d = self.transaction(maild)
        d.send("RCPT TO:<nobody@example.test>\r\n")
        d.expect("550 5.1.1 <nobody@example.test>: mailbox unavailable")
        d.send("RCPT TO:<alice@EXAMPLE.test>\r\n")  # the domain in any case
        d.expect("250 2.1.5")
        d.send("DATA\r\n")
        d.expect("354 ")
        d.send("Subject: x\r\n\r\n.\r\n")
        d.expect("250 2.0.0")
        self.assertEqual(self.only_message(maild)[0]["mailbox"], "alice@example.test")

    def test_relay_denied_554_from_outside_relay_networks(self):
        maild = started(self, "[smtp]\nrelay_networks = 10.0.0.0/8")
        d = self.transaction(maild)
        d.send("RCPT TO:<carol@elsewhere.test>\r\n")
        d.expect("554 5.7.1 <carol@elsewhere.test>: relay access denied")
        d.send("RCPT TO:<alice@example.test>\r\n")
        d.expect("250 2.1.5")

    def test_relay_from_relay_networks_is_queued_in_the_same_commit(self):
        # The default relay_networks hold 127.0.0.0/8; DNS points nowhere, so it stays queued.
        maild = started(self, "[dns]\nservers = 127.0.0.1:9")
        d = self.transaction(maild)
        d.send("RCPT TO:<carol@elsewhere.test>\r\n")
        d.expect("250 2.1.5")
        d.send("RCPT TO:<alice@example.test>\r\n")
        d.expect("250 2.1.5")
        d.send("DATA\r\n")
        d.expect("354 ")
        d.send("Subject: both\r\n\r\n.\r\n")
        d.expect("250 2.0.0")
        self.assertEqual(self.only_message(maild)[0]["mailbox"], "alice@example.test")
        self.assertEqual(queued_recipients(maild), ["carol@elsewhere.test"])

    def test_aliases_deliver_once_per_mailbox(self):
        maild = started(self, users=("alice@example.test", "bob@example.test", "carol@example.test"))
        mailctl_ok(maild, "alias", "add", "team@example.test", "alice@example.test")
        mailctl_ok(maild, "alias", "add", "team@example.test", "bob@example.test")
        mailctl_ok(maild, "alias", "add", "boss@example.test", "alice@example.test")
        with smtp_client(maild) as smtp:
            refused = smtp.sendmail("sender@remote.test",
                                    ["team@example.test", "boss@example.test", "alice@example.test"], MESSAGE)
        self.assertEqual(refused, {})
        rows = deliveries(maild)
        self.assertEqual(sorted(r["mailbox"] for r in rows), ["alice@example.test", "bob@example.test"])
        for row in rows:
            self.assertEqual(split_trace(export_message(maild, row["id"]))[1], MESSAGE)

    def test_catch_all_takes_unknown_addresses_and_mailboxes_win(self):
        maild = started(self)
        mailctl_ok(maild, "alias", "add", "@example.test", "alice@example.test")
        with smtp_client(maild) as smtp:
            smtp.sendmail("sender@remote.test", ["anything@example.test"], b"Subject: one\r\n\r\n1\r\n")
            smtp.sendmail("sender@remote.test", ["bob@example.test"], b"Subject: two\r\n\r\n2\r\n")
        self.assertEqual(sorted((r["mailbox"], r["subject"]) for r in deliveries(maild)),
                         [("alice@example.test", "one"), ("bob@example.test", "two")])

    def test_forwarding_alias_queues_its_outside_target(self):
        maild = started(self, "[dns]\nservers = 127.0.0.1:9")
        mailctl_ok(maild, "alias", "add", "fwd@example.test", "carol@elsewhere.test")
        d = self.transaction(maild)
        d.send("RCPT TO:<fwd@example.test>\r\n")
        d.expect("250 2.1.5")
        d.send("DATA\r\n")
        d.expect("354 ")
        d.send("Subject: forwarded\r\n\r\n.\r\n")
        d.expect("250 2.0.0")
        self.assertEqual(deliveries(maild), [])
        self.assertEqual(queued_recipients(maild), ["carol@elsewhere.test"])

    def test_max_recipients_at_and_past_the_edge(self):
        users = ["u%d@example.test" % n for n in range(5)]
        maild = started(self, "[smtp]\nmax_recipients = 3", users=users)
        d = self.transaction(maild)
        for user in users[:3]:
            d.send("RCPT TO:<%s>\r\n" % user)
            d.expect("250 2.1.5")
        for user in users[3:]:
            d.send("RCPT TO:<%s>\r\n" % user)
            d.expect("452 4.5.3 too many recipients")
        d.send("DATA\r\n")
        d.expect("354 ")
        d.send("Subject: three\r\n\r\n.\r\n")
        d.expect("250 2.0.0")
        self.assertEqual(sorted(r["mailbox"] for r in deliveries(maild)), users[:3])


    def test_postmaster_of_every_local_domain_is_accepted(self):
        # RFC 5321 4.5.1: other.test has no postmaster of its own; [smtp] postmaster takes it.
        maild = Maild(self, "[smtp]\npostmaster = bob@example.test")
        provision(maild, ("alice@example.test", "bob@example.test"),
                  domains=("example.test", "other.test"), password=PASSWORD)
        maild.start()
        mailctl_ok(maild, "alias", "add", "postmaster@example.test", "alice@example.test")
        with smtp_client(maild) as smtp:
            refused = smtp.sendmail("sender@remote.test", ["PostMaster@other.test"],
                                    b"Subject: to other\r\n\r\n1\r\n")
            self.assertEqual(refused, {})
            refused = smtp.sendmail("sender@remote.test", ["POSTMASTER@example.test"],
                                    b"Subject: to its own\r\n\r\n2\r\n")
            self.assertEqual(refused, {})
        self.assertEqual(sorted((r["mailbox"], r["subject"]) for r in deliveries(maild)),
                         [("alice@example.test", "to its own"), ("bob@example.test", "to other")])

    def test_postmaster_with_swaks(self):
        # Without [smtp] postmaster: where the bare <postmaster> goes (postmaster@example.test).
        maild = Maild(self)
        provision(maild, ("alice@example.test",), domains=("example.test", "other.test"),
                  password=PASSWORD)
        maild.start()
        mailctl_ok(maild, "alias", "add", "postmaster@example.test", "alice@example.test")
        result = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(maild.ports["smtp"]),
             "--from", "sender@remote.test", "--to", "postmaster@other.test",
             "--helo", "client.test", "--header", "Subject: swaks postmaster",
             "--timeout", "10"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("<-  250 2.1.5", result.stdout)
        self.assertEqual([(r["mailbox"], r["subject"]) for r in deliveries(maild)],
                         [("alice@example.test", "swaks postmaster")])

class Limits(SmtpCase):
    def test_size_is_announced_and_mail_size_over_it_is_refused(self):
        maild = started(self, "[smtp]\nmax_message_size = 2K")
        d = maild.dialogue()
        d.expect("220 ")
        self.assertIn("250-SIZE 2048", ehlo(d))
        d.send("MAIL FROM:<s@remote.test> SIZE=2049\r\n")
        d.expect("552 5.3.4 message size exceeds fixed maximum message size")
        d.send("MAIL FROM:<s@remote.test> SIZE=2048\r\n")
        d.expect("250 2.1.0")

    def test_data_over_the_size_is_refused_552_and_the_session_stays_usable(self):
        maild = started(self, "[smtp]\nmax_message_size = 2K")
        with smtp_client(maild) as smtp:
            smtp.ehlo()
            smtp.mail("s@remote.test")  # without SIZE=: smtplib's sendmail() would send it
            smtp.rcpt("alice@example.test")
            self.assertEqual(smtp.data(content_of_size(2049, "too big")),
                             (552, b"5.3.4 message size exceeds fixed maximum message size"))
            self.assertEqual(smtp.noop()[0], 250)
            smtp.sendmail("s@remote.test", ["alice@example.test"], content_of_size(2048, "just fits"))
        row, _, content = self.only_message(maild)
        self.assertEqual(content, content_of_size(2048, "just fits"))

    def test_bdat_over_the_size_is_refused_552(self):
        maild = started(self, "[smtp]\nmax_message_size = 2K")
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
        d.expect("250 ")
        d.expect("250 ")
        big = content_of_size(2049)
        d.send(b"BDAT 1000\r\n" + big[:1000])
        d.expect("250 2.0.0 1000 octets received")
        d.send(b"BDAT %d LAST\r\n" % (len(big) - 1000) + big[1000:])
        d.expect("552 5.3.4")
        d.send("NOOP\r\n")
        d.expect("250 2.0.0")
        self.assertEqual(deliveries(maild), [])

    def test_nul_in_content_is_refused_550_5_6_0(self):
        maild = started(self)
        with smtp_client(maild) as smtp:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("s@remote.test", ["alice@example.test"], b"Subject: nul\r\n\r\nbefore\0after\r\n")
            self.assertEqual((refused.exception.smtp_code, refused.exception.smtp_error),
                             (550, b"5.6.0 message contains a NUL character"))
            self.assertEqual(smtp.noop()[0], 250)
        self.assertEqual(deliveries(maild), [])

    def test_a_line_of_1000_octets_passes_and_1001_is_refused(self):
        maild = started(self)
        fits = b"Subject: 1000\r\n\r\n" + b"a" * 998 + b"\r\n"
        too_long = b"Subject: 1001\r\n\r\n" + b"a" * 999 + b"\r\n"
        with smtp_client(maild) as smtp:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("s@remote.test", ["alice@example.test"], too_long)
            self.assertEqual((refused.exception.smtp_code, refused.exception.smtp_error),
                             (550, b"5.6.0 message has a line longer than 1000 octets"))
            smtp.sendmail("s@remote.test", ["alice@example.test"], fits)
        self.assertEqual(self.only_message(maild)[2], fits)


    def test_max_hops_received_fields_pass_and_one_more_is_554_5_4_6(self):
        maild = started(self, "[smtp]\nmax_hops = 5")
        hops = b"".join(b"Received: from hop%d\r\n\tby relay.test; Sat, 22 Nov 2025 10:00:00 +0000\r\n"
                        % n for n in range(5))
        # The Subject first: the test reads maild's own trace as the leading Received fields.
        fits = b"Subject: five hops\r\n" + hops + b"\r\nReceived: in the body\r\n"
        loops = b"Subject: six hops\r\n" + hops + b"received: from hop5\r\n\r\nbody\r\n"
        with smtp_client(maild) as smtp:
            with self.assertRaises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("s@remote.test", ["alice@example.test"], loops)
            self.assertEqual((refused.exception.smtp_code, refused.exception.smtp_error),
                             (554, b"5.4.6 too many hops (6 Received fields): mail loop?"))
            self.assertEqual(smtp.noop()[0], 250)
            smtp.sendmail("s@remote.test", ["alice@example.test"], fits)
        self.assertEqual(self.only_message(maild)[2], fits)

    def test_forged_authentication_results_are_removed_and_the_body_kept(self):
        # RFC 8601 5: only maild speaks as mx.example.test; other servers' results stay.
        maild = started(self)
        forged = (b"Authentication-Results: mx.example.test; source-get=pass smtp.mailfrom=bank.test\r\n"
                  b"AUTHENTICATION-RESULTS: (really) MX.Example.Test. 1;\r\n\tsource-get=pass\r\n")
        kept = (b"Authentication-Results: relay.test; spf=pass smtp.mailfrom=remote.test\r\n"
                b"Subject: forged\r\n\r\n"
                b"Authentication-Results: mx.example.test; source-get=pass\r\n" + TRICKY_BODY)
        with smtp_client(maild) as smtp:
            self.assertEqual(smtp.sendmail("s@remote.test", ["alice@example.test"], forged + kept), {})
        _, trace, content = self.only_message(maild)
        self.assertEqual(content, kept)
        self.assertNotIn(b"Authentication-Results", trace)
        self.assertIn("removed 2 Authentication-Results fields claiming to be ours", maild.log())

class Chunking(SmtpCase):
    def test_bdat_in_several_chunks_with_last_is_stored_as_sent(self):
        maild = started(self)
        # BDAT content is not dot-stuffed: ".\r\n" is an ordinary line; chunks
        # may end anywhere, even between CR and LF.
        content = MESSAGE + b".\r\nafter a dot line\r\n"
        cuts = [0, 7, MESSAGE.index(b"\r\n") + 1, 600, len(content) - 3, len(content)]
        with smtp_client(maild) as smtp:
            smtp.ehlo()
            self.assertTrue(smtp.has_extn("chunking"))
            smtp.mail("sender@remote.test")
            smtp.rcpt("alice@example.test")
            for start, end in zip(cuts, cuts[1:-1]):
                smtp.send(b"BDAT %d\r\n" % (end - start) + content[start:end])
                self.assertEqual(smtp.getreply(), (250, b"2.0.0 %d octets received" % (end - start)))
            smtp.send(b"BDAT %d LAST\r\n" % (cuts[-1] - cuts[-2]) + content[cuts[-2]:])
            code, text = smtp.getreply()
            self.assertEqual(code, 250, text)
            self.assertTrue(text.startswith(b"2.0.0 OK stored as "), text)
            smtp.send(b"BDAT 0 LAST\r\n")  # outside a transaction: refused, and nothing to read
            self.assertEqual(smtp.getreply(), (503, b"5.5.1 need MAIL before BDAT"))
        self.assertEqual(self.only_message(maild)[2], content)

    def test_pipelined_bdat_and_an_empty_last_chunk(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send(b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
               b"BDAT 15\r\nSubject: bdat\r\nBDAT 6\r\n\r\nbodyBDAT 0 LAST\r\nNOOP\r\n")
        for reply in ("250 2.1.0", "250 2.1.5", "250 2.0.0 15 octets", "250 2.0.0 6 octets",
                      "250 2.0.0 OK stored", "250 2.0.0 OK"):
            d.expect(reply)
        # The open last line gets its CRLF.
        self.assertEqual(self.only_message(maild)[2], b"Subject: bdat\r\n\r\nbody\r\n")

    def test_refused_bdat_chunk_is_read_and_not_taken_as_commands(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send(b"BDAT 24\r\nRSET\r\nQUIT\r\nNOOP\r\nRSET\r\nNOOP\r\n")
        d.expect("503 5.5.1 need MAIL before BDAT")
        d.expect("250 2.0.0 OK")  # the NOOP after the chunk
        d.send("MAIL FROM:<s@remote.test>\r\nDATA\r\n")
        d.expect("250 ")
        d.expect("554 5.5.1 no valid recipients")
        d.send("BDAT 3\r\nabc")  # a transaction without recipients
        d.expect("554 5.5.1 no valid recipients")
        d.send("RCPT TO:<bob@example.test>\r\nBDAT 3\r\nabcDATA\r\n")
        d.expect("250 2.1.5")
        d.expect("250 2.0.0 3 octets")
        d.expect("503 5.5.1 DATA after BDAT")


class Utf8(SmtpCase):
    def test_a_utf8_address_needs_the_smtputf8_parameter(self):
        maild = started(self)
        mailctl_ok(maild, "alias", "add", "@example.test", "alice@example.test")
        d = maild.dialogue()
        d.expect("220 ")
        ehlo(d)
        d.send("MAIL FROM:<j\u00f6rg@b\u00fccher.test>\r\n")
        d.expect("553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter")
        d.send("MAIL FROM:<sender@remote.test>\r\n")
        d.expect("250 ")
        d.send("RCPT TO:<j\u00f6s\u00e9@example.test>\r\n")
        d.expect("553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter")
        d.send("RSET\r\nMAIL FROM:<j\u00f6rg@b\u00fccher.test> SMTPUTF8\r\n"
               "RCPT TO:<j\u00f6s\u00e9@example.test>\r\n")
        d.expect("250 2.0.0")
        d.expect("250 2.1.0")
        d.expect("250 2.1.5")

    def test_smtputf8_with_smtplib(self):
        maild = started(self)
        mailctl_ok(maild, "alias", "add", "@example.test", "alice@example.test")
        message = ("From: J\u00f6rg <j\u00f6rg@b\u00fccher.test>\r\nTo: j\u00f6s\u00e9@example.test\r\n"
                   "Subject: gr\u00fc\u00dfe\r\n\r\nHall\u00f6\r\n").encode()
        with smtp_client(maild) as smtp:
            smtp.ehlo()
            self.assertTrue(smtp.has_extn("smtputf8"))
            refused = smtp.sendmail("j\u00f6rg@b\u00fccher.test", ["j\u00f6s\u00e9@example.test"], message,
                                    mail_options=["SMTPUTF8"])
        self.assertEqual(refused, {})
        row, trace, content = self.only_message(maild, "alice@example.test")
        self.assertEqual(content, message)
        self.assertEqual(row["from"], "j\u00f6rg@b\u00fccher.test")
        return_path, received = self.received(trace)
        self.assertEqual(return_path, "Return-Path: <j\u00f6rg@b\u00fccher.test>")
        self.assertEqual((received["protocol"], received["recipient"]),
                         ("UTF8SMTP", "j\u00f6s\u00e9@example.test"))


if __name__ == "__main__":
    unittest.main()
