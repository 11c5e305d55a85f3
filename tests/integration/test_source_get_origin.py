"""SOURCE/GET at the origin, on the real maild: outbound mail goes by DATA to
a Postfix peer (no SOURCE) and to a scripted peer that refuses SOURCE, and
by SOURCE to a scripted peer that accepts it; that peer then fetches the
message by GET from its own address (a trusted peer), byte-exact. Pickups
never fetched get the sender one notice after pickup_max_age; fetched ones
are purged after retain_after_fetch."""

import json
import re
import smtplib
import socket
import threading
import time
import unittest

from maild_harness import (IO_TIMEOUT, TRICKY_BODY, Dialogue, Maild, deliveries, export_message,
                           mailctl_ok, provision, split_trace)
from postfix_peer import PostfixPeer, missing_tools, strip_trace_headers
from test_delivery import DELIVERY_TIMEOUT, wait_until

PEER = "127.0.0.2"  # the receiving server, and where its GETs come from

MESSAGE = (b"From: Alice <alice@example.test>\r\n"
           b"To: <bob@example.org>\r\n"
           b"Subject: by SOURCE or DATA\r\n"
           b"Message-ID: <origin-1@example.test>\r\n"
           b"\r\n" + TRICKY_BODY)


class ScriptedPeer:
    """A small SMTP server on PEER that lists SOURCE and answers it with
    `source_reply` ("{token}" is replaced); DATA is always accepted. It
    records the commands, the tokens and the messages it got."""

    def __init__(self, test, source_reply):
        self.source_reply = source_reply
        self.commands, self.tokens, self.messages = [], [], []
        self.listener = socket.create_server((PEER, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def close(self):
        self.done.set()
        self.thread.join(timeout=IO_TIMEOUT)
        self.listener.close()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(IO_TIMEOUT)
                try:
                    self._session(conn.makefile("rb"), conn)
                except OSError:
                    pass

    def _session(self, lines, conn):
        conn.sendall(b"220 peer.test ESMTP\r\n")
        for raw in lines:
            command = raw.rstrip(b"\r\n").decode()
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-peer.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 SOURCE\r\n")
            elif verb in ("MAIL", "RCPT", "RSET"):
                conn.sendall(b"250 2.0.0 ok\r\n")
            elif verb == "SOURCE":
                token = command.split(" ", 1)[1]
                self.tokens.append(token)
                conn.sendall((self.source_reply.format(token=token) + "\r\n").encode())
            elif verb == "DATA":
                conn.sendall(b"354 go ahead\r\n")
                content = b""
                for line in lines:
                    if line == b".\r\n":
                        break
                    content += line[1:] if line.startswith(b".") else line
                self.messages.append(content)
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.1 unknown command\r\n")


def fetch(maild, token):
    """GET `token` from maild's MX listener, from PEER's address: (reply line, message or None)."""
    sock = socket.socket()
    sock.bind((PEER, 0))
    sock.settimeout(IO_TIMEOUT)
    sock.connect(("127.0.0.1", maild.ports["smtp"]))
    d = Dialogue(sock)
    try:
        d.expect("220 ")
        d.send("EHLO peer.test\r\n")
        d.expect("250 ")
        d.send("GET %s\r\n" % token)
        first = d.reply()[-1]
        if not first.startswith("354 "):
            return first, None
        message = b""
        while True:
            line = d.line().encode()
            if line == b".":
                break
            message += (line[1:] if line.startswith(b".") else line) + b"\r\n"
        last = d.expect("250 ")
        d.send("QUIT\r\n")
        return last, message
    finally:
        d.close()


class OriginTest(unittest.TestCase):
    def start_maild(self, port, extra=""):
        maild = Maild(self, config_extra=(
            "[delivery]\nroutes = example.org = %s:%d\nretry_schedule = 1s\nlease_time = 10s\n"
            "[reverse]\ntrusted_peers = %s\npoll_interval = 1s\n%s" % (PEER, port, PEER, extra)))
        provision(maild, users=("alice@example.test",))
        return maild.start()

    def send(self, maild, message=MESSAGE):
        with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], local_hostname="client.test",
                          timeout=IO_TIMEOUT) as client:
            self.assertEqual(client.sendmail("alice@example.test", ["bob@example.org"], message), {})

    def queue_empty(self, maild):
        return json.loads(mailctl_ok(maild, "--json", "queue", "list")) == []

    def stats(self, maild):
        return json.loads(mailctl_ok(maild, "--json", "stats"))

    def notices(self, maild):
        return [d for d in deliveries(maild, "alice@example.test") if d["from"] == "<>"]

    def accepted_by_source(self, maild_extra=""):
        """A message sent by SOURCE to a peer that accepts it: (maild, peer, token)."""
        peer = ScriptedPeer(self, "250 2.0.0 {token} accepted for retrieval")
        maild = self.start_maild(peer.port, maild_extra)
        self.send(maild)
        wait_until(lambda: self.queue_empty(maild), "the queue empties")
        self.assertEqual(len(peer.tokens), 1)
        return maild, peer, peer.tokens[0]

    # (a)
    def test_a_postfix_peer_gets_the_message_by_data(self):
        problem = missing_tools()
        if problem:
            self.skipTest(problem)
        probe = socket.create_server((PEER, 0))
        port = probe.getsockname()[1]
        probe.close()
        postfix = PostfixPeer(self, hostname="mx.example.org", host=PEER, port=port)
        postfix.receive_into_maildir("example.org", ["bob"])
        postfix.start()
        maild = self.start_maild(port)
        self.send(maild)
        received = postfix.wait_for_maildir("bob@example.org", timeout=DELIVERY_TIMEOUT)[0]
        self.assertEqual(strip_trace_headers(received), MESSAGE.replace(b"\r\n", b"\n"))
        wait_until(lambda: self.queue_empty(maild), "the queue empties")
        self.assertEqual(self.stats(maild)["pickups_waiting"], 0)

    # (b)
    def test_a_refused_source_falls_back_to_data(self):
        peer = ScriptedPeer(self, "550 5.7.1 SOURCE is not accepted here: send the message with DATA")
        maild = self.start_maild(peer.port)
        self.send(maild)
        wait_until(lambda: peer.messages, "the peer gets the message by DATA")
        # QUIT follows the 250 for the content: the session may not have sent it yet.
        wait_until(lambda: any(c.upper().startswith("QUIT") for c in peer.commands),
                   "the session ends with QUIT")
        self.assertEqual(len(peer.tokens), 1)
        verbs = [c.split(" ", 1)[0] for c in peer.commands]
        self.assertEqual(verbs, ["EHLO", "MAIL", "RCPT", "SOURCE", "RSET", "MAIL", "RCPT", "DATA", "QUIT"])
        trace, content = split_trace(peer.messages[0])
        self.assertEqual(content, MESSAGE)
        self.assertTrue(trace.startswith(b"Received: "))
        wait_until(lambda: self.queue_empty(maild), "the queue empties")
        self.assertEqual(self.stats(maild)["pickups_waiting"], 0)  # cancelled
        self.assertEqual(fetch(maild, peer.tokens[0])[0], "550 5.1.0 unknown token")

    # (c)
    def test_an_accepted_source_is_fetched_by_get_byte_exact(self):
        maild, peer, token = self.accepted_by_source("[log]\nlevel = debug")
        self.assertEqual(peer.messages, [])
        self.assertRegex(token, "^[0-9a-f]{32}$")
        self.assertNotIn("DATA", peer.commands)
        self.assertEqual(self.stats(maild)["pickups_waiting"], 1)
        reply, message = fetch(maild, token)
        self.assertEqual(reply, "250 2.0.0 %s transferred" % token)
        trace, content = split_trace(message)
        self.assertEqual(content, MESSAGE)
        self.assertTrue(trace.startswith(b"Received: from client.test"))
        # The transfer is recorded once the final 250 has gone out, so just after it arrives.
        wait_until(lambda: self.stats(maild)["pickups_served"] == 1, "the transfer is recorded")
        self.assertEqual(self.stats(maild)["pickups_served"], 1)
        maild.wait_for_log("SOURCE %s... for message" % token[:8])
        self.assertNotIn(token, maild.log())  # tokens are secrets, in the transcript too

    # (d)
    def test_a_pickup_never_fetched_gets_the_sender_one_notice(self):
        maild, _, token = self.accepted_by_source("pickup_max_age = 2s")
        notice = wait_until(lambda: self.notices(maild), "the expiry notice")
        time.sleep(3.0)  # a few more housekeeping rounds: still one
        self.assertEqual(len(self.notices(maild)), 1, notice)
        counts = self.stats(maild)
        self.assertEqual(counts["pickups_expired"], 1)
        self.assertEqual(counts["pickups_waiting"], 0)
        self.assertEqual(fetch(maild, token)[0], "550 5.1.0 unknown token")
        _, content = split_trace(export_message(maild, notice[0]["id"]))
        self.assertIn(b"Final-Recipient: rfc822;bob@example.org\r\nAction: failed\r\nStatus: 5.4.7\r\n",
                      content)
        self.assertNotIn(b"Remote-MTA:", content)  # our own reason: the peer said nothing
        self.assertRegex(content, rb"\r\nDiagnostic-Code: X-maild; 554 5\.4\.7 not fetched by the "
                                  rb"receiving server %s\[%s\]:\d+ within 2s\r\n"
                                  % (re.escape(PEER.encode()), re.escape(PEER.encode())))
        self.assertIn(MESSAGE, content)  # the original comes back whole

    def test_a_pickup_fetched_once_gets_no_notice(self):
        maild, _, token = self.accepted_by_source("pickup_max_age = 2s\nretain_after_fetch = 1h")
        self.assertIsNotNone(fetch(maild, token)[1])
        time.sleep(4.0)  # past pickup_max_age, several housekeeping rounds
        self.assertEqual(self.notices(maild), [])
        self.assertEqual(self.stats(maild)["pickups_expired"], 0)
        self.assertIsNotNone(fetch(maild, token)[1])  # still there for a repeated GET

    # (e)
    def test_a_fetched_pickup_is_purged_after_retain_after_fetch(self):
        maild, _, token = self.accepted_by_source("retain_after_fetch = 1s")
        reply, message = fetch(maild, token)
        self.assertIsNotNone(message, reply)
        wait_until(lambda: fetch(maild, token)[0] == "550 5.1.0 unknown token",
                   "the pickup is purged", timeout=15.0)
        self.assertEqual(self.notices(maild), [])


if __name__ == "__main__":
    unittest.main()
