"""SOURCE/GET end to end between two real maild instances: an origin
(mx.origin.test on 127.0.0.2) holding a pickup offered with mailctl, and a
destination (mx.dest.test on 127.0.0.3) that accepts SOURCE from smtplib and
fetches the message back by GET from the sender domain's MX, found through a
private dnsmasq; the origin authorises the GET by the MX of dest.test. Also
forgery (an unknown token), a null MX, an origin that comes up late, and a
destination killed between the origin's transfer and its own commit."""

import json
import poplib
import secrets
import signal
import smtplib
import socket
import sqlite3
import threading
import time
import unittest

import maild_harness
from dns_server import DnsServer
from maild_harness import IO_TIMEOUT, TRICKY_BODY, Maild, deliveries, mailctl_ok, provision

ORIGIN_HOST = "127.0.0.2"
DEST_HOST = "127.0.0.3"
FORGER_HOST = "127.0.0.4"
PROXY_HOST = "127.0.0.5"
FETCH_TIMEOUT = 30.0

MESSAGE = (b"From: Alice <alice@origin.test>\r\n"
           b"To: <bob@dest.test>\r\n"
           b"Subject: fetched back\r\n"
           b"Message-ID: <fetch-1@origin.test>\r\n"
           b"\r\n" + TRICKY_BODY)


def stats(maild):
    return json.loads(mailctl_ok(maild, "--json", "stats"))


def wait_until(predicate, what, timeout=FETCH_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.2)


class Proxy:
    """Forwards connections on PROXY_HOST:port to the origin, from the
    destination's address (so that the origin still sees an MX of dest.test),
    and calls before_transferred() once, right before the origin's final
    "250 ... transferred" reaches the destination."""

    def __init__(self, test, port, origin_port, before_transferred):
        self.listener = socket.create_server((PROXY_HOST, port))
        self.listener.settimeout(0.2)
        self.origin_port = origin_port
        self.before_transferred = before_transferred
        self.fired = False
        self.running = True
        self.sockets = []
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def accept(self):
        while self.running:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.sockets.append(client)
            upstream = socket.create_connection((ORIGIN_HOST, self.origin_port), timeout=IO_TIMEOUT,
                                                source_address=(DEST_HOST, 0))
            self.sockets.append(upstream)
            threading.Thread(target=self.pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, True), daemon=True).start()

    def pipe(self, source, target, from_origin):
        seen = b""
        try:
            source.settimeout(FETCH_TIMEOUT)
            while True:
                data = source.recv(65536)
                if not data:
                    break
                seen = (seen + data)[-200:]
                if from_origin and not self.fired and b" transferred\r\n" in seen:
                    self.fired = True
                    self.before_transferred()
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.running = False
        self.listener.close()
        self.thread.join(timeout=5)
        for s in self.sockets:
            s.close()


