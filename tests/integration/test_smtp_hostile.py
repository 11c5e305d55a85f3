"""maild's SMTP receiver under hostile input: SMTP smuggling with every
fake end-of-data sequence, command injection before STARTTLS, floods past
the line limits, and many concurrent sessions, each message checked to be
stored once and byte-exact."""

import base64
import collections
import hashlib
import os
import smtplib
import socket
import ssl
import threading
import time
import unittest

from maild_harness import (IO_TIMEOUT, Dialogue, Maild, deliveries, export_message, provision,
                           split_trace)

# A fake end of data, then what a smuggler wants read as a second transaction.
SMUGGLED = (b"MAIL FROM:<smuggler@evil.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled body\r\n")

# Each fake terminator and the content maild stores with bare_newline =
# normalize: a bare CR or LF becomes CRLF but never starts a line where a
# "." could end the data. After a real CRLF, "." followed by anything but
# CR LF is a transparency dot (RFC 5321 4.5.2) and is removed.
FAKE_TERMINATORS = [
    (b"\n.\n", b"before\r\n.\r\n"),
    (b"\r.\r", b"before\r\n.\r\n"),
    (b"\r\n.\r", b"before\r\n\r\n"),
    (b"\n.\r\n", b"before\r\n.\r\n"),
    (b"\r.\r\n", b"before\r\n.\r\n"),
    (b"\r\n.\n", b"before\r\n\r\n"),
]


def head(fake_terminator):
    """A header naming the fake terminator: each session's content differs
    (the store keeps one delivery per mailbox and content)."""
    return b"Subject: smuggling %r\r\n\r\n" % fake_terminator


def smuggling_session(maild, fake_terminator):
    """One write after the greeting: a whole transaction whose content holds
    fake_terminator and a second transaction, then the real end and QUIT.
    Returns the replies' last lines (EHLO's folded into one)."""
    with socket.create_connection(("127.0.0.1", maild.ports["smtp"]), timeout=IO_TIMEOUT) as sock:
        d = Dialogue(sock)
        d.expect("220 ")
        d.send(b"EHLO client.test\r\n"
               b"MAIL FROM:<sender@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"DATA\r\n"
               + head(fake_terminator) + b"before" + fake_terminator + SMUGGLED + b".\r\n"
               b"QUIT\r\n")
        replies = []
        while True:
            lines = d.reply()
            if lines == [""]:
                return replies
            replies.append(lines[-1])


def started(test, config=""):
    maild = Maild(test, config)
    provision(maild, ["alice@example.test", "bob@example.test"])
    return maild.start()


