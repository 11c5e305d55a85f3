"""maild's POP3 server against the real clients people use: mpop and
fetchmail, each with a private rc file in the test's folder (never ~/.mpoprc
or ~/.fetchmailrc; HOME points there too), over POP3S, over STLS with the
test certificate checked, and in plain text from loopback. What they deliver
is compared byte for byte with what went in by SMTP, after the lines the
client adds (its Received field, the mbox From_ line) and maild's trace."""

import os
import poplib
import re
import shutil
import subprocess
import unittest

from maild_harness import (IO_TIMEOUT, Maild, distinct_message, provision, smtp_send,
                           split_trace)

PASSWORD = "correct horse"  # a space: the rc files must quote it
BOB = "bob@example.test"
CLIENT_TIMEOUT = 60  # a whole client run; every run is bounded
MAILD_RECEIVED = b"Received: from client.test ([127.0.0.1])\r\n"  # smtp_send()'s, as maild writes it

# Lines each client must handle: dot-stuffing, and From_ lines in an mbox.
BODY = (b"First line.\r\n"
        b".\r\n"
        b".A line that starts with a dot.\r\n"
        b"From the start of a line (mboxrd quotes it).\r\n"
        b">From already quoted once.\r\n"
        b"\r\n"
        b"Last line.\r\n")


@unittest.skipUnless(shutil.which("mpop") and shutil.which("fetchmail"),
                     "mpop and fetchmail are test peers: scripts/install-deps.sh test")
class ClientCase(unittest.TestCase):
    def setUp(self):
        self.maild = Maild(self)
        provision(self.maild, [BOB], password=PASSWORD)
        self.maild.start()
        self.home = os.path.join(self.maild.dir, "home")  # the clients' HOME: nothing outside the test
        os.mkdir(self.home)
        self.messages = [distinct_message("client %s %d" % (self.id().rsplit(".", 1)[-1], n), BODY)
                         for n in range(3)]
        smtp_send(self.maild, [BOB], *self.messages)

    def path(self, *parts):
        return os.path.join(self.home, *parts)

    def rc_file(self, name, text):
        """A private rc file, mode 0600 (both clients refuse a readable one holding a password)."""
        path = self.path(name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        return path

    def run_client(self, *args):
        env = dict(os.environ, HOME=self.home, FETCHMAILHOME=self.home, TMPDIR=self.home)
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise AssertionError("%s exited %d:\n%s%s\n--- maild log:\n%s" % (
                args[0], result.returncode, result.stdout, result.stderr, self.maild.log()[-4000:]))
        return result

    def maildrop(self):
        """(messages, octets) left in bob's maildrop, by poplib."""
        client = poplib.POP3("127.0.0.1", self.maild.ports["pop3"], timeout=IO_TIMEOUT)
        client.user(BOB)
        client.pass_(PASSWORD)
        left = client.stat()
        client.quit()
        return left

    def assertTLS(self):
        """maild logged a TLS handshake for the client's session."""
        self.assertRegex(self.maild.log(), r" info \w+ TLS TLSv1\.[23] with cipher ")

    def assertDelivered(self, delivered, messages):
        """Each delivered text is maild's trace with the client's Received field
        somewhere before maild's (fetchmail keeps Return-Path first), then one of
        messages, byte for byte (in the file's LF line ends when the client wrote LF)."""
        contents = []
        for text in delivered:
            if b"\r" not in text:
                text = text.replace(b"\n", b"\r\n")
            ours = text.find(MAILD_RECEIVED)
            self.assertGreater(ours, -1, text)
            before = text[:ours].split(b"\r\n")[:-1]
            self.assertIn(b"Return-Path: <sender@remote.test>", before, text)
            for line in before:
                self.assertTrue(line.startswith((b"Return-Path: ", b"Received: ", b" ", b"\t")), text)
            trace, content = split_trace(text[ours:])
            self.assertIn(b"\tby mx.example.test (maild) with ESMTP id ", trace)
            contents.append(content)
        self.assertCountEqual(contents, messages)


def maildir_messages(folder):
    """The files mpop put into folder/new, in any order."""
    out = []
    for name in sorted(os.listdir(os.path.join(folder, "new"))):
        with open(os.path.join(folder, "new", name), "rb") as f:
            out.append(f.read())
    return out


def mboxrd_messages(path):
    """The messages of an mboxrd file: From_ line dropped, '>From' quoting undone,
    the blank line that separates messages removed."""
    with open(path, "rb") as f:
        data = f.read()
    messages = []
    for line in data.split(b"\n")[:-1]:
        if line.startswith(b"From "):
            messages.append([])
            continue
        if re.match(rb">+From ", line):
            line = line[1:]
        messages[-1].append(line)
    return [b"".join(l + b"\n" for l in m[:-1]) for m in messages if m and m[-1] == b""]


class Mpop(ClientCase):
    def mpoprc(self, account):
        return self.rc_file("mpoprc", (
            "defaults\n"
            "timeout 20\n"
            "tls_trust_file %s\n"
            "tls_host_override mx.example.test\n"
            "uidls_file %s\n"
            "\n"
            "account bob\n"
            "host 127.0.0.1\n"
            "user %s\n"
            'password "%s"\n'
            "%s") % (self.maild.cert, self.path("uidls"), BOB, PASSWORD, account))

    def mpop(self, rc, *args):
        return self.run_client("mpop", "-C", rc, *args, "bob")

    def new_maildir(self, name):
        folder = self.path(name)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(folder, sub))
        return folder

    def test_pop3s_into_a_maildir(self):
        maildir = self.new_maildir("Maildir")
        rc = self.mpoprc("port %d\ntls on\ntls_starttls off\nauth on\ndelivery maildir %s\n"
                         % (self.maild.ports["pop3s"], maildir))
        self.mpop(rc, "--quiet")
        self.assertDelivered(maildir_messages(maildir), self.messages)
        self.assertIn("on pop3s", self.maild.log())
        self.assertTLS()
        self.assertEqual(self.maildrop(), (0, 0))  # mpop deleted what it delivered

    def test_stls_into_an_mbox(self):
        mbox = self.path("mbox")
        rc = self.mpoprc("port %d\ntls on\ntls_starttls on\nauth on\ndelivery mbox %s\n"
                         % (self.maild.ports["pop3"], mbox))
        self.mpop(rc, "--quiet")
        self.assertDelivered(mboxrd_messages(mbox), self.messages)
        self.assertTLS()
        self.assertEqual(self.maildrop(), (0, 0))

    def test_plain_from_loopback_keeps_the_mail_and_fetches_only_new_ones_by_uidl(self):
        maildir = self.new_maildir("Maildir")
        rc = self.mpoprc("port %d\ntls off\nauth user\nkeep on\ndelivery maildir %s\n"
                         % (self.maild.ports["pop3"], maildir))
        self.mpop(rc, "--quiet")
        self.assertDelivered(maildir_messages(maildir), self.messages)
        self.mpop(rc, "--quiet")  # nothing new: the UIDLs are those of the first run
        self.assertEqual(len(maildir_messages(maildir)), 3)
        later = distinct_message("client later", BODY)
        smtp_send(self.maild, [BOB], later)
        self.mpop(rc, "--quiet")
        self.assertDelivered(maildir_messages(maildir), self.messages + [later])
        self.assertEqual(self.maildrop()[0], 4)  # kept
        self.assertNotIn(" TLS ", self.maild.log())


