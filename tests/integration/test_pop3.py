"""maild's POP3 server (RFC 1939, 2449, 2595, 5034) against Python's poplib
and raw transcripts. Mail goes in by SMTP (smtplib), comes out by POP3 and
is compared byte for byte after the trace lines maild added. The real
binary, a temp store with accounts made by mailctl, free ports."""

import base64
import hashlib
import poplib
import ssl
import time
import unittest

from maild_harness import (IO_TIMEOUT, Maild, deliveries, distinct_message, provision,
                           restart, smtp_send, split_trace)

PASSWORD = "correct horse"  # a space: PASS takes the rest of the line
BOB = "bob@example.test"
CAROL = "carol@example.test"

GREETING = "+OK maild POP3 server ready"
BAD_LOGIN = "-ERR [AUTH] invalid user name or password"
IN_USE = "-ERR [IN-USE] maildrop already in use"

# Lines a POP3 server must byte-stuff (RFC 1939 3) and poplib must unstuff.
DOTS = (b"First line.\r\n"
        b".\r\n"
        b"..\r\n"
        b".A line that starts with a dot.\r\n"
        b"..Two dots.\r\n"
        b". \r\n"
        b"\tTabbed, and trailing spaces   \r\n"
        b"\r\n"
        b"From the start of a line.\r\n"
        + b"x" * 998 + b"\r\n"
        b"Last line.\r\n")


def started(test, config="", users=(BOB, CAROL)):
    """maild with example.test and the given mailboxes (password PASSWORD)."""
    maild = Maild(test, config)
    provision(maild, users, password=PASSWORD)
    return maild.start()


def tls_context(maild):
    """Verifies maild's self-signed certificate; poplib names the host 127.0.0.1."""
    context = ssl.create_default_context(cafile=maild.cert)
    context.check_hostname = False
    return context


