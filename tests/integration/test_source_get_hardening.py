"""SOURCE/GET under attack (SOURCE-GET.md 6), with real maild instances, a
private dnsmasq and hostile peers written here in Python:

- forged SOURCEs in the origin's name, sent to the destination by an
  attacker on 127.0.0.4, must not stall the origin's genuine message: the
  origin answers unknown tokens slowly but never blocks the destination, and
  the destination caps what one client address may announce;
- an MX that drips its GET answer one line at a time is cut off at the
  destination's [smtp] data_timeout and holds no more than [delivery]
  per_destination of the fetch connections, so a genuine fetch goes on;
- an MX that resolves to a non-public address is never connected to unless
  [reverse] trusted_peers names it."""

import json
import secrets
import select
import smtplib
import socket
import threading
import time
import unittest

from dns_server import DnsServer
from maild_harness import IO_TIMEOUT, Maild, deliveries, free_port, mailctl_ok, provision

ORIGIN_HOST = "127.0.0.2"
DEST_HOST = "127.0.0.3"
ATTACKER_HOST = "127.0.0.4"
DRIP_HOST = "127.0.0.6"
PRIVATE_MX_HOST = "127.0.0.7"

RETRY_INTERVAL = 15  # the destination's [delivery] retry_schedule, in seconds

MESSAGE = (b"From: Alice <alice@origin.test>\r\n"
           b"To: <bob@dest.test>\r\n"
           b"Subject: genuine\r\n"
           b"\r\n"
           b"Sent while an attack runs.\r\n")


def stats(maild):
    return json.loads(mailctl_ok(maild, "--json", "stats"))


def wait_until(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.1)


def send_source(dest, token, sender, client_host):
    """MAIL, RCPT and SOURCE from client_host; the reply to SOURCE."""
    with smtplib.SMTP(DEST_HOST, dest.ports["smtp"], local_hostname="client.test",
                      timeout=IO_TIMEOUT, source_address=(client_host, 0)) as client:
        client.ehlo()
        code, _ = client.mail(sender)
        if code != 250:
            return code, b"MAIL refused"
        code, _ = client.rcpt("bob@dest.test")
        if code != 250:
            return code, b"RCPT refused"
        return client.docmd("SOURCE", token)


class Attacker:
    """Sends `burst` forged SOURCEs (made-up tokens, sender at `domains` in
    turn) every `every` seconds from ATTACKER_HOST, until stopped."""

    def __init__(self, test, dest, domains, burst, every):
        self.dest, self.domains, self.burst, self.every = dest, domains, burst, every
        self.replies = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        test.addCleanup(self.stop)

    def run(self):
        n = 0
        while self.running:
            started = time.monotonic()
            for _ in range(self.burst):
                domain = self.domains[n % len(self.domains)]
                n += 1
                try:
                    reply = send_source(self.dest, secrets.token_hex(16), "x@" + domain, ATTACKER_HOST)
                except (OSError, smtplib.SMTPException) as error:
                    reply = (0, str(error).encode())
                self.replies.append(reply)
            while self.running and time.monotonic() < started + self.every:
                time.sleep(0.05)

    def stop(self):
        self.running = False
        self.thread.join(timeout=IO_TIMEOUT + 5)