class Smuggling(unittest.TestCase):
    def test_fake_terminators_end_nothing_and_bare_newlines_become_crlf(self):
        maild = started(self)
        for n, (fake, stored_start) in enumerate(FAKE_TERMINATORS):
            with self.subTest(fake_terminator=fake):
                replies = smuggling_session(maild, fake)
                self.assertEqual([r[:9] for r in replies],
                                 ["250 HELP", "250 2.1.0", "250 2.1.5", "354 end d", "250 2.0.0", "221 2.0.0"])
                self.assertIn("OK stored as", replies[4])
                rows = deliveries(maild)
                self.assertEqual(len(rows), n + 1, rows)  # one message per session, never two
                self.assertEqual((rows[0]["mailbox"], rows[0]["from"]),
                                 ("alice@example.test", "sender@remote.test"))
                _, content = split_trace(export_message(maild, rows[0]["id"]))
                self.assertEqual(content, head(fake) + stored_start + SMUGGLED)
        self.assertEqual(deliveries(maild, "bob@example.test"), [])
        self.assertNotIn("smuggler@evil.test>: ", maild.log())

    def test_with_bare_newline_reject_each_is_refused_550_5_5_2(self):
        maild = started(self, "[smtp]\nbare_newline = reject")
        for fake, _ in FAKE_TERMINATORS:
            with self.subTest(fake_terminator=fake):
                replies = smuggling_session(maild, fake)
                self.assertEqual(replies[3:], ["354 end data with <CR><LF>.<CR><LF>",
                                               "550 5.5.2 message contains a bare CR or LF",
                                               "221 2.0.0 mx.example.test closing connection"])
        self.assertEqual(deliveries(maild), [])

    def test_a_real_terminator_split_across_writes_still_ends_the_data(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        d.send("EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        for reply in ("250 ", "250 2.1.0", "250 2.1.5", "354 "):
            d.expect(reply)
        for piece in (b"Subject: split\r\n\r\nbody\r", b"\n", b".", b"\r", b"\nNOOP\r\n"):
            d.send(piece)
            time.sleep(0.05)  # separate reads on maild's side
        d.expect("250 2.0.0 OK stored")
        d.expect("250 2.0.0 OK")
        [row] = deliveries(maild)
        self.assertEqual(split_trace(export_message(maild, row["id"]))[1], b"Subject: split\r\n\r\nbody\r\n")


class StarttlsInjection(unittest.TestCase):
    """CVE-2011-0411: commands sent in clear together with STARTTLS must not
    be executed as if they had come under TLS."""

    def injected(self, service, injection):
        maild = started(self)
        d = maild.dialogue(service)
        d.expect("220 ")
        d.send("EHLO client.test\r\n")
        d.reply()
        d.send(b"STARTTLS\r\n" + injection)  # one write: maild reads both at once
        d.expect("220 2.0.0 ready to start TLS")
        self.assertEqual(d.buffer, b"")  # nothing answered in clear either
        context = ssl.create_default_context(cafile=maild.cert)
        d.sock = context.wrap_socket(d.sock, server_hostname="mx.example.test")
        d.send("EHLO client.test\r\n")
        lines = d.reply()
        # The first reply under TLS answers the client's EHLO, not the injection.
        self.assertEqual(lines[0], "250-mx.example.test greets client.test")
        self.assertEqual(lines[-1], "250 HELP")
        d.send("NOOP\r\n")
        self.assertEqual(d.reply(), ["250 2.0.0 OK"])
        d.sock.settimeout(0.5)
        with self.assertRaises((socket.timeout, TimeoutError, ssl.SSLError)):  # and no reply pending
            d.sock.recv(1)
        return maild, d

    def test_rset_after_starttls_in_the_same_write_is_not_answered(self):
        self.injected("smtp", b"RSET\r\n")

    def test_mail_after_starttls_in_the_same_write_is_forgotten(self):
        maild, d = self.injected("smtp", b"MAIL FROM:<x@y.test>\r\nRCPT TO:<alice@example.test>\r\n")
        d.sock.settimeout(IO_TIMEOUT)
        d.send("RCPT TO:<alice@example.test>\r\n")  # no transaction exists under TLS
        d.expect("503 5.5.1 need MAIL before RCPT")

    def test_auth_after_starttls_on_submission_is_forgotten(self):
        credentials = base64.b64encode(b"\0alice@example.test\0secret").decode()
        maild, d = self.injected("submission", ("AUTH PLAIN %s\r\n" % credentials).encode())
        d.sock.settimeout(IO_TIMEOUT)
        d.send("MAIL FROM:<alice@example.test>\r\n")
        d.expect("530 5.7.0 authentication required")


class Floods(unittest.TestCase):
    """Input far past every limit costs maild a bounded buffer and one refusal."""

    def test_a_megabyte_command_line_is_refused_once_and_the_session_goes_on(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        d.send(b"NOOP " + b"x" * (1 << 20) + b"\r\nNOOP\r\n")
        d.expect("500 5.5.2 line too long")
        d.expect("250 2.0.0")

    def test_a_megabyte_content_line_is_refused_550_5_6_0_and_the_session_goes_on(self):
        maild = started(self)
        d = maild.dialogue()
        d.expect("220 ")
        d.send("EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        for reply in ("250 ", "250 2.1.0", "250 2.1.5", "354 "):
            d.expect(reply)
        d.send(b"Subject: flood\r\n\r\n" + b"y" * (1 << 20) + b"\r\n.\r\nNOOP\r\n")
        d.expect("550 5.6.0 message has a line longer than 1000 octets")
        d.expect("250 2.0.0")
        self.assertEqual(deliveries(maild), [])


class SlowClients(unittest.TestCase):
    """Slowloris: clients that trickle a byte at a time hold no place past the timeout."""

    PLACES = 10

    def test_tricklers_are_cut_at_the_timeout_and_a_legitimate_client_is_served(self):
        maild = Maild(self, "[server]\nmax_connections = %d\nmax_connections_per_ip = %d\n"
                            "[smtp]\ncommand_timeout = 2s\n" % (self.PLACES, self.PLACES))
        provision(maild, ["bob@example.test"])
        maild.start()
        cut_after = [None] * self.PLACES
        stop = threading.Event()

        def trickler(n):
            sock = socket.create_connection(("127.0.0.1", maild.ports["smtp"]), timeout=IO_TIMEOUT)
            try:
                if not sock.recv(512).startswith(b"220 "):
                    return
                started = time.monotonic()
                for byte in b"EHLO trickler.test" * 10:  # a byte each 0.25 s: 45 s if never cut
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.25)
                    sock.setblocking(False)
                    try:
                        answer = sock.recv(512)
                    except BlockingIOError:
                        answer = None
                    finally:
                        sock.setblocking(True)
                    if answer is not None:  # the 421, or the close
                        cut_after[n] = (time.monotonic() - started, answer)
                        return
            except OSError as e:
                cut_after[n] = (time.monotonic() - started, repr(e))
            finally:
                sock.close()

        threads = [threading.Thread(target=trickler, args=(n,)) for n in range(self.PLACES)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every place taken, each trickler mid-line
        attack_started = time.monotonic()
        served_after = None
        while time.monotonic() - attack_started < 10 and served_after is None:
            try:
                with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], timeout=IO_TIMEOUT) as client:
                    client.sendmail("alice@remote.test", ["bob@example.test"],
                                    b"Subject: served\r\n\r\nduring the attack\r\n")
                    served_after = time.monotonic() - attack_started
            except (smtplib.SMTPException, OSError):
                time.sleep(0.2)  # 421 too many connections: every place is a trickler's
        stop.set()
        for thread in threads:
            thread.join(timeout=IO_TIMEOUT)
        self.assertIsNotNone(served_after, "no legitimate session within 10 s")
        self.assertLess(served_after, 4.0)
        for n, cut in enumerate(cut_after):
            self.assertIsNotNone(cut, "trickler %d was never cut" % n)
            elapsed, answer = cut
            self.assertLess(elapsed, 3.5, "trickler %d held its place %.1f s" % (n, elapsed))
            if isinstance(answer, bytes) and answer:
                self.assertTrue(answer.startswith(b"421 4.4.2"), answer)
        self.assertEqual(len(deliveries(maild, "bob@example.test")), 1)


def peak_rss_kib(pid):
    """The process's peak resident set (VmHWM), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


class MemoryBound(unittest.TestCase):
    """16 concurrent maximum-size messages: content in memory stays under
    [server] content_memory; what does not fit is refused 452 4.3.1, not lost."""

    CLIENTS = 16
    SIZE_MIB = 8
    BUDGET_MIB = 16

    def test_concurrent_maximum_size_messages_stay_under_content_memory(self):
        maild = Maild(self, "[server]\ncontent_memory = %dM\n[smtp]\nmax_message_size = %dM\n"
                      % (self.BUDGET_MIB, self.SIZE_MIB))
        provision(maild, ["bob@example.test"])
        # Under AddressSanitizer, freed memory waits in a quarantine: keep it small here.
        maild.start(env=dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=1:detect_leaks=0"))
        before = peak_rss_kib(maild.process.pid)
        line = b"x" * 998 + b"\r\n"
        body = line * (self.SIZE_MIB * 1024 * 1024 // len(line) - 1)
        outcomes = [None] * self.CLIENTS
        barrier = threading.Barrier(self.CLIENTS, timeout=30)

        def client(n):
            try:
                with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], timeout=60) as smtp:
                    smtp.ehlo("c%02d.test" % n)
                    smtp.mail("sender@remote.test")
                    smtp.rcpt("bob@example.test")
                    barrier.wait()
                    outcomes[n] = smtp.data(b"Subject: big %02d\r\n\r\n" % n + body)[0]
            except smtplib.SMTPDataError as e:
                outcomes[n] = e.smtp_code
            except Exception as e:  # reported below
                outcomes[n] = repr(e)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(self.CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        grown_mib = (peak_rss_kib(maild.process.pid) - before) / 1024
        accepted = outcomes.count(250)
        self.assertEqual(accepted + outcomes.count(452), self.CLIENTS, outcomes)
        self.assertGreaterEqual(accepted, 1, outcomes)
        self.assertLess(accepted, self.CLIENTS, outcomes)  # 128 MiB cannot fit in 16 MiB
        self.assertEqual(len(deliveries(maild, "bob@example.test")), accepted)
        # The documented bound (docs/smtp.md): at most 6 x content_memory, plus 16 MiB for
        # the sessions' buffers. Without the budget, 16 x 8 MiB would take over 300 MiB.
        self.assertLess(grown_mib, 6 * self.BUDGET_MIB + 16,
                        "peak RSS grew %.0f MiB" % grown_mib)


class Concurrency(unittest.TestCase):
    SESSIONS = 50
    MESSAGES = 20
    MAILBOXES = ["box%d@example.test" % n for n in range(5)]

    def test_50_sessions_of_20_messages_each_stored_once_and_byte_exact(self):
        config = "[server]\nmax_connections_per_ip = 500"
        maild = Maild(self, config)
        provision(maild, self.MAILBOXES)
        maild.start()

        def content(session, number):
            head = b"From: session%02d@remote.test\r\nSubject: s%02d m%02d\r\n\r\n" % (session, session, number)
            return (head + os.urandom(300).hex().encode() + b"\r\n.leading dot\r\n"
                    + b"z" * (session * 17 % 900) + b"\r\n")

        sent = {}
        errors = []
        barrier = threading.Barrier(self.SESSIONS, timeout=30)

        def client(session):
            try:
                with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="c%02d.test" % session,
                                  timeout=30) as smtp:
                    smtp.ehlo()
                    barrier.wait()  # every session open at once
                    mailbox = self.MAILBOXES[session % len(self.MAILBOXES)]
                    for number in range(self.MESSAGES):
                        message = content(session, number)
                        smtp.mail("session%02d@remote.test" % session)
                        smtp.rcpt(mailbox)
                        reply = smtp.data(message)
                        # The reply names the SHA-256 of the content maild stored.
                        digest = hashlib.sha256(message).hexdigest()[:16].encode()
                        expected = (250, b"2.0.0 OK stored as " + digest)
                        if reply != expected:
                            raise AssertionError("session %d message %d: %r" % (session, number, reply))
                        sent["s%02d m%02d" % (session, number)] = (mailbox, message)
            except Exception as e:  # reported below, with the session's number
                errors.append("session %d: %r" % (session, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(self.SESSIONS)]
        started_at = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - started_at
        self.assertFalse([t for t in threads if t.is_alive()], "sessions still running after 120s")
        self.assertEqual(errors, [])
        self.assertEqual(len(sent), self.SESSIONS * self.MESSAGES)

        rows = deliveries(maild)
        subjects = collections.Counter(row["subject"] for row in rows)
        self.assertEqual(len(rows), self.SESSIONS * self.MESSAGES)
        self.assertEqual(set(subjects), set(sent))
        self.assertEqual(max(subjects.values()), 1)  # each stored exactly once
        trace_sizes = set()
        for row in rows:
            mailbox, message = sent[row["subject"]]
            self.assertEqual(row["mailbox"], mailbox)
            trace_sizes.add(row["size"] - len(message))
        # Every size is the content's plus a trace of a single fixed length
        # (HELO names and session ids are of equal length here): nothing lost or doubled.
        self.assertEqual(len(trace_sizes), 1, trace_sizes)
        [trace_size] = trace_sizes
        # Byte for byte, read back through mailctl: a sample across sessions and time.
        for row in rows[::25]:
            trace, content = split_trace(export_message(maild, row["id"]))
            self.assertEqual(content, sent[row["subject"]][1])
            self.assertEqual(len(trace), trace_size)
        self.assertLess(elapsed, 90)


if __name__ == "__main__":
    unittest.main()
