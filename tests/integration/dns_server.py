"""Real DNS for integration tests: a private dnsmasq on a free loopback port
(UDP and TCP) that answers MX and A records for the test domains, pointing at
127.0.0.x, and nothing else (every other name under .test is NXDOMAIN, names
elsewhere are refused: there is no upstream). maild uses it through
[dns] servers = 127.0.0.1:PORT.

    dns = DnsServer(self, mx={"example.org": [(10, "mx.example.org")]},
                    hosts={"mx.example.org": "127.0.0.2"})
    maild = Maild(self, config_extra="[dns]\\nservers = %s" % dns.endpoint)

Stopped by its own PID at cleanup; every wait is bounded."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from maild_harness import IO_TIMEOUT, _tmp_root

DNSMASQ_CANDIDATES = ("/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq")


def dnsmasq_binary():
    for candidate in DNSMASQ_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_udp_and_tcp_port(host="127.0.0.1"):
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            tcp.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise AssertionError("no free UDP+TCP port on %s" % host)


def _query(port, name, qtype=15):
    """One UDP query (default MX); True when dnsmasq answered at all."""
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", 0x4d41, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(packet, ("127.0.0.1", port))
            return len(s.recv(512)) >= 12
        except OSError:
            return False


class DnsServer:
    """dnsmasq serving mx ({domain: [(preference, host), ...]}; host "." is a
    null MX) and hosts ({name: address or [addresses]})."""

    def __init__(self, test, mx=None, hosts=None, local_zones=("test",)):
        binary = dnsmasq_binary()
        if binary is None:
            test.skipTest("dnsmasq is missing: run scripts/install-deps.sh test")
        self.dir = tempfile.mkdtemp(prefix="dnsmasq-", dir=_tmp_root())
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        records = ["--local=/%s/" % zone for zone in local_zones]
        for domain, hosts_of in (mx or {}).items():
            for preference, host in hosts_of:
                records.append("--mx-host=%s,%s,%d" % (domain, host, preference))
        for name, addresses in (hosts or {}).items():
            if isinstance(addresses, str):
                addresses = [addresses]
            records.append("--host-record=%s,%s" % (name, ",".join(addresses)))
        self.process = None
        test.addCleanup(self.cleanup)
        for _ in range(5):
            self.port = _free_udp_and_tcp_port()
            # --keep-in-foreground, not --no-daemon: debug mode serves TCP inline.
            command = [binary, "--keep-in-foreground", "--port=%d" % self.port,
                       "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                       "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
                       "--log-facility=" + self.log_path, "--log-queries", *records]
            self.log_file = open(os.path.join(self.dir, "stderr"), "wb")
            self.process = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                if _query(self.port, "probe.test"):
                    return
                time.sleep(0.05)
            self._stop()  # the port was taken meanwhile, or it died: try another
        raise AssertionError("dnsmasq did not start: %s" % self.log())

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        text = ""
        for name in ("dnsmasq.log", "stderr"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def _stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=IO_TIMEOUT)
        if getattr(self, "log_file", None):
            self.log_file.close()
            self.log_file = None

    def cleanup(self):
        self._stop()
        shutil.rmtree(self.dir, ignore_errors=True)
