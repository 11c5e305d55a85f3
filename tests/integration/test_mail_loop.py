"""Mail loops through the real maild: two instances on 127.0.0.2 and 127.0.0.3
whose static routes send loop.test to each other pass a message back and
forth until it has [smtp] max_hops Received fields, then its sender (a local
mailbox) gets exactly one notice and the traffic ends; a route that leads
back to maild's own listener bounces at once (RFC 5321 5.1, 6.3)."""

import json
import smtplib
import time
import unittest

from maild_harness import IO_TIMEOUT, Maild, deliveries, export_message, mailctl_ok, provision

# Every wait of these tests is bounded.
LOOP_TIMEOUT = 60.0
A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"
SENDER = "sender@a.test"


def wait_until(predicate, what, timeout=LOOP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not within %ss: %s" % (timeout, what))
        time.sleep(0.1)


def queue_empty(maild):
    return json.loads(mailctl_ok(maild, "--json", "queue", "list")) == []


def notices(maild):
    return [d for d in deliveries(maild, SENDER) if d["from"] == "<>"]


def accepted_from_sender(maild):
    """How often maild stored (and queued) a message from SENDER: one per hop through it."""
    return sum(1 for line in maild.log().splitlines()
               if "stored " in line and "from <%s>:" % SENDER in line)


class MailLoop(unittest.TestCase):
    def instance(self, host, name, domain, users=()):
        maild = Maild(self, hostname=name, host=host, tls=False)
        provision(maild, users=users, domains=(domain,))
        return maild

    def configure(self, maild, routes, extra=""):
        maild.write_config("[delivery]\nroutes = %s\nretry_schedule = 1s\n%s" % (routes, extra))

    def send(self, maild, recipient, subject):
        with smtplib.SMTP(maild.host, maild.ports["smtp"], local_hostname="client.test",
                          timeout=IO_TIMEOUT) as client:
            message = b"Subject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\nround and round\r\n" % (
                subject.encode(), subject.encode())
            self.assertEqual(client.sendmail(SENDER, [recipient], message), {})

    def test_two_instances_routing_to_each_other_stop_at_the_hop_limit(self):
        a = self.instance(A_HOST, "mx-a.loop.test", "a.test", users=(SENDER,))
        b = self.instance(B_HOST, "mx-b.loop.test", "b.test")
        a_next = "%s:%d" % (A_HOST, a.ports["smtp"])
        b_next = "%s:%d" % (B_HOST, b.ports["smtp"])
        self.configure(a, "loop.test = %s" % b_next)
        self.configure(b, "loop.test = %s, a.test = %s" % (a_next, a_next))
        a.start()
        b.start()

        self.send(a, "nobody@loop.test", "looping")
        notice = wait_until(lambda: notices(a), "the sender's notice")
        wait_until(lambda: queue_empty(a) and queue_empty(b), "both queues empty")
        # 50 hops: A stored it with 0, 2, ..., 50 Received fields, B with 1, 3, ..., 49;
        # then A would have sent it with 51 and bounced it instead.
        self.assertEqual(accepted_from_sender(a), 26, a.log()[-4000:])
        self.assertEqual(accepted_from_sender(b), 25, b.log()[-4000:])
        self.assertIn("too many hops (51 Received fields, [smtp] max_hops = 50)", a.log())
        self.assertEqual(len(notice), 1)
        text = export_message(a, notice[0]["id"])
        self.assertIn(b"5.4.6", text)
        self.assertIn(b"nobody@loop.test", text)

        # No endless traffic: a while later nothing has moved.
        time.sleep(3)
        self.assertEqual(accepted_from_sender(a), 26)
        self.assertEqual(accepted_from_sender(b), 25)
        self.assertEqual(len(notices(a)), 1)
        self.assertTrue(queue_empty(a) and queue_empty(b))

    def test_a_lower_hop_limit_stops_the_loop_sooner(self):
        a = self.instance(A_HOST, "mx-a.loop.test", "a.test", users=(SENDER,))
        b = self.instance(B_HOST, "mx-b.loop.test", "b.test")
        a_next = "%s:%d" % (A_HOST, a.ports["smtp"])
        b_next = "%s:%d" % (B_HOST, b.ports["smtp"])
        # B refuses at its end of DATA (554 5.4.6) before A's queue would bounce it.
        self.configure(a, "loop.test = %s" % b_next, "[smtp]\nmax_hops = 10")
        self.configure(b, "loop.test = %s, a.test = %s" % (a_next, a_next), "[smtp]\nmax_hops = 4")
        a.start()
        b.start()
        self.send(a, "nobody@loop.test", "refused")
        notice = wait_until(lambda: notices(a), "the sender's notice")
        wait_until(lambda: queue_empty(a) and queue_empty(b), "both queues empty")
        # A stored it with 0, 2, 4 Received fields; B with 1, 3; B refused the one with 5.
        self.assertEqual(accepted_from_sender(a), 3, a.log()[-4000:])
        self.assertEqual(accepted_from_sender(b), 2, b.log()[-4000:])
        self.assertIn("554 5.4.6 too many hops (5 Received fields): mail loop?", a.log())
        self.assertEqual(len(notice), 1)
        time.sleep(2)
        self.assertEqual(len(notices(a)), 1)

    def test_a_route_to_our_own_listener_bounces_at_once(self):
        a = self.instance(A_HOST, "mx-a.loop.test", "a.test", users=(SENDER,))
        self.configure(a, "self.test = %s:%d" % (A_HOST, a.ports["smtp"]))
        a.start()
        self.send(a, "nobody@self.test", "self")
        notice = wait_until(lambda: notices(a), "the sender's notice")
        wait_until(lambda: queue_empty(a), "the queue empty")
        self.assertEqual(accepted_from_sender(a), 1)  # never sent to itself
        text = export_message(a, notice[0]["id"])
        self.assertIn(b"5.4.6", text)
        self.assertIn(b"loops back to myself", text)


if __name__ == "__main__":
    unittest.main()
