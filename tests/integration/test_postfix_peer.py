"""The Postfix peers themselves, without maild: a private Postfix relays and
delivers, rejects show in its log, smtp-source and swaks reach smtp-sink.
If these fail, a failing maild interoperability test says nothing about maild."""

import os
import smtplib
import socket
import unittest

from maild_harness import IO_TIMEOUT
from postfix_peer import (PostfixPeer, SmtpSink, missing_tools, run_smtp_source,
                          strip_trace_headers, swaks)

MESSAGE = (
    b"From: Sender <sender@source.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: through two private Postfix instances\r\n"
    b"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
    b"Message-ID: <peer-test-1@source.test>\r\n"
    b"\r\n"
    b"First line.\r\n"
    b".A line that starts with a dot (stuffed on the wire).\r\n"
    b"..Two dots.\r\n"
    b"\tTabbed, and trailing spaces   \r\n"
    b"\r\n"
    b"From the start of a line.\r\n"
    + b"x" * 900 + b"\r\n"
    b"Last line.\r\n"
)


def submit(port, sender, recipients, message):
    """Python's smtplib as the submitting client; returns the refused recipients."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=IO_TIMEOUT) as smtp:
        return smtp.sendmail(sender, recipients, message)


@unittest.skipIf(missing_tools(), missing_tools())
class PostfixPeerTest(unittest.TestCase):
    def test_relay_into_a_second_peers_maildir_keeps_the_message_byte_exact(self):
        inbox = PostfixPeer(self, hostname="inbox.test")
        inbox.receive_into_maildir("example.test", ["alice"])
        inbox.start()
        relay = PostfixPeer(self, hostname="peer.test")
        relay.relay_to("example.test", "127.0.0.1", inbox.port)
        relay.start()

        self.assertEqual(submit(relay.port, "sender@source.test", ["alice@example.test"], MESSAGE), {})

        relay.wait_for_log(r"to=<alice@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*status=sent"
                           % inbox.port)
        [delivered] = inbox.wait_for_maildir("alice@example.test")
        self.assertTrue(delivered.startswith(b"Return-Path: <sender@source.test>\n"), delivered[:200])
        self.assertIn(b"X-Original-To: alice@example.test\n", delivered)
        self.assertIn(b"Delivered-To: alice@example.test\n", delivered)
        self.assertIn(b"by inbox.test (Postfix)", delivered)
        self.assertIn(b"by peer.test (Postfix)", delivered)
        self.assertEqual(strip_trace_headers(delivered), MESSAGE.replace(b"\r\n", b"\n"))
        relay.wait_queue_empty()
        inbox.wait_queue_empty()

    def test_relay_to_smtp_sink(self):
        sink = SmtpSink(self)
        peer = PostfixPeer(self)
        peer.start()
        peer.relay_to("example.test", "127.0.0.1", sink.port)  # after start: reloads

        submit(peer.port, "sender@source.test", ["bob@example.test"], MESSAGE)

        [captured] = sink.wait_for_messages(1)
        self.assertIn(b"X-Rcpt-Args: <bob@example.test>", captured)
        self.assertIn(b"X-Helo-Args: peer.test", captured)
        self.assertIn(b"Subject: through two private Postfix instances", captured)
        peer.wait_for_log(r"to=<bob@example\.test>.*status=sent")
        peer.wait_queue_empty()

    def test_outside_the_transport_map_nothing_is_relayed(self):
        peer = PostfixPeer(self)
        peer.start()

        with self.assertRaises(smtplib.SMTPRecipientsRefused) as refused:
            submit(peer.port, "sender@source.test", ["carol@elsewhere.test"], MESSAGE)

        [(code, text)] = refused.exception.recipients.values()
        self.assertEqual(code, 550)
        self.assertIn(b"no delivery outside the test transport map", text)
        peer.wait_for_log(r"reject: RCPT from localhost\[127\.0\.0\.1\]: 550 .*<carol@elsewhere\.test>")
        self.assertTrue(peer.queue_empty())

    def test_rejections_by_smtp_sink_bounce_or_defer_in_the_log(self):
        hard = SmtpSink(self, options=["-f", "RCPT"])
        soft = SmtpSink(self, options=["-r", "RCPT"])
        peer = PostfixPeer(self)
        peer.relay_to("hard.test", "127.0.0.1", hard.port)
        peer.relay_to("soft.test", "127.0.0.1", soft.port)
        peer.start()

        submit(peer.port, "sender@source.test", ["dave@hard.test", "erin@soft.test"], MESSAGE)

        peer.wait_for_log(r"to=<dave@hard\.test>.*status=bounced .*said: 500 5\.3\.0 ")
        peer.wait_for_log(r"to=<erin@soft\.test>.*status=deferred .*said: 450 4\.3\.0 ")
        [queued] = [m for m in peer.queue() if m["sender"] == "sender@source.test"]
        self.assertEqual(queued["queue_name"], "deferred")
        self.assertEqual([r["address"] for r in queued["recipients"]], ["erin@soft.test"])
        self.assertEqual(hard.messages() + soft.messages(), [])

    def test_stop_ends_the_master_and_frees_the_port(self):
        peer = PostfixPeer(self)
        peer.start()
        self.assertTrue(peer.running())

        peer.stop()

        self.assertFalse(peer.running())
        self.assertEqual(peer.instance_pids(), [])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", peer.port), timeout=1.0).close()

    def test_smtp_source_delivers_every_message_to_smtp_sink(self):
        sink = SmtpSink(self)

        result, elapsed = run_smtp_source("127.0.0.1", sink.port, messages=40, sessions=4, size=2000)

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(len(sink.wait_for_messages(40)), 40)
        self.assertLess(elapsed, 30.0)

    def test_smtp_source_fails_when_smtp_sink_rejects(self):
        sink = SmtpSink(self, options=["-f", "MAIL"])

        result, _ = run_smtp_source("127.0.0.1", sink.port, messages=1)

        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(sink.messages(), [])

    def test_swaks_to_smtp_sink(self):
        sink = SmtpSink(self)

        result = swaks("--server", "127.0.0.1:%d" % sink.port, "--helo", "swaks.test",
                       "--from", "sender@source.test", "--to", "frank@example.test",
                       "--header", "Subject: from swaks", "--body", "Hello from swaks.")

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("<-  250", result.stdout)
        [captured] = sink.wait_for_messages(1)
        self.assertIn(b"Subject: from swaks", captured)
        self.assertIn(b"Hello from swaks.", captured)

    def test_swaks_reports_a_rejected_recipient(self):
        sink = SmtpSink(self, options=["-f", "RCPT"])

        result = swaks("--server", "127.0.0.1:%d" % sink.port, "--from", "sender@source.test",
                       "--to", "grace@example.test")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("<** 500", result.stdout)


if __name__ == "__main__":
    unittest.main()
