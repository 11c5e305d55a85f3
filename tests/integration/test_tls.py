"""TLS as clients and peers see it on every port of the real maild: TLS 1.2
offers only forward-secret AEAD suites (Mozilla's "intermediate" profile),
every TLS session ends with close_notify (inbound SMTP, POP3, and outbound
delivery), and an expired or soon-expiring certificate is warned about by
--check-config and at start."""

import datetime
import os
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from maild_harness import (IO_TIMEOUT, MAILD_BIN, Maild, make_certificate, provision,
                           distinct_message)

# TLS 1.2 suites a client may ask for, and whether maild must agree.
REFUSED_TLS12 = {
    "AES128-GCM-SHA256": "RSA key exchange: no forward secrecy",
    "AES256-SHA": "RSA key exchange and CBC",
    "ECDHE-RSA-AES128-SHA": "CBC",
    "ECDHE-RSA-AES256-SHA384": "CBC",
    "DHE-RSA-AES128-SHA256": "CBC",
}
ACCEPTED_TLS12 = ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                  "ECDHE-RSA-CHACHA20-POLY1305", "DHE-RSA-AES128-GCM-SHA256")


def tls12_context(cipher):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher + ":@SECLEVEL=0")
    return context


def any_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def recv_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def reply(sock):
    """The last line of an SMTP reply."""
    while True:
        line = recv_line(sock)
        if len(line) < 4 or line[3:4] != b"-":
            return line


def secured(maild, service, context):
    """A TLS session on service: implicit on submissions and pop3s, STARTTLS on smtp."""
    sock = socket.create_connection((maild.host, maild.ports[service]), timeout=IO_TIMEOUT)
    if service == "smtp":
        reply(sock)
        sock.sendall(b"EHLO client.test\r\n")
        reply(sock)
        sock.sendall(b"STARTTLS\r\n")
        if not reply(sock).startswith(b"220 "):
            raise AssertionError("STARTTLS refused")
    try:
        return context.wrap_socket(sock)
    except Exception:
        sock.close()
        raise


class ServerProfileTest(unittest.TestCase):
    def setUp(self):
        self.maild = Maild(self, tls=False)
        self.maild.cert, self.maild.key = make_certificate(self.maild.dir, key_type="rsa")
        self.maild.write_config()
        self.maild.start()

    def test_tls12_refuses_suites_without_forward_secrecy_or_aead_on_every_port(self):
        for service in ("smtp", "submissions", "pop3s"):
            for cipher, why in REFUSED_TLS12.items():
                with self.subTest(service=service, cipher=cipher, why=why):
                    with self.assertRaises(ssl.SSLError):
                        secured(self.maild, service, tls12_context(cipher)).close()

    def test_tls12_agrees_on_the_intermediate_suites_and_tls13_works(self):
        for service in ("smtp", "submissions", "pop3s"):
            for cipher in ACCEPTED_TLS12:
                with self.subTest(service=service, cipher=cipher):
                    tls = secured(self.maild, service, tls12_context(cipher))
                    self.assertEqual((tls.version(), tls.cipher()[0]), ("TLSv1.2", cipher))
                    tls.close()
            tls = secured(self.maild, service, any_context())
            self.assertEqual(tls.version(), "TLSv1.3")
            tls.close()


class CloseNotifyTest(unittest.TestCase):
    """Python's unwrap() succeeds only when the peer answers with its own close_notify."""

    def setUp(self):
        self.maild = Maild(self)
        self.maild.start()

    def test_smtp_sessions_end_with_close_notify_after_quit(self):
        for service in ("smtp", "submissions"):
            with self.subTest(service=service):
                tls = secured(self.maild, service, any_context())
                if service == "submissions":
                    self.assertTrue(reply(tls).startswith(b"220 "))
                tls.sendall(b"EHLO client.test\r\n")
                reply(tls)
                tls.sendall(b"QUIT\r\n")
                self.assertTrue(reply(tls).startswith(b"221 "))
                started = time.monotonic()
                plain = tls.unwrap()
                self.assertLess(time.monotonic() - started, 2.0)
                plain.close()

    def test_pop3s_sessions_end_with_close_notify_after_quit(self):
        tls = secured(self.maild, "pop3s", any_context())
        self.assertTrue(recv_line(tls).startswith(b"+OK"))
        tls.sendall(b"QUIT\r\n")
        self.assertTrue(recv_line(tls).startswith(b"+OK"))
        tls.unwrap().close()

    def test_a_session_closed_for_a_timeout_sends_close_notify_too(self):
        self.maild.stop()
        self.maild.write_config("[smtp]\ncommand_timeout = 1s\n")
        self.maild.start()
        tls = secured(self.maild, "submissions", any_context())
        self.assertTrue(reply(tls).startswith(b"220 "))
        self.assertTrue(reply(tls).startswith(b"421 "))
        tls.unwrap().close()