def plain(user, password=PASSWORD, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def pop3(maild, service="pop3"):
    """A poplib client on maild's POP3 (port 110 role) or POP3S (995 role) listener."""
    if service == "pop3s":
        return poplib.POP3_SSL("127.0.0.1", maild.ports["pop3s"], timeout=IO_TIMEOUT, context=tls_context(maild))
    return poplib.POP3("127.0.0.1", maild.ports["pop3"], timeout=IO_TIMEOUT)


def retrieved(client, number):
    """RETR number through poplib (which undoes the byte-stuffing): the exact bytes."""
    response, lines, octets = client.retr(number)
    data = b"".join(line + b"\r\n" for line in lines)
    assert octets == len(data), (octets, len(data))
    return response, data


def uidl_of(address, content):
    """maild's UIDL: SHA-256 over the lowercased mailbox and the content's SHA-256."""
    content_hash = hashlib.sha256(content).hexdigest()
    return hashlib.sha256(address.lower().encode() + b"\n" + content_hash.encode()).hexdigest()


# ---- raw transcripts ----

def command(d, line, expect="+OK"):
    """Sends one command line; returns the status line, checked to start with expect."""
    d.send(line + "\r\n")
    return status(d, expect)


def status(d, expect="+OK"):
    reply = d.line()
    if not reply.startswith(expect):
        raise AssertionError("expected %r, got %r" % (expect, reply))
    return reply


def multiline(d):
    """The lines of a multi-line response after its status line, up to '.',
    unstuffed."""
    lines = []
    while True:
        while b"\r\n" not in d.buffer:
            chunk = d.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed in a multi-line response: %r" % lines)
            d.buffer += chunk
        line = d.line()
        if line == ".":
            return lines
        lines.append(line[1:] if line.startswith(".") else line)


def capabilities(d):
    command(d, "CAPA", "+OK capability list follows")
    return multiline(d)


def login(d, user=BOB, password=PASSWORD):
    """USER and PASS in a raw dialogue (after the greeting); returns PASS's reply."""
    command(d, "USER " + user, "+OK send PASS")
    d.send("PASS %s\r\n" % password)
    return d.line()


def logged_in(maild, user=BOB, timeout=IO_TIMEOUT):
    """A raw dialogue in the TRANSACTION state. Retried while the maildrop is
    [IN-USE]: an earlier session's lock may still be on its way out."""
    deadline = time.monotonic() + timeout
    while True:
        d = maild.dialogue("pop3")
        status(d, GREETING)
        reply = login(d, user)
        if reply.startswith("+OK maildrop has "):
            return d
        d.close()
        if not reply.startswith(IN_USE) or time.monotonic() > deadline:
            raise AssertionError("login as %s: %r" % (user, reply))
        time.sleep(0.1)


def stat(d):
    """STAT: (messages, octets)."""
    count, octets = command(d, "STAT").split()[1:]
    return int(count), int(octets)


class Transcript(unittest.TestCase):
    def test_greeting_and_capabilities(self):
        maild = started(self)
        d = maild.dialogue("pop3")
        self.assertEqual(d.line(), GREETING)
        everything = ["USER", "SASL PLAIN", "STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                      "PIPELINING", "IMPLEMENTATION maild"]
        self.assertEqual(capabilities(d), everything)
        self.assertTrue(login(d).startswith("+OK maildrop has 0 messages (0 octets)"))
        self.assertEqual(capabilities(d), everything)
        self.assertEqual(command(d, "QUIT"), "+OK maild POP3 server signing off (0 messages left)")
        self.assertTrue(d.closed())

        s = maild.dialogue("pop3s", tls=True)  # under TLS: no STLS
        self.assertEqual(s.line(), GREETING)
        self.assertEqual(capabilities(s), [c for c in everything if c != "STLS"])
        self.assertEqual(command(s, "QUIT"), "+OK maild POP3 server signing off")
        self.assertTrue(s.closed())

    def test_a_whole_session(self):
        maild = started(self)
        first = distinct_message("first")
        second = distinct_message("second", DOTS)
        smtp_send(maild, [BOB], first, second)
        d = maild.dialogue("pop3")
        status(d, GREETING)
        self.assertEqual(command(d, "USER " + BOB), "+OK send PASS")
        d.send("PASS %s\r\n" % PASSWORD)
        greeting = status(d, "+OK maildrop has 2 messages (")
        count, octets = stat(d)
        self.assertEqual(greeting, "+OK maildrop has 2 messages (%d octets)" % octets)
        self.assertEqual(command(d, "LIST"), "+OK")
        sizes = [line.split() for line in multiline(d)]
        self.assertEqual([number for number, _ in sizes], ["1", "2"])
        size1, size2 = int(sizes[0][1]), int(sizes[1][1])
        self.assertEqual((count, octets), (2, size1 + size2))
        self.assertEqual(command(d, "LIST 2"), "+OK 2 %d" % size2)
        self.assertEqual(command(d, "UIDL"), "+OK")
        self.assertEqual(multiline(d), ["1 " + uidl_of(BOB, first), "2 " + uidl_of(BOB, second)])
        self.assertEqual(command(d, "UIDL 1"), "+OK 1 " + uidl_of(BOB, first))
        self.assertEqual(command(d, "RETR 1"), "+OK %d octets" % size1)
        self.assertEqual(split_trace("\r\n".join(multiline(d)).encode() + b"\r\n")[1], first)

        self.assertEqual(command(d, "DELE 1"), "+OK message 1 deleted")
        self.assertEqual(command(d, "DELE 1", "-ERR"), "-ERR message 1 already deleted")
        self.assertEqual(command(d, "RETR 1", "-ERR"), "-ERR message 1 already deleted")
        self.assertEqual(command(d, "LIST 1", "-ERR"), "-ERR message 1 already deleted")
        self.assertEqual(command(d, "LIST"), "+OK")
        self.assertEqual(multiline(d), ["2 %d" % size2])  # numbers do not shift
        self.assertEqual(stat(d), (1, size2))
        self.assertEqual(command(d, "RSET"), "+OK maildrop has 2 messages (%d octets)" % octets)
        self.assertEqual(command(d, "NOOP"), "+OK")
        self.assertEqual(command(d, "RETR 3", "-ERR"), "-ERR no such message")
        self.assertEqual(command(d, "RETR 0", "-ERR"), "-ERR no such message")
        self.assertEqual(command(d, "DELE 2"), "+OK message 2 deleted")
        self.assertEqual(command(d, "QUIT"), "+OK maild POP3 server signing off (1 message left)")
        self.assertTrue(d.closed())

        d = logged_in(maild)
        self.assertEqual(stat(d), (1, size1))
        self.assertEqual(command(d, "UIDL 1"), "+OK 1 " + uidl_of(BOB, first))
        command(d, "QUIT")
        # RETR marked message 1 retrieved; DELE + QUIT deleted message 2.
        status_of = {row["subject"]: row["status"] for row in deliveries(maild, BOB)}
        self.assertEqual(status_of, {"first": "retrieved", "second": "deleted"})

    def test_refusals_and_the_bad_command_limit(self):
        maild = started(self)
        d = maild.dialogue("pop3")
        status(d, GREETING)
        # AUTHORIZATION: only CAPA, USER, PASS, AUTH, STLS, QUIT.
        self.assertEqual(command(d, "STAT", "-ERR"), "-ERR command not valid in this state")
        self.assertEqual(command(d, "NOOP", "-ERR"), "-ERR command not valid in this state")
        self.assertEqual(command(d, "PASS secret", "-ERR"), "-ERR send USER first")
        self.assertEqual(command(d, "XTND XLST", "-ERR"), "-ERR unknown command")
        self.assertEqual(command(d, "AUTH CRAM-MD5", "-ERR"), "-ERR unsupported authentication mechanism")
        self.assertEqual(command(d, "CAPA now", "-ERR"), "-ERR CAPA takes no arguments")
        self.assertEqual(command(d, "USER", "-ERR"), "-ERR USER needs one name")
        self.assertTrue(login(d).startswith("+OK maildrop has 0 messages"))
        # TRANSACTION: no USER, PASS, AUTH or STLS any more.
        self.assertEqual(command(d, "USER " + BOB, "-ERR"), "-ERR command not valid in this state")
        self.assertEqual(command(d, "STLS", "-ERR"), "-ERR command not valid in this state")
        self.assertEqual(command(d, "RETR 1", "-ERR"), "-ERR no such message")  # not a bad command
        self.assertEqual(command(d, "RETR one", "-ERR"), "-ERR invalid message number")
        # The 10th refused command (AUTH CRAM-MD5 and RETR 1 were not) ends the session.
        self.assertEqual(command(d, "TOP 1", "-ERR"), "-ERR syntax: TOP message lines")
        self.assertEqual(d.line(), "-ERR too many bad commands, closing")
        self.assertTrue(d.closed())
        command(logged_in(maild), "QUIT")  # the maildrop was released

    def test_top_sends_the_header_and_the_first_lines(self):
        maild = started(self)
        message = distinct_message("top", DOTS)
        smtp_send(maild, [BOB], message)
        header, body = message.split(b"\r\n\r\n", 1)
        client = pop3(maild)
        client.user(BOB)
        client.pass_(PASSWORD)
        _, whole = retrieved(client, 1)
        trace, content = split_trace(whole)
        self.assertEqual(content, message)
        for lines, expected in ((0, b""), (4, b"First line.\r\n.\r\n..\r\n.A line that starts with a dot.\r\n"),
                                (1000, body)):
            response, got, octets = client.top(1, lines)
            self.assertEqual(response, b"+OK top of message follows")
            self.assertEqual(b"".join(line + b"\r\n" for line in got), trace + header + b"\r\n\r\n" + expected)
        self.assertEqual(client.quit(), b"+OK maild POP3 server signing off (1 message left)")

    def test_pipelined_commands_get_their_replies_in_order(self):
        maild = started(self)
        first, second = distinct_message("pipelined 1"), distinct_message("pipelined 2")
        smtp_send(maild, [BOB], first, second)
        d = maild.dialogue("pop3")
        status(d, GREETING)
        d.send("USER %s\r\nPASS %s\r\nSTAT\r\nUIDL\r\nDELE 1\r\nLIST 1\r\nTOP 2 0\r\nNOOP\r\nQUIT\r\n"
               % (BOB, PASSWORD))
        status(d, "+OK send PASS")
        status(d, "+OK maildrop has 2 messages")
        status(d, "+OK 2 ")
        status(d, "+OK")
        self.assertEqual(multiline(d), ["1 " + uidl_of(BOB, first), "2 " + uidl_of(BOB, second)])
        status(d, "+OK message 1 deleted")
        status(d, "-ERR message 1 already deleted")
        status(d, "+OK top of message follows")
        self.assertIn("Subject: pipelined 2", multiline(d))
        status(d, "+OK")
        self.assertEqual(status(d), "+OK maild POP3 server signing off (1 message left)")
        self.assertTrue(d.closed())

    def test_nothing_sent_in_clear_after_stls_is_used(self):
        maild = started(self)
        d = maild.dialogue("pop3")
        status(d, GREETING)
        d.send("STLS\r\nUSER %s\r\n" % BOB)  # an injected command behind STLS (CVE-2011-0411)
        status(d, "+OK begin TLS negotiation")
        d.sock = tls_context(maild).wrap_socket(d.sock, server_hostname="mx.example.test")
        self.assertEqual(command(d, "PASS " + PASSWORD, "-ERR"), "-ERR send USER first")
        self.assertTrue(login(d).startswith("+OK maildrop has 0 messages"))
        command(d, "QUIT")

    def test_idle_session_is_closed_without_a_reply_and_the_maildrop_freed(self):
        maild = started(self, "[pop3]\nidle_timeout = 1s")
        d = logged_in(maild)
        started_at = time.monotonic()
        self.assertTrue(d.closed())  # RFC 1939 3: the autologout timer, no response
        self.assertLess(time.monotonic() - started_at, 5)
        maild.wait_for_log("idle timeout, closing")
        command(logged_in(maild, timeout=2), "QUIT")

    def test_a_connection_past_the_limit_gets_sys_temp(self):
        maild = started(self, "[server]\nmax_connections_per_ip = 1")
        first = maild.admitted_dialogue("pop3", greeting=GREETING)
        second = maild.dialogue("pop3")
        self.assertEqual(second.line(), "-ERR [SYS/TEMP] too many connections, try again later")
        self.assertTrue(second.closed())
        command(first, "QUIT")


def message_with_a_dot_line_at(offset, subject):
    """A message whose content has a line starting with '.' at byte offset:
    maild sends content in pieces of 64 KiB, stuffing each."""
    head = distinct_message(subject, b"")
    fill = offset - len(head)
    lines, rest = divmod(fill, 100)
    if 0 < rest < 2:
        lines, rest = lines - 1, rest + 100
    body = (b"y" * 98 + b"\r\n") * lines + (b"z" * (rest - 2) + b"\r\n" if rest else b"")
    message = head + body + b".dot at %d\r\n" % offset + b"..\r\n" + b"end\r\n"
    assert message[offset:offset + 1] == b"." and message[offset - 2:offset] == b"\r\n"
    return message


class Poplib(unittest.TestCase):
    def check_retrieval(self, client, messages):
        """STAT, LIST and UIDL agree with the messages; each RETR is trace + the message, exactly."""
        count, octets = client.stat()
        _, listing, _ = client.list()
        sizes = [int(line.split()[1]) for line in listing]
        _, uidls, _ = client.uidl()
        self.assertEqual((count, octets), (len(messages), sum(sizes)))
        self.assertEqual(uidls, [b"%d %s" % (n + 1, uidl_of(BOB, m).encode()) for n, m in enumerate(messages)])
        for number, message in enumerate(messages, start=1):
            response, data = retrieved(client, number)
            self.assertEqual(response, b"+OK %d octets" % len(data))
            self.assertEqual(len(data), sizes[number - 1])
            trace, content = split_trace(data)
            self.assertEqual(content, message)
            self.assertTrue(trace.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: from client.test "),
                            trace)

    def test_plain_user_pass_from_loopback_retr_is_byte_exact(self):
        maild = started(self)
        messages = [distinct_message("dots", DOTS), distinct_message("short", b"."), distinct_message("empty", b"")]
        smtp_send(maild, [BOB], *messages)
        # SMTP ends every message with CRLF: b"." arrives as ".\r\n", b"" as it is.
        messages[1] += b"\r\n"
        client = pop3(maild)
        self.assertEqual(client.getwelcome(), GREETING.encode())
        self.assertEqual(client.user(BOB), b"+OK send PASS")
        self.assertTrue(client.pass_(PASSWORD).startswith(b"+OK maildrop has 3 messages"))
        self.check_retrieval(client, messages)
        for number in (1, 2, 3):
            client.dele(number)
        self.assertEqual(client.quit(), b"+OK maild POP3 server signing off (0 messages left)")
        client = pop3(maild)
        client.user(BOB)
        client.pass_(PASSWORD)
        self.assertEqual(client.stat(), (0, 0))
        client.quit()

    def test_large_messages_are_stuffed_across_the_64k_pieces(self):
        maild = started(self)
        messages = [message_with_a_dot_line_at(65536, "the dot starts a piece"),
                    message_with_a_dot_line_at(65537, "CR ends a piece, LF starts the next"),
                    message_with_a_dot_line_at(3 * 65536, "the dot starts the fourth piece")]
        smtp_send(maild, [BOB], *messages)
        client = pop3(maild)
        client.user(BOB)
        client.pass_(PASSWORD)
        self.check_retrieval(client, messages)
        client.quit()

    def test_stls_then_login(self):
        maild = started(self)
        message = distinct_message("stls", DOTS)
        smtp_send(maild, [BOB], message)
        client = pop3(maild)
        self.assertIn("STLS", client.capa())
        self.assertEqual(client.stls(tls_context(maild)), b"+OK begin TLS negotiation")
        self.assertIn(client.sock.version(), ("TLSv1.2", "TLSv1.3"))
        capa = client.capa()
        self.assertNotIn("STLS", capa)
        self.assertIn("USER", capa)
        with self.assertRaises(poplib.error_proto) as refused:
            client._shortcmd("STLS")
        self.assertEqual(refused.exception.args[0], b"-ERR STLS not available")
        client.user(BOB)
        client.pass_(PASSWORD)
        self.check_retrieval(client, [message])
        client.quit()

    def test_pop3s_is_implicit_tls(self):
        maild = started(self)
        message = distinct_message("pop3s", DOTS)
        smtp_send(maild, [BOB], message)
        client = pop3(maild, "pop3s")
        self.assertEqual(client.getwelcome(), GREETING.encode())
        self.assertIn(client.sock.version(), ("TLSv1.2", "TLSv1.3"))
        client.user(BOB)
        client.pass_(PASSWORD)
        self.check_retrieval(client, [message])
        client.quit()


    def test_auth_plain_with_an_initial_response_and_after_a_continuation(self):
        maild = started(self)
        message = distinct_message("auth plain")
        smtp_send(maild, [BOB], message)
        client = pop3(maild)
        self.assertEqual(client.capa()["SASL"], ["PLAIN"])
        self.assertTrue(client._shortcmd("AUTH PLAIN " + plain(BOB)).startswith(b"+OK maildrop has 1 messages"))
        self.check_retrieval(client, [message])
        client.quit()

        client = pop3(maild)
        self.assertEqual(client._shortcmd("AUTH PLAIN"), b"+ ")  # RFC 5034: an empty challenge
        with self.assertRaises(poplib.error_proto) as cancelled:
            client._shortcmd("*")
        self.assertEqual(cancelled.exception.args[0], b"-ERR authentication cancelled")
        for response, reply in (("=", b"-ERR malformed PLAIN response"),
                                (plain(BOB, authzid=CAROL), b"-ERR malformed PLAIN response"),
                                (plain(BOB, "wrong"), BAD_LOGIN.encode())):
            with self.assertRaises(poplib.error_proto) as refused:
                client._shortcmd("AUTH PLAIN " + response)
            self.assertEqual(refused.exception.args[0], reply)
        client._putcmd("AUTH PLAIN")
        self.assertEqual(client._getresp(), b"+ ")
        self.assertTrue(client._shortcmd(plain(BOB, authzid=BOB)).startswith(b"+OK maildrop has 1 messages"))
        self.check_retrieval(client, [message])
        client.quit()


class Maildrop(unittest.TestCase):
    def test_a_dropped_connection_after_dele_keeps_the_mail(self):
        maild = started(self)
        smtp_send(maild, [BOB], distinct_message("one"), distinct_message("two"))
        d = logged_in(maild)
        before = stat(d)
        self.assertEqual(before[0], 2)
        self.assertEqual(command(d, "DELE 1"), "+OK message 1 deleted")
        self.assertEqual(stat(d)[0], 1)
        d.close()  # no QUIT: RFC 1939 6, nothing is deleted
        d = logged_in(maild)  # retried briefly while the lock is released
        self.assertEqual(stat(d), before)
        command(d, "QUIT")

    def test_a_second_session_gets_in_use_until_the_first_quits(self):
        maild = started(self)
        smtp_send(maild, [BOB], distinct_message("locked"))
        first = logged_in(maild)
        second = maild.dialogue("pop3")
        status(second, GREETING)
        self.assertEqual(login(second), IN_USE)
        self.assertEqual(login_reply(maild, "pop3s"), IN_USE)  # the other listener as well
        # Another mailbox is not locked.
        carol = logged_in(maild, CAROL)
        self.assertEqual(command(first, "QUIT"), "+OK maild POP3 server signing off (1 message left)")
        self.assertTrue(first.closed())
        # The refused session is still in AUTHORIZATION and may try again.
        self.assertTrue(login(second).startswith("+OK maildrop has 1 messages"))
        command(second, "QUIT")
        command(carol, "QUIT")

    def test_uidls_stay_the_same_across_sessions_and_a_restart(self):
        maild = started(self)
        messages = [distinct_message("uidl %d" % n) for n in range(3)]
        smtp_send(maild, [BOB, CAROL], *messages)

        def uidls(address):
            client = pop3(maild)
            client.user(address)
            client.pass_(PASSWORD)
            _, lines, _ = client.uidl()
            client.quit()
            return [line.split()[1].decode() for line in lines]

        expected = [uidl_of(BOB, m) for m in messages]
        self.assertEqual(uidls(BOB), expected)
        self.assertEqual(uidls(BOB), expected)
        # The same content in another mailbox: other UIDLs.
        self.assertEqual(uidls(CAROL), [uidl_of(CAROL, m) for m in messages])
        restart(maild)
        self.assertEqual(uidls(BOB), expected)

    def test_shutdown_tells_a_session_sys_temp_and_applies_nothing(self):
        maild = started(self)
        smtp_send(maild, [BOB], distinct_message("shutdown"))
        d = logged_in(maild)
        command(d, "DELE 1")
        restart(maild)
        self.assertEqual(d.line(), "-ERR [SYS/TEMP] server shutting down, try again later")
        self.assertTrue(d.closed())
        d = logged_in(maild, timeout=2)  # the lock was released at shutdown, not left to expire
        self.assertEqual(stat(d)[0], 1)
        command(d, "QUIT")


def login_reply(maild, service):
    """The reply to USER/PASS as BOB in a new session on service (then closed)."""
    d = maild.dialogue(service, tls=service == "pop3s")
    status(d, GREETING)
    reply = login(d)
    d.close()
    return reply


class Authorization(unittest.TestCase):
    def test_a_wrong_password_and_an_unknown_user_get_the_same_reply(self):
        maild = started(self)
        d = maild.dialogue("pop3")
        status(d, GREETING)
        # USER accepts any name: an unknown one is only refused after PASS.
        self.assertEqual(command(d, "USER nobody@example.test"), "+OK send PASS")
        self.assertEqual(command(d, "PASS " + PASSWORD, "-ERR"), BAD_LOGIN)
        self.assertEqual(command(d, "USER " + BOB), "+OK send PASS")
        self.assertEqual(command(d, "PASS wrong", "-ERR"), BAD_LOGIN)
        self.assertEqual(command(d, "AUTH PLAIN " + plain("nobody@example.test"), "-ERR"), BAD_LOGIN)
        self.assertEqual(command(d, "AUTH PLAIN " + plain(BOB, "wrong"), "-ERR"), BAD_LOGIN)
        self.assertTrue(login(d).startswith("+OK maildrop has 0 messages"))
        command(d, "QUIT")
        self.assertNotIn(PASSWORD, maild.log())
        self.assertNotIn("wrong", maild.log())

    # RFC 1939's 40-character argument limit is lifted by RFC 2449 section 4 for servers
    # that offer CAPA; USER/PASS is the login most clients use (mpop, fetchmail).
    def test_user_takes_an_address_longer_than_40_characters(self):
        address = "firstname.lastname.department@example.test"  # 42 characters
        maild = started(self, users=(address,))
        d = maild.dialogue("pop3")
        status(d, GREETING)
        self.assertTrue(command(d, "AUTH PLAIN " + plain(address)).startswith("+OK maildrop has 0 messages"))
        command(d, "QUIT")
        d = maild.dialogue("pop3")
        status(d, GREETING)
        self.assertTrue(login(d, address).startswith("+OK maildrop has 0 messages"))
        command(d, "QUIT")

    def test_login_delay_after_max_auth_failures(self):
        maild = started(self, "[pop3]\nmax_auth_failures = 2")
        d = maild.dialogue("pop3")
        status(d, GREETING)
        self.assertEqual(login(d, password="wrong"), BAD_LOGIN)
        self.assertEqual(login(d, password="wrong"), BAD_LOGIN)
        # Even the right password now: refused, and the connection closed.
        self.assertEqual(login(d), "-ERR [LOGIN-DELAY] too many failed logins, try again later")
        self.assertTrue(d.closed())
        # From the same address on the other listener, and by AUTH PLAIN.
        s = maild.dialogue("pop3s", tls=True)
        status(s, GREETING)
        self.assertEqual(command(s, "AUTH PLAIN " + plain(BOB), "-ERR"),
                         "-ERR [LOGIN-DELAY] too many failed logins, try again later")
        self.assertTrue(s.closed())
        self.assertIn("login refused: too many failures from 127.0.0.1", maild.log())

    def test_plaintext_is_refused_outside_plaintext_networks_until_stls(self):
        maild = started(self, "[pop3]\nplaintext_networks = 10.0.0.0/8")
        d = maild.dialogue("pop3")
        status(d, GREETING)
        self.assertEqual(capabilities(d), ["STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                                           "IMPLEMENTATION maild"])
        self.assertEqual(command(d, "USER " + BOB, "-ERR"), "-ERR [AUTH] use STLS first")
        self.assertEqual(command(d, "PASS " + PASSWORD, "-ERR"), "-ERR send USER first")
        self.assertEqual(command(d, "AUTH PLAIN " + plain(BOB), "-ERR"), "-ERR [AUTH] use STLS first")
        command(d, "QUIT")

        client = pop3(maild)
        client.stls(tls_context(maild))
        capa = client.capa()
        self.assertIn("USER", capa)
        self.assertEqual(capa["SASL"], ["PLAIN"])
        client.user(BOB)
        self.assertTrue(client.pass_(PASSWORD).startswith(b"+OK maildrop has 0 messages"))
        client.quit()
        client = pop3(maild, "pop3s")
        self.assertTrue(client._shortcmd("AUTH PLAIN " + plain(BOB)).startswith(b"+OK maildrop has 0 messages"))
        client.quit()


if __name__ == "__main__":
    unittest.main()