class Fetchmail(ClientCase):
    def fetchmailrc(self, service, options, server_options=""):
        """One poll of 127.0.0.1 delivering each message to its own file by mda."""
        os.mkdir(self.path("delivered"))
        return self.rc_file("fetchmailrc", (
            "set no bouncemail\n"
            "poll 127.0.0.1 with proto POP3 port %d timeout 20 %s\n"
            '  user "%s" there with password "%s" is "%s" here\n'
            "  %s\n"
            '  mda "cat > %s/msg.$$"\n') % (self.maild.ports[service], server_options, BOB, PASSWORD,
                                            os.environ.get("USER", "root"), options, self.path("delivered")))

    def fetchmail(self, rc):
        return self.run_client("fetchmail", "-f", rc, "-d0", "--nosyslog", "--pidfile", self.path("fetchmail.pid"),
                               "--idfile", self.path("fetchids"), "-v")

    def delivered(self):
        folder = self.path("delivered")
        out = []
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as f:
                out.append(f.read())
        return out

    def test_pop3s_with_the_certificate_checked(self):
        rc = self.fetchmailrc("pop3s", 'ssl sslcertck sslcertfile "%s" sslcommonname mx.example.test '
                              'sslproto tls1.2+' % self.maild.cert)
        result = self.fetchmail(rc)
        self.assertNotIn("POP3> STLS", result.stdout)
        self.assertIn("SSL/TLS: using protocol TLSv1.", result.stdout)
        self.assertDelivered(self.delivered(), self.messages)
        self.assertTLS()
        self.assertEqual(self.maildrop(), (0, 0))

    def test_stls_with_the_certificate_checked(self):
        rc = self.fetchmailrc("pop3", 'sslcertck sslcertfile "%s" sslcommonname mx.example.test '
                              'sslproto tls1.2+' % self.maild.cert)
        result = self.fetchmail(rc)
        self.assertIn("POP3> STLS", result.stdout)
        self.assertIn("upgrade to TLS succeeded", result.stdout)
        self.assertDelivered(self.delivered(), self.messages)
        self.assertTLS()
        self.assertEqual(self.maildrop(), (0, 0))

    def test_plain_from_loopback(self):
        rc = self.fetchmailrc("pop3", "sslproto '' no sslcertck", "auth password")
        result = self.fetchmail(rc)
        self.assertIn("POP3> USER bob@example.test", result.stdout)
        self.assertNotIn(" TLS ", self.maild.log())
        self.assertDelivered(self.delivered(), self.messages)
        self.assertEqual(self.maildrop(), (0, 0))


del ClientCase  # a base, not a test case

if __name__ == "__main__":
    unittest.main()