class TlsPeer:
    """One SMTP peer on 127.0.0.1 that offers STARTTLS, takes one message and
    records whether maild closed TLS with close_notify after QUIT."""

    def __init__(self, test, cert, key):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(IO_TIMEOUT * 3)
        self.port = self.listener.getsockname()[1]
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.result = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        test.addCleanup(self.listener.close)

    def _serve(self):
        try:
            sock, _ = self.listener.accept()
            sock.settimeout(IO_TIMEOUT)
            sock.sendall(b"220 peer.test ESMTP\r\n")
            recv_line(sock)
            sock.sendall(b"250-peer.test\r\n250 STARTTLS\r\n")
            recv_line(sock)
            sock.sendall(b"220 go ahead\r\n")
            tls = self.context.wrap_socket(sock, server_side=True)
            for answer in (b"250-peer.test\r\n250 8BITMIME\r\n", b"250 ok\r\n", b"250 ok\r\n",
                           b"354 go\r\n"):
                recv_line(tls)
                tls.sendall(answer)
            while recv_line(tls) not in (b".\r\n", b""):
                pass
            tls.sendall(b"250 queued\r\n")
            recv_line(tls)  # QUIT
            tls.sendall(b"221 bye\r\n")
            tls.unwrap().close()
            self.result = "close_notify"
        except Exception as error:  # recorded for the test to show
            self.result = "%s: %s" % (type(error).__name__, error)


class OutboundCloseNotifyTest(unittest.TestCase):
    def test_delivery_ends_the_peers_tls_session_with_close_notify(self):
        maild = Maild(self)
        peer = TlsPeer(self, maild.cert, maild.key)
        maild.write_config("[delivery]\nroutes = example.org = 127.0.0.1:%d\n"
                           "retry_schedule = 1s\n" % peer.port)
        provision(maild, users=("alice@example.test",))
        maild.start()
        with smtplib.SMTP(maild.host, maild.ports["smtp"], timeout=IO_TIMEOUT) as client:
            client.sendmail("alice@example.test", ["bob@example.org"],
                            distinct_message("outward", to="bob@example.org"))
        peer.thread.join(timeout=IO_TIMEOUT * 3)
        self.assertEqual(peer.result, "close_notify")


class CertificateWarningTest(unittest.TestCase):
    def check_config(self, maild):
        return subprocess.run([MAILD_BIN, "--config", maild.config_path, "--check-config"],
                              capture_output=True, text=True, timeout=60)

    def test_a_certificate_expiring_within_14_days_is_warned_about(self):
        maild = Maild(self, tls=False)
        maild.cert, maild.key = make_certificate(maild.dir, days=13)
        maild.write_config()
        checked = self.check_config(maild)
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertRegex(checked.stderr, r"maild: warning: tls\.cert .*cert\.pem .* expires in 12 days")
        maild.start()
        maild.wait_for_log("expires in 12 days")

    def test_a_certificate_with_15_days_left_is_not(self):
        maild = Maild(self, tls=False)
        maild.cert, maild.key = make_certificate(maild.dir, days=15)
        maild.write_config()
        checked = self.check_config(maild)
        self.assertEqual((checked.returncode, checked.stderr), (0, ""))

    def test_an_expired_certificate_is_warned_about(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        maild = Maild(self, tls=False)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=30))
                .not_valid_after(now - datetime.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        maild.cert = os.path.join(maild.dir, "cert.pem")
        maild.key = os.path.join(maild.dir, "key.pem")
        with open(maild.cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(maild.key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        maild.write_config()
        checked = self.check_config(maild)
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertRegex(checked.stderr, r"maild: warning: tls\.cert .*cert\.pem .* has expired")


if __name__ == "__main__":
    unittest.main()
