"""Admission control on the real binary: max_connections, max_connections_per_ip,
the protocols' busy replies, and a burst of 1,000 connections. Runs alone (RUN_SERIAL):
its timing must not compete with other tests for the machine's two cores."""

import resource
import selectors
import socket
import time
import unittest

from maild_harness import IO_TIMEOUT, Maild


def connect_all(port, count, host="127.0.0.1"):
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        socks.append(s)
    return socks


def first_line(sock):
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(512)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()


class Admission(unittest.TestCase):
    def test_max_connections_50_of_100(self):
        maild = Maild(self, "[server]\nmax_connections = 50\nmax_connections_per_ip = 1000").start()
        socks = connect_all(maild.ports["smtp"], 100)
        try:
            replies = [first_line(s) for s in socks]  # each recv bounded by IO_TIMEOUT
        finally:
            for s in socks:
                s.close()
        greeted = [r for r in replies if r.startswith("220 ")]
        refused = [r for r in replies if r.startswith("421 4.3.2")]
        self.assertEqual((len(greeted), len(refused)), (50, 50), replies)

    def test_per_ip_limit_and_release(self):
        maild = Maild(self, "[server]\nmax_connections_per_ip = 3").start()
        socks = connect_all(maild.ports["smtp"], 3)
        try:
            self.assertTrue(all(first_line(s).startswith("220 ") for s in socks))
            d = maild.dialogue()
            self.assertTrue(d.line().startswith("421 4.3.2"))
            self.assertTrue(d.closed())
            socks.pop().close()
            deadline = time.monotonic() + IO_TIMEOUT
            while True:  # the freed place is given back as soon as the session ends
                d = maild.dialogue()
                line = d.line()
                d.close()
                if line.startswith("220 ") or time.monotonic() > deadline:
                    break
            self.assertTrue(line.startswith("220 "), line)
        finally:
            for s in socks:
                s.close()

    def test_pop3_busy_reply(self):
        maild = Maild(self, "[server]\nmax_connections = 1").start()
        maild.admitted_dialogue("pop3", "+OK")
        d = maild.dialogue("pop3")
        self.assertEqual(d.line(), "-ERR [SYS/TEMP] too many connections, try again later")
        self.assertTrue(d.closed())
        d = maild.dialogue("pop3s", tls=True)
        self.assertTrue(d.line().startswith("-ERR [SYS/TEMP]"))

    def test_burst_of_1000_connections_all_greeted_within_2s(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        maild = Maild(self, "[server]\nmax_connections_per_ip = 2000\nlisten_backlog = 2048").start()
        selector = selectors.DefaultSelector()
        count = 1000
        started = {}
        greeted = {}
        socks = []
        try:
            begin = time.monotonic()
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", maild.ports["smtp"]))
                started[s.fileno()] = time.monotonic()
                selector.register(s, selectors.EVENT_READ, bytearray())
                socks.append(s)
            opened_in = time.monotonic() - begin
            deadline = time.monotonic() + 10
            while len(greeted) < count and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.5):
                    try:
                        chunk = key.fileobj.recv(512)
                    except BlockingIOError:
                        continue
                    key.data.extend(chunk)
                    if b"\r\n" in key.data or not chunk:
                        greeted[key.fileobj.fileno()] = (time.monotonic(), bytes(key.data))
                        selector.unregister(key.fileobj)
        finally:
            for s in socks:
                s.close()
        self.assertLess(opened_in, 1.0, "the test could not open 1000 connections in 1 s")
        self.assertEqual(len(greeted), count, "some connections were never greeted")
        late = [fd for fd, (at, _) in greeted.items() if at - started[fd] > 2.0]
        not_220 = [data for _, data in greeted.values() if not data.startswith(b"220 ")]
        self.assertEqual(not_220, [])
        self.assertEqual(late, [], "%d greetings took more than 2 s" % len(late))



if __name__ == "__main__":
    unittest.main()