class FetchTest(unittest.TestCase):
    def setUp(self):
        self.dns = DnsServer(self, mx={
            "origin.test": [(10, "mx.origin.test")],
            "proxied.test": [(10, "mx.proxied.test")],
            "dest.test": [(10, "mx.dest.test")],
            "nullmx.test": [(0, ".")],
        }, hosts={
            "mx.origin.test": ORIGIN_HOST,
            "mx.proxied.test": PROXY_HOST,
            "mx.dest.test": DEST_HOST,
        })
        # The proxy of the recovery test reads the dialogue: no STARTTLS there.
        plain = "killed" in self._testMethodName
        self.origin = Maild(self, hostname="mx.origin.test", host=ORIGIN_HOST, tls=not plain, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n[log]\nlevel = debug" % self.dns.endpoint))
        provision(self.origin, users=("alice@origin.test",), domains=("origin.test",))

    def start_dest(self):
        self.dest = Maild(self, hostname="mx.dest.test", host=DEST_HOST, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n"
            "[delivery]\nsmtp_port = %d\nbind_address = %s\nretry_schedule = 1s\nlease_time = 5s\n"
            # The origin's MX (and the proxy) are on loopback addresses: named, or never fetched from.
            "[reverse]\npoll_interval = 1s\ntrusted_peers = %s, %s\n[log]\nlevel = debug"
            % (self.dns.endpoint, self.origin.ports["smtp"], DEST_HOST, ORIGIN_HOST, PROXY_HOST)))
        provision(self.dest, users=("bob@dest.test",), domains=("dest.test",))
        return self.dest.start()

    def offer(self, token, sender="alice@origin.test"):
        result = self.origin.mailctl("pickup", "inject", token, "--from", sender,
                                     "--to", "bob@dest.test", input=MESSAGE.decode())
        self.assertEqual(result.returncode, 0, result.stderr)

    def source(self, token, sender="alice@origin.test", client_host=ORIGIN_HOST):
        with smtplib.SMTP(DEST_HOST, self.dest.ports["smtp"], local_hostname="mx.origin.test",
                          timeout=IO_TIMEOUT, source_address=(client_host, 0)) as client:
            client.ehlo()
            self.assertTrue(client.has_extn("source"))
            self.assertEqual(client.mail(sender)[0], 250)
            self.assertEqual(client.rcpt("bob@dest.test")[0], 250)
            code, text = client.docmd("SOURCE", token)
            self.assertEqual((code, text), (250, b"2.0.0 " + token.encode() + b" accepted for retrieval"))

    def pop3_messages(self):
        client = poplib.POP3(DEST_HOST, self.dest.ports["pop3"], timeout=IO_TIMEOUT)
        try:
            client.user("bob@dest.test")
            client.pass_("secret")
            count, _ = client.stat()
            return [b"\r\n".join(client.retr(i + 1)[1]) + b"\r\n" for i in range(count)]
        finally:
            client.quit()

    def bob(self):
        return deliveries(self.dest, "bob@dest.test")

    def test_a_message_announced_by_source_is_fetched_verified_and_byte_exact(self):
        self.origin.start()
        self.start_dest()
        token = secrets.token_hex(16)
        self.offer(token)
        self.source(token)
        delivered = wait_until(self.bob, "bob's message is fetched")
        self.assertEqual(len(delivered), 1)
        self.assertEqual(delivered[0]["origin"], "verified")
        [message] = self.pop3_messages()
        self.assertTrue(message.endswith(MESSAGE), message)
        header = message[:len(message) - len(MESSAGE)]
        lines = header.split(b"\r\n")
        self.assertEqual(lines[0], b"Return-Path: <alice@origin.test>")
        self.assertEqual(lines[1],
                         b"Authentication-Results: mx.dest.test; source-get=pass smtp.mailfrom=origin.test")
        self.assertTrue(lines[2].startswith(b"Received: from mx.origin.test"), lines[2])
        counts = stats(self.dest)
        self.assertEqual((counts["source_accepted"], counts["get_fetched"], counts["get_failed"],
                          counts["retrievals_pending"]), (1, 1, 0, 0))
        self.assertEqual(stats(self.origin)["pickups_served"], 1)
        self.assertRegex(mailctl_ok(self.dest, "mail", "list"), r"bob@dest\.test .* verified +fetched back")
        self.dest.wait_for_log("%s... from <alice@origin.test>: fetched from mx.origin.test[%s]"
                               % (token[:8], ORIGIN_HOST))
        self.origin.wait_for_log("from %s (MX mx.dest.test of dest.test)" % DEST_HOST)
        self.assertNotIn(token, self.dest.log())

    def test_a_forged_sender_gets_550_from_the_real_origin_and_nothing_is_delivered(self):
        self.origin.start()
        self.start_dest()
        token = secrets.token_hex(16)  # never offered at the origin
        self.source(token, sender="x@origin.test", client_host=FORGER_HOST)
        wait_until(lambda: stats(self.dest)["get_failed"] == 1, "the forgery is counted")
        self.dest.wait_for_log("%s... from <x@origin.test>: failed, not delivered: 550 5.1.0" % token[:8])
        self.assertEqual(self.bob(), [])
        counts = stats(self.dest)
        self.assertEqual((counts["get_fetched"], counts["retrievals_pending"]), (0, 0))
        self.assertEqual(stats(self.origin)["pickups_served"], 0)
        self.assertNotIn(token, self.dest.log())

    def test_a_sender_domain_with_null_mx_fails_at_once(self):
        self.origin.start()
        self.start_dest()
        token = secrets.token_hex(16)
        self.source(token, sender="x@nullmx.test")
        wait_until(lambda: stats(self.dest)["get_failed"] == 1, "the null MX failure is counted")
        self.dest.wait_for_log("%s... from <x@nullmx.test>: failed, not delivered: 556" % token[:8])
        self.assertEqual(self.bob(), [])

    def test_an_origin_that_is_down_is_tried_again_until_it_answers(self):
        token = secrets.token_hex(16)
        self.offer(token)  # into the origin's store; the origin is not running yet
        self.start_dest()
        self.source(token)
        self.dest.wait_for_log("%s... from <alice@origin.test>: deferred" % token[:8], timeout=FETCH_TIMEOUT)
        self.assertEqual(stats(self.dest)["retrievals_pending"], 1)
        self.origin.start()
        delivered = wait_until(self.bob, "bob's message is fetched once the origin is up")
        self.assertEqual(len(delivered), 1)
        self.assertTrue(self.pop3_messages()[0].endswith(MESSAGE))
        self.assertEqual(stats(self.dest)["get_fetched"], 1)

    @unittest.skipIf(maild_harness.BACKEND == "mysql",
                     "holds dest's commit with a lock on its SQLite file; the MySQL store's "
                     "commits are covered by the store conformance suite")
    def test_a_destination_killed_before_its_commit_fetches_again_and_delivers_once(self):
        self.origin.start()
        self.start_dest()
        lock = {}

        def hold_dest_store():
            # The destination's commit must wait: a write transaction of our own on its store.
            connection = sqlite3.connect(self.dest.store_path, timeout=IO_TIMEOUT, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("BEGIN IMMEDIATE")
            lock["connection"] = connection

        Proxy(self, self.origin.ports["smtp"], self.origin.ports["smtp"], hold_dest_store)
        token = secrets.token_hex(16)
        self.offer(token, sender="alice@proxied.test")
        self.source(token, sender="alice@proxied.test")
        wait_until(lambda: stats(self.origin)["pickups_served"] == 1, "the origin sent the message")
        wait_until(lambda: "connection" in lock, "the destination's store is held")
        self.dest.stop(sig=signal.SIGKILL)
        lock["connection"].execute("ROLLBACK")
        lock["connection"].close()
        self.assertEqual(self.bob(), [])
        self.dest.start()
        delivered = wait_until(self.bob, "the restarted destination fetches again")
        time.sleep(3)  # a second delivery would show up by now
        self.assertEqual(len(self.bob()), 1, delivered)
        self.assertTrue(self.pop3_messages()[0].endswith(MESSAGE))
        counts = stats(self.dest)
        self.assertEqual((counts["get_fetched"], counts["retrievals_pending"]), (1, 0))
        self.assertEqual(stats(self.origin)["pickups_served"], 2)


if __name__ == "__main__":
    unittest.main()
