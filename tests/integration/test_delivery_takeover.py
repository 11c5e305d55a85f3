"""Two maild nodes on one store: leases keep them from delivering a recipient
twice, and when a node dies (SIGKILL in the middle of a batch) the other one
delivers everything it left once its leases lapse, and of what the dead node
had sent only the message on the wire arrives twice: each message's outcome
is recorded as soon as the peer accepts it. A healthy node never logs a lost
lease. smtp-sink on 127.0.0.2 receives; dnsmasq answers the MX."""

import re
import signal
import smtplib
import time
import unittest

from dns_server import DnsServer
from maild_harness import IO_TIMEOUT, Maild, distinct_message, provision
from postfix_peer import SmtpSink, missing_tools
from test_delivery import port_free_on, wait_until

LEASE = 5  # seconds: [delivery] lease_time for these nodes (its minimum)
LOST_LEASE = "a lease on recipients in flight was lost"


def subjects(messages):
    """The Subject of each captured message, in capture order."""
    out = []
    for message in messages:
        match = re.search(rb"^Subject: (.*?)\r?$", message, re.M)
        out.append(match.group(1).decode() if match else None)
    return out


class TakeoverTest(unittest.TestCase):
    def setUp(self):
        problem = missing_tools()
        if problem:
            self.skipTest(problem)
        self.port = port_free_on(["127.0.0.2"])
        self.dns = DnsServer(self, mx={"example.org": [(10, "mx.example.org")]},
                             hosts={"mx.example.org": "127.0.0.2"})

    def node(self, sharing=None, hostname="node-a.example.test", per_destination=4):
        """A maild node; with sharing (another node), on that node's store."""
        extra = ("[dns]\nservers = %s\ntimeout = 2s\n"
                 "[delivery]\nsmtp_port = %d\nretry_schedule = 1s\nlease_time = %ds\n"
                 "per_destination = %d\n"
                 % (self.dns.endpoint, self.port, LEASE, per_destination))
        if sharing and not sharing.mysql:
            extra += "[store]\npath = %s\n" % sharing.store_path
        maild = Maild(self, config_extra=extra, hostname=hostname,
                      mysql=sharing.mysql if sharing else None)
        if not sharing:
            provision(maild, users=("alice@example.test",))
        return maild

    def queue_messages(self, maild, count, prefix):
        with smtplib.SMTP("127.0.0.1", maild.ports["smtp"], timeout=IO_TIMEOUT) as client:
            for n in range(count):
                subject = "%s %d" % (prefix, n)
                message = distinct_message(subject, to="bob@example.org")
                self.assertEqual(client.sendmail("alice@example.test", ["bob@example.org"], message), {})
        return ["%s %d" % (prefix, n) for n in range(count)]

    def test_a_dead_nodes_recipients_are_delivered_by_the_other_after_the_lease(self):
        # One second per message at the sink: node A is in the middle of its batch when killed.
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-w", "1"])
        a = self.node()
        a.start()
        expected = self.queue_messages(a, 10, "takeover")
        sink.wait_for_messages(3, timeout=30)
        a.stop(sig=signal.SIGKILL)
        killed_at = time.monotonic()
        before = len(sink.messages())

        b = self.node(sharing=a, hostname="node-b.example.test")
        b.start()
        wait_until(lambda: set(expected) <= set(subjects(sink.messages())),
                   "node B delivers what node A left", timeout=60)
        # A's recipients were leased until it died: B could take them only after the lease.
        self.assertGreaterEqual(time.monotonic() - killed_at, LEASE - 1)
        time.sleep(1.5)
        captured = subjects(sink.messages())
        duplicates = {s: captured.count(s) for s in expected if captured.count(s) > 1}
        print("takeover: %d delivered before the kill, %d captured in all, duplicates: %r"
              % (before, len(captured), duplicates))
        for s in expected:
            self.assertGreaterEqual(captured.count(s), 1, s)
        # At most the one message that was on the wire at the kill arrives twice.
        self.assertLessEqual(sum(n - 1 for n in duplicates.values()), 1, duplicates)
        wait_until(lambda: b.mailctl("--json", "queue", "list").stdout.strip() == "[]",
                   "the queue is empty")

    def test_after_a_kill_in_a_long_batch_only_the_message_on_the_wire_arrives_twice(self):
        # 30 messages queued while no peer listens: each attempt is refused and deferred.
        a = self.node(per_destination=1)
        a.start()
        expected = self.queue_messages(a, 30, "long batch")
        self.assertEqual(a.stop(), 0, a.output())
        for stream in (a.process.stdout, a.process.stderr):
            stream.close()
        # After a restart they are all due (retry_schedule = 1s): one claim, one batch, one
        # connection, one second per message at the sink. A is killed once the peer has
        # taken at least 10.
        sink = SmtpSink(self, host="127.0.0.2", port=self.port, options=["-w", "1"])
        time.sleep(1.5)
        a.start()
        sink.wait_for_messages(10, timeout=60)
        a.stop(sig=signal.SIGKILL)
        before = subjects(sink.messages())

        b = self.node(sharing=a, hostname="node-b.example.test", per_destination=1)
        b.start()
        wait_until(lambda: set(expected) <= set(subjects(sink.messages())),
                   "node B delivers what node A left", timeout=120)
        time.sleep(1.5)
        captured = subjects(sink.messages())
        duplicates = {s: captured.count(s) for s in expected if captured.count(s) > 1}
        print("long batch: %d delivered before the kill, %d captured in all, duplicates: %r"
              % (len(before), len(captured), duplicates))
        self.assertGreaterEqual(len(before), 10)
        self.assertEqual(a.log().count("connected to mx.example.org"), 1, "one connection")
        for s in expected:
            self.assertGreaterEqual(captured.count(s), 1, s)
        # Everything the peer had accepted was recorded, but perhaps the one on the wire.
        self.assertLessEqual(sum(n - 1 for n in duplicates.values()), 1, duplicates)
        self.assertEqual([s for s in duplicates if s not in before], [], duplicates)
        wait_until(lambda: b.mailctl("--json", "queue", "list").stdout.strip() == "[]",
                   "the queue is empty")
        # Node B, healthy, recorded ~20 outcomes one by one while renewing its leases.
        self.assertNotIn(LOST_LEASE, b.log())
        self.assertNotIn(LOST_LEASE, a.log())

    def test_two_live_nodes_never_deliver_one_recipient_twice(self):
        sink = SmtpSink(self, host="127.0.0.2", port=self.port)
        a = self.node()
        a.start()
        b = self.node(sharing=a, hostname="node-b.example.test")
        b.start()
        expected = self.queue_messages(a, 15, "from a") + self.queue_messages(b, 15, "from b")
        wait_until(lambda: len(sink.messages()) >= len(expected), "30 messages at the sink", timeout=60)
        time.sleep(2.0)  # and no more than that
        captured = subjects(sink.messages())
        self.assertEqual(sorted(captured), sorted(expected))
        for node in (a, b):
            self.assertNotIn(LOST_LEASE, node.log())


if __name__ == "__main__":
    unittest.main()