class FakeMx:
    """An MX on host:port that offers SOURCE and answers every GET by `get`
    (a function of the connection and the token). Counts connections, and the
    most open at once."""

    def __init__(self, test, host, port, get):
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.get = get
        self.connections = 0
        self.open = 0
        self.most_at_once = 0
        self.lock = threading.Lock()
        self.cut_after = []  # seconds from 354 to the client's close, per dripped answer
        self.running = True
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
            with self.lock:
                self.connections += 1
                self.open += 1
                self.most_at_once = max(self.most_at_once, self.open)
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client):
        client.settimeout(60)
        reader = client.makefile("rb")
        try:
            client.sendall(b"220 mx.fake.test ESMTP\r\n")
            while self.running:
                line = reader.readline()
                if not line:
                    break
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    client.sendall(b"250-mx.fake.test\r\n250 SOURCE\r\n")
                elif verb == b"GET":
                    self.get(self, client, line.split()[1].decode())
                elif verb == b"QUIT":
                    client.sendall(b"221 2.0.0 bye\r\n")
                    break
                else:
                    client.sendall(b"502 5.5.1 no\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            reader.close()
            client.close()

    def close(self):
        self.running = False
        self.listener.close()
        self.thread.join(timeout=5)


def unknown_token(mx, client, token):
    client.sendall(b"550 5.1.0 unknown token\r\n")


def drip(mx, client, token):
    """354, then one header line every 2 s, never the end; notes when the reader gave up
    (closed the connection, or sent anything, such as QUIT)."""
    client.sendall(b"354 2.0.0 message follows\r\n")
    started = time.monotonic()
    for n in range(30):
        try:
            client.sendall(b"X-Drip: %d\r\n" % n)
        except OSError:
            break
        readable, _, _ = select.select([client], [], [], 2)
        if readable:
            break
    mx.cut_after.append(time.monotonic() - started)
    raise OSError("the reader gave up")


class HardeningTest(unittest.TestCase):
    def start_pair(self, extra_mx=None, extra_hosts=None, dest_config=""):
        """origin.test's maild on ORIGIN_HOST and dest.test's on DEST_HOST."""
        mx = {"origin.test": [(10, "mx.origin.test")], "dest.test": [(10, "mx.dest.test")]}
        mx.update(extra_mx or {})
        hosts = {"mx.origin.test": ORIGIN_HOST, "mx.dest.test": DEST_HOST}
        hosts.update(extra_hosts or {})
        self.dns = DnsServer(self, mx=mx, hosts=hosts)
        self.origin = Maild(self, hostname="mx.origin.test", host=ORIGIN_HOST, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n[log]\nlevel = debug" % self.dns.endpoint))
        provision(self.origin, users=("alice@origin.test",), domains=("origin.test",))
        self.origin.start()
        self.dest = Maild(self, hostname="mx.dest.test", host=DEST_HOST, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n"
            "[delivery]\nsmtp_port = %d\nbind_address = %s\nretry_schedule = %ds\nlease_time = 30s\n"
            "[log]\nlevel = debug\n[reverse]\npoll_interval = 1s\n%s"
            % (self.dns.endpoint, self.origin.ports["smtp"], DEST_HOST, RETRY_INTERVAL, dest_config)))
        provision(self.dest, users=("bob@dest.test",), domains=("dest.test",))
        self.dest.start()

    def send_genuine(self):
        """alice's message offered at the origin and announced to dest; the time of its SOURCE."""
        token = secrets.token_hex(16)
        result = self.origin.mailctl("pickup", "inject", token, "--from", "alice@origin.test",
                                     "--to", "bob@dest.test", input=MESSAGE.decode())
        self.assertEqual(result.returncode, 0, result.stderr)
        sent = time.monotonic()
        code, text = send_source(self.dest, token, "alice@origin.test", ORIGIN_HOST)
        self.assertEqual(code, 250, text)
        return sent

    def bob(self):
        return deliveries(self.dest, "bob@dest.test")

    def test_forged_sources_in_the_origins_name_do_not_stall_its_genuine_message(self):
        # Without the fix the origin answers the forged tokens' GETs with 421 and
        # blocks dest for a minute, and the forged retrievals fill dest's limit for
        # origin.test: the genuine message waited minutes.
        self.start_pair(dest_config=(
            "trusted_peers = %s\nmax_pending_per_domain = 8\nmax_pending_per_client = 5"
            % ORIGIN_HOST))
        attacker = Attacker(self, self.dest, ["origin.test"], burst=6, every=2)
        # The attack is under way: dest has asked the origin for forged tokens, more
        # than [reverse] max_unknown_tokens (5) of them within the minute (at it, before the fix).
        wait_until(lambda: self.origin.log().count(": unknown token") >= 5,
                   "dest asks the origin for the forged tokens")
        sent = self.send_genuine()
        wait_until(self.bob, "the genuine message is fetched", timeout=RETRY_INTERVAL + 20)
        took = time.monotonic() - sent
        attacker.stop()
        self.assertLess(took, RETRY_INTERVAL, "the genuine fetch waited %.1fs" % took)
        self.assertEqual(self.bob()[0]["origin"], "verified")
        # The attacker ran into its own address's cap; the forgeries failed for good.
        self.assertIn(452, [code for code, _ in attacker.replies])
        self.assertTrue(any(b"from your address" in text for code, text in attacker.replies
                            if code == 452), attacker.replies)
        self.dest.wait_for_log("deferred: too many pending retrievals from %s" % ATTACKER_HOST)
        # The origin never refused dest's connection, however many unknown tokens it saw.
        self.assertNotIn("421 4.7.0", self.origin.log())
        self.assertNotIn("421 4.7.0", self.dest.log())
        # The forged retrievals end for good at their 550; none waits for another try.
        wait_until(lambda: stats(self.dest)["get_failed"] >= 5, "the forgeries are counted")
        wait_until(lambda: stats(self.dest)["retrievals_pending"] == 0, "nothing forged stays pending")

    def test_an_mx_that_drips_its_answer_is_cut_off_and_holds_only_its_share(self):
        drip_domains = ["drip%d.test" % n for n in range(1, 5)]
        self.start_pair(
            extra_mx={domain: [(10, "mx.drip.test")] for domain in drip_domains},
            extra_hosts={"mx.drip.test": DRIP_HOST},
            dest_config=("trusted_peers = %s, %s\n[delivery]\nworkers = 3\nper_destination = 2\n"
                         "[smtp]\ndata_timeout = 3s" % (ORIGIN_HOST, DRIP_HOST)))
        mx = FakeMx(self, DRIP_HOST, self.origin.ports["smtp"], drip)
        attacker = Attacker(self, self.dest, drip_domains, burst=4, every=60)
        wait_until(lambda: mx.connections >= 2, "dest fetches from the dripping MX")
        sent = self.send_genuine()
        wait_until(self.bob, "the genuine message is fetched")
        took = time.monotonic() - sent
        attacker.stop()
        self.assertLess(took, 5.0, "the genuine fetch waited %.1fs" % took)
        # Four domains on one MX address: never more than per_destination connections.
        self.assertLessEqual(mx.most_at_once, 2)
        self.dest.wait_for_log("too many retrieval connections to %s already" % DRIP_HOST)
        # Each dripped answer was cut at data_timeout (3 s), not when the MX stopped.
        wait_until(lambda: len(mx.cut_after) >= 2, "the dripped transfers are cut")
        for seconds in mx.cut_after:
            self.assertGreaterEqual(seconds, 2.5)
            self.assertLess(seconds, 3 + 1.5)  # the deadline, and some slack
        self.dest.wait_for_log("451 4.4.2 timeout after 3s receiving the message")

    def start_dest_alone(self, trusted):
        port = free_port(PRIVATE_MX_HOST)
        self.dns = DnsServer(self, mx={"private.test": [(10, "mx.private.test")]},
                             hosts={"mx.private.test": PRIVATE_MX_HOST})
        mx = FakeMx(self, PRIVATE_MX_HOST, port, unknown_token)
        self.dest = Maild(self, hostname="mx.dest.test", host=DEST_HOST, config_extra=(
            "[dns]\nservers = %s\ntimeout = 2s\n[delivery]\nsmtp_port = %d\nretry_schedule = 30s\n"
            "[reverse]\npoll_interval = 1s\ntrusted_peers = %s"
            % (self.dns.endpoint, port, trusted)))
        provision(self.dest, users=("bob@dest.test",), domains=("dest.test",))
        self.dest.start()
        return mx

    def test_an_mx_on_a_private_address_is_not_connected_to(self):
        mx = self.start_dest_alone(trusted="")
        token = secrets.token_hex(16)
        code, text = send_source(self.dest, token, "x@private.test", ATTACKER_HOST)
        self.assertEqual(code, 250, text)
        wait_until(lambda: stats(self.dest)["get_failed"] == 1, "the retrieval fails")
        self.dest.wait_for_log(
            "%s... from <x@private.test>: failed, not delivered: 550 5.7.1 not fetched from "
            "mx.private.test[%s]:%d: %s is not a public address, and neither [reverse] trusted_peers "
            "nor [delivery] routes name it" % (token[:8], PRIVATE_MX_HOST, mx.listener.getsockname()[1],
                                               PRIVATE_MX_HOST))
        self.dest.wait_for_log("retrieval: not connecting to mx.private.test[%s]" % PRIVATE_MX_HOST)
        time.sleep(1)
        self.assertEqual(mx.connections, 0)
        self.assertEqual(stats(self.dest)["retrievals_pending"], 0)
        # mailctl shows why it failed.
        [listed] = json.loads(mailctl_ok(self.dest, "--json", "retrieval", "list"))
        self.assertEqual((listed["token"], listed["from"], listed["state"]),
                         (token[:8] + "...", "x@private.test", "failed"))
        self.assertIn("%s is not a public address" % PRIVATE_MX_HOST, listed["last_error"])
        self.assertRegex(mailctl_ok(self.dest, "retrieval", "list"),
                         r"x@private\.test +%s +failed +1 +550 5\.7\.1 not fetched"
                         % ATTACKER_HOST.replace(".", r"\."))

    def test_an_mx_on_a_private_address_named_in_trusted_peers_is_connected_to(self):
        mx = self.start_dest_alone(trusted=PRIVATE_MX_HOST)
        token = secrets.token_hex(16)
        code, text = send_source(self.dest, token, "x@private.test", ATTACKER_HOST)
        self.assertEqual(code, 250, text)
        wait_until(lambda: stats(self.dest)["get_failed"] == 1, "the retrieval fails")
        self.dest.wait_for_log("%s... from <x@private.test>: failed, not delivered: 550 5.1.0" % token[:8])
        self.assertEqual(mx.connections, 1)


if __name__ == "__main__":
    unittest.main()
