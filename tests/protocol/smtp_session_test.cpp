// SMTP session transcripts in memory: every verb, the reply codes, the limits
// at and past their edge, TLS, AUTH, pipelining, shutdown and a failing store.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "maild/core/base64.hpp"
#include "net/content_budget.hpp"
#include "session_fixture.hpp"
#include "smtp/session.hpp"

namespace maild::testing {
namespace {

using net::Service;

const std::string message = "Subject: hello\r\n\r\nline one\r\n..starts with a dot\r\n";

class SmtpSession : public SessionFixture {
 protected:
  Client connect(Service service = Service::smtp, const char* remote = "127.0.0.1",
                 const std::string& early = {}) {
    return SessionFixture::connect(&smtp::serve<LocalSocket>, service, remote, early);
  }
  Client greeted(Service service = Service::smtp, const char* remote = "127.0.0.1") {
    auto client = connect(service, remote);
    client.expect("220 mx.example.test ESMTP");
    return client;
  }
  Client said_ehlo(Service service = Service::smtp, const char* remote = "127.0.0.1") {
    auto client = greeted(service, remote);
    client.send("EHLO client.example\r\n");
    client.expect("250 ");
    return client;
  }
  std::vector<store::MailSummary> stored() { return store().admin().list_mail(0, std::nullopt); }
};

TEST_F(SmtpSession, EhloListsTheExtensions) {
  auto c = greeted();
  c.send("EHLO client.example\r\n");
  const auto lines = c.reply();
  const std::vector<std::string> expected{"250-mx.example.test greets client.example",
                                          "250-PIPELINING",
                                          "250-SIZE 36700160",
                                          "250-8BITMIME",
                                          "250-ENHANCEDSTATUSCODES",
                                          "250-STARTTLS",
                                          "250-SMTPUTF8",
                                          "250-CHUNKING",
                                          "250-DSN",
                                          "250-SOURCE",
                                          "250 HELP"};
  EXPECT_EQ(lines, expected);  // no AUTH before TLS with require_tls_for_auth
}

TEST_F(SmtpSession, HeloGivesAPlainReply) {
  auto c = greeted();
  c.send("HELO client.example\r\n");
  EXPECT_EQ(c.reply(), std::vector<std::string>{"250 mx.example.test"});
  c.send("MAIL FROM:<a@b.example> SIZE=10\r\n");
  c.expect("555 5.5.4");  // parameters need EHLO
}

TEST_F(SmtpSession, AWholeTransactionIsStoredByteExact) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<alice@origin.test>\r\n");
  c.expect("250 2.1.0");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("250 2.1.5");
  c.send("DATA\r\n");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0 OK stored as ");
  c.send("QUIT\r\n");
  c.expect("221 2.0.0");
  EXPECT_TRUE(c.closed());
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  const auto detail = store().admin().get_mail(mail[0].id);
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->content, "Subject: hello\r\n\r\nline one\r\n.starts with a dot\r\n");
  EXPECT_EQ(
      detail->trace.rfind(
          "Return-Path: <alice@origin.test>\r\nReceived: from client.example ([127.0.0.1])\r\n", 0),
      0u)
      << detail->trace;
  EXPECT_NE(detail->trace.find("by mx.example.test (maild) with ESMTP id TEST0"),
            std::string::npos);
  EXPECT_NE(detail->trace.find("for <bob@example.test>;"), std::string::npos);
}

TEST_F(SmtpSession, APipelinedTransactionInOneWriteGetsItsRepliesInOrder) {
  auto c = said_ehlo();
  c.send(
      "MAIL FROM:<alice@origin.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT "
      "TO:<nobody@example.test>\r\n"
      "RCPT TO:<carol@example.test>\r\nDATA\r\n" +
      message + ".\r\nNOOP\r\nQUIT\r\n");
  c.expect("250 2.1.0");
  c.expect("250 2.1.5");
  c.expect("550 5.1.1 <nobody@example.test>");
  c.expect("250 2.1.5");
  c.expect("354 ");
  c.expect("250 2.0.0");
  c.expect("250 2.0.0 OK");
  c.expect("221 ");
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 2u);  // one delivery per mailbox, the content stored once
  EXPECT_EQ(store().admin().status().messages, 1);
}

TEST_F(SmtpSession, SequenceErrors) {
  auto c = greeted();
  c.send("MAIL FROM:<a@b.example>\r\n");
  c.expect("503 5.5.1");  // before EHLO
  c.send("EHLO client.example\r\n");
  c.expect("250 ");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");  // before MAIL
  c.send("DATA\r\n");
  c.expect("503 5.5.1");
  c.send("MAIL FROM:<a@b.example>\r\n");
  c.expect("250 ");
  c.send("MAIL FROM:<a@b.example>\r\n");
  c.expect("503 5.5.1");  // nested
  c.send("DATA\r\n");
  c.expect("554 5.5.1");  // no valid recipients
  c.send("RSET\r\n");
  c.expect("250 2.0.0");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");  // RSET ended the transaction
}

TEST_F(SmtpSession, SyntaxAndUnknownCommands) {
  auto c = said_ehlo();
  c.send("MAIL FROM:bob@example.test\r\n");
  c.expect("501 5.1.7");
  c.send("MAIL FROM:<a@b.example> FROB=1\r\n");
  c.expect("555 5.5.4");
  c.send("XYZZY\r\n");
  c.expect("500 5.5.1");
  c.send("EXPN list\r\n");
  c.expect("502 5.5.1");
  c.send("VRFY bob\r\n");
  c.expect("252 2.5.0");
  c.send("HELP\r\n");
  c.expect("214 2.0.0");
  c.send("NOOP\r\n");
  c.expect("250 2.0.0");
}

TEST_F(SmtpSession, RecipientsLocalUnknownAndRelay) {
  auto outside = said_ehlo(Service::smtp, "192.0.2.7");
  outside.send("MAIL FROM:<a@b.example>\r\n");
  outside.expect("250 ");
  outside.send("RCPT TO:<someone@elsewhere.example>\r\n");
  outside.expect("554 5.7.1");
  outside.send("RCPT TO:<nobody@example.test>\r\n");
  outside.expect("550 5.1.1");
  outside.send("RCPT TO:<BOB@EXAMPLE.TEST>\r\n");
  outside.expect("250 2.1.5");

  auto inside = said_ehlo(Service::smtp, "127.0.0.1");
  inside.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<someone@elsewhere.example>\r\n");
  inside.expect("250 ");
  inside.expect("250 2.1.5");  // relay allowed: queued for delivery at DATA's end
}

TEST_F(SmtpSession, RelayedRecipientsAreQueuedWithTheirDsnParametersInTheSameCommit) {
  auto c = said_ehlo(Service::smtp, "127.0.0.1");
  c.send("MAIL FROM:<alice@example.test> RET=HDRS ENVID=QQ+2B1\r\n");
  c.expect("250 ");
  c.send(
      "RCPT TO:<Carol@Elsewhere.example> NOTIFY=FAILURE,DELAY "
      "ORCPT=rfc822;carol@elsewhere.example\r\n");
  c.expect("250 2.1.5");
  c.send("RCPT TO:<carol@elsewhere.example>\r\n");  // the same address again: queued once
  c.expect("250 2.1.5");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("250 2.1.5");
  c.send("DATA\r\n");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  const auto queued = store().queue().list({});
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].reverse_path, "alice@example.test");
  EXPECT_EQ(queued[0].envid, "QQ+1");
  EXPECT_EQ(queued[0].ret, store::DsnReturn::headers);
  ASSERT_EQ(queued[0].recipients.size(), 1u);
  EXPECT_EQ(queued[0].recipients[0].address, "Carol@elsewhere.example");  // domains lowercased
  EXPECT_EQ(queued[0].recipients[0].domain, "elsewhere.example");
  EXPECT_EQ(queued[0].recipients[0].notify, store::notify_failure | store::notify_delay);
  EXPECT_EQ(queued[0].recipients[0].orcpt, "rfc822;carol@elsewhere.example");
  const auto text = store().queue().text(queued[0].id);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->content, "Subject: hello\r\n\r\nline one\r\n.starts with a dot\r\n");
  EXPECT_TRUE(text->trace.starts_with("Received: from "));                  // no Return-Path onward
  EXPECT_EQ(store().admin().list_mail(10, "bob@example.test").size(), 1u);  // the local copy
  EXPECT_EQ(queue_wakeups(), 1);
}

TEST_F(SmtpSession, PostmasterWithoutDomainReachesTheParentDomain) {
  start_world();
  store().admin().add_alias("postmaster@example.test", "bob@example.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.7");
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<Postmaster>\r\n");
  c.expect("250 ");
  c.expect("250 2.1.5");  // mx.example.test is not ours; example.test is
}

TEST_F(SmtpSession, PostmasterIsNeverRelayed) {
  settings_.server.hostname = "mx.elsewhere.example";
  auto c = connect();
  c.expect("220 ");
  c.send("EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<postmaster>\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("550 5.1.1");
}

// RFC 5321 4.5.1: postmaster@ each of our domains is accepted; without a
// mailbox or alias of its own it goes where the bare <Postmaster> goes.
TEST_F(SmtpSession, EveryLocalDomainsPostmasterIsAccepted) {
  start_world();
  store().admin().add_domain("other.test");
  store().admin().add_domain("own.test");
  store().admin().add_user("postmaster@own.test", password::hash("secret"));
  store().admin().add_alias("postmaster@example.test", "bob@example.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.7");
  c.send("MAIL FROM:<a@b.example>\r\n");
  c.expect("250 ");
  c.send("RCPT TO:<PostMaster@Other.Test>\r\n");
  c.expect("250 2.1.5");
  c.send("RCPT TO:<postmaster@own.test>\r\n");  // its own mailbox
  c.expect("250 2.1.5");
  c.send("RCPT TO:<postmaster@elsewhere.example>\r\n");  // not ours: not taken over
  c.expect("554 5.7.1");
  c.send("RCPT TO:<postmistress@other.test>\r\n");
  c.expect("550 5.1.1");
  c.send("DATA\r\n");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  EXPECT_EQ(store().admin().list_mail(10, "bob@example.test").size(), 1u);
  EXPECT_EQ(store().admin().list_mail(10, "postmaster@own.test").size(), 1u);
}

// With no postmaster anywhere (not at the domain, the host or its parent) and
// no [smtp] postmaster, there is nowhere to put it.
TEST_F(SmtpSession, APostmasterWithNowhereToGoIsRefused) {
  start_world();
  store().admin().add_domain("other.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.7");
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<postmaster@other.test>\r\n");
  c.expect("250 ");
  c.expect("550 5.1.1 <postmaster@other.test>");
}

TEST_F(SmtpSession, ThePostmasterKeyNamesWherePostmasterGoes) {
  settings_.smtp.postmaster = "carol@example.test";
  start_world();
  store().admin().add_domain("other.test");
  store().admin().add_alias("postmaster@example.test", "bob@example.test");
  auto c = said_ehlo(Service::smtp, "192.0.2.7");
  c.send(
      "MAIL FROM:<a@b.example>\r\nRCPT TO:<POSTMASTER@other.test>\r\n"
      "RCPT TO:<postmaster>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 2.1.5");
  c.expect("250 2.1.5");  // bare: mx.example.test has none, so the key's address too
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  EXPECT_EQ(store().admin().list_mail(10, "carol@example.test").size(), 1u);
  EXPECT_TRUE(store().admin().list_mail(10, "bob@example.test").empty());
}

TEST_F(SmtpSession, APostmasterKeyElsewhereForwardsThere) {
  settings_.smtp.postmaster = "admin@elsewhere.example";
  start_world();
  auto c = said_ehlo(Service::smtp, "192.0.2.7");  // may not relay
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<postmaster@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 2.1.5");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  const auto queued = store().queue().list({});
  ASSERT_EQ(queued.size(), 1u);
  ASSERT_EQ(queued[0].recipients.size(), 1u);
  EXPECT_EQ(queued[0].recipients[0].address, "admin@elsewhere.example");
}

// RFC 5321 6.3: max_hops Received fields pass, one more is a loop.
TEST_F(SmtpSession, TheHopLimitAtAndPastItsEdge) {
  settings_.smtp.max_hops = 3;
  std::string received;
  for (int i = 0; i < 3; ++i)
    received += "Received: from hop" + std::to_string(i) + "\r\n\tby x\r\n";
  const std::string body = "\r\nReceived: in the body does not count\r\n";
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(received + "Subject: three\r\n" + body + ".\r\n");
  c.expect("250 2.0.0");
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(received + "received: from four\r\n" + body + ".\r\n");
  c.expect("554 5.4.6 too many hops (4 Received fields)");
  const auto chunk = received + "Received: from four\r\n" + body;
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nBDAT " +
         std::to_string(chunk.size()) + " LAST\r\n" + chunk);
  c.expect("250 ");
  c.expect("250 ");
  c.expect("554 5.4.6");
  c.send("NOOP\r\n");
  c.expect("250 ");  // the session goes on
  EXPECT_EQ(stored().size(), 1u);
}

// RFC 8601 5: an Authentication-Results field with our authserv-id is not
// taken from outside, by DATA or BDAT; the body stays byte for byte.
TEST_F(SmtpSession, ForgedAuthenticationResultsAreRemoved) {
  const std::string forged =
      "Authentication-Results: mx.example.test; source-get=pass smtp.mailfrom=bank.example\r\n"
      "authentication-results:\r\n (forged) MX.EXAMPLE.TEST 1;\r\n\tsource-get=pass\r\n"
      "Authentication-Results: other.example; spf=pass\r\n"
      "Subject: hello\r\n";
  const std::string body =
      "\r\nAuthentication-Results: mx.example.test; source-get=pass\r\n..dot\r\n";
  const std::string kept =
      "Authentication-Results: other.example; spf=pass\r\nSubject: hello\r\n"
      "\r\nAuthentication-Results: mx.example.test; source-get=pass\r\n.dot\r\n";
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(forged + body + ".\r\n");
  c.expect("250 2.0.0");
  const auto unstuffed =
      forged + "\r\nAuthentication-Results: mx.example.test; source-get=pass\r\n.dot\r\n";
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<carol@example.test>\r\nBDAT " +
         std::to_string(unstuffed.size()) + " LAST\r\n" + unstuffed);
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 2.0.0");
  for (const auto* mailbox : {"bob@example.test", "carol@example.test"}) {
    const auto mail = store().admin().list_mail(10, mailbox);
    ASSERT_EQ(mail.size(), 1u) << mailbox;
    const auto detail = store().admin().get_mail(mail[0].id);
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->content, kept) << mailbox;
    EXPECT_EQ(detail->trace.find("Authentication-Results"), std::string::npos);
  }
}

TEST_F(SmtpSession, AliasesAndCatchAllDeliverOncePerMailbox) {
  start_world();
  store().admin().add_alias("team@example.test", "bob@example.test");
  store().admin().add_alias("team@example.test", "carol@example.test");
  store().admin().add_alias("@example.test", "carol@example.test");
  auto c = said_ehlo();
  c.send(
      "MAIL FROM:<a@b.example>\r\nRCPT TO:<team@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
      "RCPT TO:<anything@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 ");
  EXPECT_EQ(stored().size(), 2u);  // bob and carol, each once
}

TEST_F(SmtpSession, MaxRecipientsAtAndPastTheEdge) {
  settings_.smtp.max_recipients = 2;
  auto c = said_ehlo();
  c.send(
      "MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\n"
      "RCPT TO:<bob@example.test>\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("452 4.5.3");
}

TEST_F(SmtpSession, MessageSizeAtAndPastTheLimit) {
  settings_.smtp.max_message_size = ByteSize{1024};
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example> SIZE=1025\r\n");
  c.expect("552 5.3.4");
  // Exactly 1024 octets of content: 1000 + 24.
  const std::string exact = std::string(998, 'x') + "\r\n" + std::string(22, 'x') + "\r\n";
  ASSERT_EQ(exact.size(), 1024u);
  c.send("MAIL FROM:<a@b.example> SIZE=1024\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(exact + ".\r\n");
  c.expect("250 2.0.0");
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(std::string(600, 'y') + "\r\n" + std::string(600, 'z') + "\r\n.\r\n");
  c.expect("552 5.3.4");
  c.send("NOOP\r\n");  // the session stays usable
  c.expect("250 ");
  EXPECT_EQ(stored().size(), 1u);
}

TEST_F(SmtpSession, CommandLineLimitAtAndPastTheEdge) {
  auto c = said_ehlo();
  c.send("NOOP " + std::string(512 - 7, 'x') + "\r\n");
  c.expect("250 ");
  c.send("NOOP " + std::string(512 - 6, 'x') + "\r\n");
  c.expect("500 5.5.2");
  c.send("NOOP\r\n");
  c.expect("250 ");
}

TEST_F(SmtpSession, ContentLinesAndForbiddenBytes) {
  auto c = said_ehlo();
  const auto send_message = [&](const std::string& content) {
    c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n" + content + ".\r\n");
    c.expect("250 ");
    c.expect("250 ");
    c.expect("354 ");
    return c.reply().back();
  };
  EXPECT_EQ(send_message(std::string(998, 'a') + "\r\n").substr(0, 3), "250");
  EXPECT_EQ(send_message(std::string(999, 'a') + "\r\n").substr(0, 9), "550 5.6.0");
  EXPECT_EQ(send_message(std::string("a\0b\r\n", 5)).substr(0, 9), "550 5.6.0");
  EXPECT_EQ(send_message("bare\nline feed\r\n").substr(0, 3), "250");  // normalised
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 2u);
  EXPECT_EQ(store().admin().get_mail(mail[0].id)->content, "bare\r\nline feed\r\n");
}

TEST_F(SmtpSession, BareNewlinesRefusedWhenConfigured) {
  settings_.smtp.bare_newline = config::BareNewlinePolicy::reject;
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nbare\nfeed\r\n.\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.expect("550 5.5.2");
  EXPECT_TRUE(stored().empty());
}

TEST_F(SmtpSession, SmugglingSequencesNeverEndData) {
  int n = 0;
  for (const std::string fake : {"\n.\n", "\r.\r", "\r\n.\r", "\n.\r\n", "\r.\r\n"}) {
    auto c = said_ehlo();
    c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    c.expect("250 ");
    c.expect("250 ");
    c.expect("354 ");
    // Distinct contents: identical ones would be one message (content addressing).
    c.send(
        "Subject: " + std::to_string(++n) + "\r\n\r\nbody" + fake +
        "MAIL FROM:<evil@b.example>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n");
    c.expect("250 2.0.0");
    c.send("QUIT\r\n");
    c.expect("221 ");  // the smuggled commands were content, not commands
  }
  const auto mail = stored();
  EXPECT_EQ(mail.size(), 5u);
  for (const auto& m : mail) EXPECT_EQ(m.mailbox, "bob@example.test");
}

TEST_F(SmtpSession, BdatChunksAndLast) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\n");
  c.expect("250 ");
  c.expect("250 ");
  const std::string first = "Subject: chunks\r\n";
  const std::string last = "\r\n.no stuffing here\r\n";
  c.send("BDAT " + std::to_string(first.size()) + "\r\n" + first);
  c.expect("250 2.0.0 " + std::to_string(first.size()) + " octets received");
  c.send("BDAT " + std::to_string(last.size()) + " LAST\r\n" + last);
  c.expect("250 2.0.0 OK");
  c.send("BDAT 5 LAST\r\nhello");  // no transaction: the chunk is still read
  c.expect("503 5.5.1");
  c.send("NOOP\r\n");
  c.expect("250 ");
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  EXPECT_EQ(store().admin().get_mail(mail[0].id)->content,
            "Subject: chunks\r\n\r\n.no stuffing here\r\n");
}

TEST_F(SmtpSession, BdatWithoutAFinalLineEndIsStoredWithOne) {
  auto c = said_ehlo();
  const std::string content = "Subject: x\r\n\r\nno final line end";
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nBDAT " +
         std::to_string(content.size()) + " LAST\r\n" + content);
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 2.0.0 OK");
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  const auto detail = store().admin().get_mail(mail[0].id);
  EXPECT_EQ(detail->content, content + "\r\n");
  EXPECT_EQ(mail[0].size, detail->trace.size() + detail->content.size());  // what POP3 announces
}

TEST_F(SmtpSession, DataAfterBdatIsRefused) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nBDAT 4\r\nabcd");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("250 ");
  c.send("DATA\r\n");
  c.expect("503 5.5.1");
}

TEST_F(SmtpSession, SmtpUtf8NeedsTheParameter) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<j\xc3\xb6rg@b.example>\r\n");
  c.expect("553 5.6.7");
  c.send("MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(
      "Subject: gr\xc3\xbc\xc3\x9f"
      "e\r\n\r\nhi\r\n.\r\n");
  c.expect("250 ");
  const auto detail = store().admin().get_mail(stored()[0].id);
  EXPECT_NE(detail->trace.find("with UTF8SMTP id"), std::string::npos) << detail->trace;
}

TEST_F(SmtpSession, MaxErrorsEndsWith421) {
  settings_.smtp.max_errors = 3;
  auto c = greeted();
  c.send("ONE\r\nTWO\r\nTHREE\r\nNOOP\r\n");
  c.expect("500 ");
  c.expect("500 ");
  c.expect("500 ");
  c.expect("421 4.7.0");
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, CommandTimeoutEndsWith421) {
  settings_.smtp.command_timeout = Seconds{1};
  auto c = greeted();
  const auto started = std::chrono::steady_clock::now();
  c.expect("421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, DataTimeoutEndsWith421) {
  settings_.smtp.data_timeout = Seconds{1};
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send("Subject: stalled\r\n");  // and then nothing
  const auto started = std::chrono::steady_clock::now();
  c.expect("421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(stored().empty());
}

// Sends `bytes` one at a time, `gap` apart; stops quietly once the session is gone.
void trickle(Client& c, const std::string& bytes, std::chrono::milliseconds gap) {
  try {
    for (const char byte : bytes) {
      c.send(std::string(1, byte));
      std::this_thread::sleep_for(gap);
    }
  } catch (const std::exception&) {
  }
}

TEST_F(SmtpSession, ACommandTrickledInEndsAtTheTimeoutCountedFromItsFirstByte) {
  settings_.smtp.command_timeout = Seconds{1};
  auto c = greeted();
  // Each byte comes well within the timeout, the line never within it.
  trickle(c, "NOOP NOOP NOOP", std::chrono::milliseconds(200));
  // Sent while the bytes still came (an idle timer would answer 1 s after the last).
  const auto after = std::chrono::steady_clock::now();
  c.expect("421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - after, std::chrono::milliseconds(500));
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, ACommandTrickledInWithinTheTimeoutIsServed) {
  settings_.smtp.command_timeout = Seconds{2};
  auto c = greeted();
  trickle(c, "NOOP\r\n", std::chrono::milliseconds(250));  // 1.5 s from first to last byte
  c.expect("250 ");
  c.send("QUIT\r\n");
  c.expect("221 ");
}

TEST_F(SmtpSession, ContentSlowerThanTheMinimumRateIsCutAfterTheGrace) {
  parts().content_min_rate = ByteSize{100};
  parts().content_rate_grace = Seconds{1};
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  // 10 bytes every 0.5 s: 20 bytes/s, under the floor of 100.
  const auto started = std::chrono::steady_clock::now();
  try {
    for (int i = 0; i < 12; ++i) {
      c.send("Xxxxxxxxx\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  } catch (const std::exception&) {
  }
  c.expect("421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(stored().empty());
}

TEST_F(SmtpSession, ContentAtTheMinimumRateIsStored) {
  parts().content_min_rate = ByteSize{100};
  parts().content_rate_grace = Seconds{1};
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  // 100 bytes every 0.5 s: 200 bytes/s, twice the floor, for 3 s.
  const std::string line = std::string(98, 'x') + "\r\n";
  for (int i = 0; i < 6; ++i) {
    c.send(line);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  c.send(".\r\n");
  c.expect("250 ");
  EXPECT_EQ(stored().size(), 1u);
}

TEST_F(SmtpSession, ContentMustAllComeWithinDataTimeout) {
  settings_.smtp.data_timeout = Seconds{2};
  parts().content_min_rate = ByteSize{1};
  parts().content_rate_grace = Seconds{0};
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  // A line every 0.4 s: each read is quick, the whole never ends.
  try {
    for (int i = 0; i < 12; ++i) {
      c.send("more\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
  } catch (const std::exception&) {
  }
  c.expect("421 4.4.2");
  EXPECT_TRUE(stored().empty());
}

TEST_F(SmtpSession, TheSessionTimeLimitEndsABusySessionAtItsNextCommand) {
  parts().smtp_session_max = Seconds{2};
  auto c = greeted();
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> replies;
  for (int i = 0; i < 12; ++i) {
    try {
      c.send("NOOP\r\n");
    } catch (const std::exception&) {
      // closed already: its 421 waits to be read
    }
    replies.push_back(c.reply().back());
    if (replies.back().rfind("250 ", 0) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies.front().substr(0, 4), "250 ");  // within the limit: served
  EXPECT_EQ(replies.back().substr(0, 9), "421 4.4.2");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, NotifySuccessIsOwedOnlyToClientsThatMayRelay) {
  for (const char* remote : {"127.0.0.1", "192.0.2.1"}) {
    auto c = said_ehlo(Service::smtp, remote);
    c.send(std::string("MAIL FROM:<victim@elsewhere.example> RET=FULL\r\n") +
           "RCPT TO:<bob@example.test> NOTIFY=SUCCESS\r\nDATA\r\n");
    c.expect("250 ");
    c.expect("250 ");
    c.expect("354 ");
    c.send(std::string("Subject: from ") + remote + "\r\n\r\nbody\r\n.\r\n");
    c.expect("250 ");
  }
  EXPECT_EQ(stored().size(), 2u);
  // One queue entry, for the relay network's success notice; none for the stranger's.
  const auto queued = store().queue().list({});
  ASSERT_EQ(queued.size(), 1u);
  ASSERT_EQ(queued[0].recipients.size(), 1u);
  EXPECT_EQ(queued[0].recipients[0].address, "bob@example.test");
}

// `size` octets of text in lines of at most 100 (CRLF included).
std::string lines_of_size(std::size_t size, char fill) {
  std::string text;
  while (size > 0) {
    auto line = std::min<std::size_t>(size, 100);
    if (size - line == 1) --line;  // no one-octet line left at the end (size >= 2)
    text += std::string(line - 2, fill) + "\r\n";
    size -= line;
  }
  return text;
}

// DATA with `size` octets on the wire, terminator included, to bob.
std::string data_of_size(std::size_t size, char fill) {
  const std::string head = "Subject: budget\r\n\r\n";
  return head + lines_of_size(size - head.size() - 3, fill) + ".\r\n";
}

TEST_F(SmtpSession, ContentPastTheMemoryBudgetIsReadButRefused452AndTheBudgetComesBack) {
  net::ContentBudget budget(4096);
  parts().content_budget = &budget;
  auto c = said_ehlo();
  const auto send = [&c](const std::string& data) {
    c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    c.expect("250 ");
    c.expect("250 ");
    c.expect("354 ");
    c.send(data);
    return c.reply().back();
  };
  EXPECT_EQ(send(data_of_size(4097, 'x')).substr(0, 9), "452 4.3.1");  // past the edge
  EXPECT_TRUE(stored().empty());
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(send(data_of_size(4096, 'y')).substr(0, 4), "250 ");  // at the edge
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(stored().size(), 1u);
  // BDAT: a chunk past the budget is refused and the transaction dropped.
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.send("BDAT 5000\r\n" + lines_of_size(5000, 'z'));
  EXPECT_EQ(c.reply().back().substr(0, 9), "452 4.3.1");
  EXPECT_EQ(budget.used(), 0u);
  c.send("QUIT\r\n");
  c.expect("221 ");
}

TEST_F(SmtpSession, AClientThatNeverReadsMeetsTheWriteDeadline) {
  settings_.smtp.command_timeout = Seconds{1};
  auto c = greeted();
  // Far more replies than the socket buffers hold, and no reading: the
  // session's write blocks, and its deadline must end the session.
  constexpr int commands = 20000;
  std::string burst;
  for (int i = 0; i < commands; ++i) burst += "HELP\r\n";
  c.send(burst);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // past the 1 s deadline
  int replies = 0;
  while (!c.closed()) {
    if (c.line().rfind("214 ", 0) == 0) ++replies;
  }
  EXPECT_LT(replies, commands);  // without the deadline every HELP would be answered
}

TEST_F(SmtpSession, ClientSpeakingBeforeTheGreetingIsRefused) {
  auto c = connect(Service::smtp, "127.0.0.1", "EHLO impatient.example\r\n");
  c.expect("554 5.5.1");
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, StarttlsThenAuthIsOffered) {
  auto c = said_ehlo();
  c.send("AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0secret", 24)) + "\r\n");
  c.expect("538 5.7.11");  // not before TLS
  c.send("STARTTLS\r\n");
  c.expect("220 2.0.0");
  c.start_tls();
  c.send("MAIL FROM:<a@b.example>\r\n");
  c.expect("503 5.5.1");  // TLS forgot the EHLO (RFC 3207 4.2)
  c.send("EHLO client.example\r\n");
  const auto lines = c.reply();
  EXPECT_NE(std::find(lines.begin(), lines.end(), "250-AUTH PLAIN LOGIN"), lines.end());
  EXPECT_EQ(std::find(lines.begin(), lines.end(), "250-STARTTLS"), lines.end());
  c.send("STARTTLS\r\n");
  c.expect("503 5.5.1");
}

TEST_F(SmtpSession, CommandsPipelinedAfterStarttlsAreDiscarded) {
  auto c = said_ehlo();
  c.send("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n");
  c.expect("220 2.0.0");
  c.start_tls();
  c.send("NOOP\r\n");
  c.expect("250 2.0.0 OK");  // the first reply under TLS answers NOOP, not the injected MAIL
  c.send("EHLO client.example\r\n");
  c.expect("250 ");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");  // no transaction was started by the injection
}

TEST_F(SmtpSession, AuthPlainAndLogin) {
  auto c = said_ehlo();
  c.send("STARTTLS\r\n");
  c.expect("220 ");
  c.start_tls();
  c.send("EHLO client.example\r\n");
  c.expect("250 ");
  c.send("AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0wrong", 23)) + "\r\n");
  c.expect("535 5.7.8");
  c.send("AUTH LOGIN\r\n");
  c.expect("334 VXNlcm5hbWU6");
  c.send(base64_encode("bob@example.test") + "\r\n");
  c.expect("334 UGFzc3dvcmQ6");
  c.send(base64_encode("secret") + "\r\n");
  c.expect("235 2.7.0");
  c.send("AUTH PLAIN\r\n");
  c.expect("503 5.5.1");  // already authenticated
  c.send("MAIL FROM:<bob@example.test>\r\nRCPT TO:<someone@elsewhere.example>\r\n");
  c.expect("250 ");
  c.expect("250 2.1.5");  // an authenticated client may relay
}

TEST_F(SmtpSession, AuthPlainWithContinuationAndCancel) {
  auto c = said_ehlo();
  c.send("STARTTLS\r\n");
  c.expect("220 ");
  c.start_tls();
  c.send("EHLO client.example\r\nAUTH PLAIN\r\n");
  c.expect("250 ");
  c.expect("334");
  c.send("*\r\n");
  c.expect("501 5.0.0");
  c.send("AUTH PLAIN\r\n");
  c.expect("334");
  c.send(base64_encode(std::string("\0carol@example.test\0secret", 26)) + "\r\n");
  c.expect("235 2.7.0");
}

TEST_F(SmtpSession, AChangedPasswordEndsTheCachedOne) {
  const auto auth = [](const std::string& password) {
    return "AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0", 18) + password) +
           "\r\n";
  };
  const auto try_auth = [&](const std::string& password, const std::string& expected) {
    auto c = said_ehlo();
    c.send("STARTTLS\r\n");
    c.expect("220 ");
    c.start_tls();
    c.send("EHLO client.example\r\n" + auth(password));
    c.expect("250 ");
    c.expect(expected);
  };
  try_auth("secret", "235 2.7.0");
  try_auth("secret", "235 2.7.0");  // answered from the credential cache
  store().admin().set_password("bob@example.test", password::hash("new secret"));
  try_auth("secret", "535 5.7.8");
  try_auth("new secret", "235 2.7.0");
}

TEST_F(SmtpSession, FailedAuthIsThrottledPerClientAddress) {
  settings_.smtp.max_auth_failures = 2;
  const auto wrong =
      "AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0nope", 22)) + "\r\n";
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto c = said_ehlo();
    c.send("STARTTLS\r\n");
    c.expect("220 ");
    c.start_tls();
    c.send("EHLO client.example\r\n" + wrong);
    c.expect("250 ");
    c.expect("535 5.7.8");
  }
  auto c = said_ehlo();
  c.send("STARTTLS\r\n");
  c.expect("220 ");
  c.start_tls();
  c.send("EHLO client.example\r\n" + wrong);
  c.expect("250 ");
  c.expect("421 4.7.0");
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, SubmissionNeedsStarttlsThenAuth) {
  auto c = said_ehlo(Service::submission);
  c.send("MAIL FROM:<bob@example.test>\r\n");
  c.expect("530 5.7.0");  // STARTTLS first
  c.send("STARTTLS\r\n");
  c.expect("220 ");
  c.start_tls();
  c.send("EHLO client.example\r\nMAIL FROM:<bob@example.test>\r\n");
  c.expect("250 ");
  c.expect("530 5.7.0");  // AUTH first
  c.send("AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0secret", 24)) +
         "\r\nMAIL FROM:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n");
  c.expect("235 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 ");
  const auto detail = store().admin().get_mail(stored()[0].id);
  EXPECT_NE(detail->trace.find("with ESMTPSA id"), std::string::npos);
  EXPECT_NE(detail->trace.find("(using TLSv1."), std::string::npos);
  EXPECT_EQ(detail->trace.find("authenticated as"), std::string::npos);  // not configured
}

TEST_F(SmtpSession, ReceivedNamesTheUserWhenConfigured) {
  settings_.smtp.received_auth_user = true;
  auto c = connect(Service::submissions);
  c.start_tls();
  c.expect("220 ");
  c.send("EHLO client.example\r\nAUTH PLAIN " +
         base64_encode(std::string("\0bob@example.test\0secret", 24)) +
         "\r\nMAIL FROM:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("235 ");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 ");
  const auto detail = store().admin().get_mail(stored()[0].id);
  EXPECT_NE(detail->trace.find("authenticated as bob@example.test"), std::string::npos)
      << detail->trace;
}

TEST_F(SmtpSession, AStoreFailureIsATemporaryFailure) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  store().close();  // the database is gone between RCPT and the end of DATA
  c.send(message + ".\r\n");
  c.expect("451 4.3.0");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 ");  // the transaction ended; nothing was acknowledged
}

TEST_F(SmtpSession, ShutdownSays421ToAnIdleSession) {
  auto c = said_ehlo();
  request_stop();
  c.expect("421 4.3.2");
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpSession, ShutdownLetsContentInFlightFinish) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 ");
  c.expect("250 ");
  c.expect("354 ");
  c.send("Subject: half\r\n");
  request_stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the stop request lands mid-DATA
  c.send("\r\nrest\r\n.\r\n");
  c.expect("250 2.0.0");
  c.expect("421 4.3.2");  // and then the goodbye, without waiting for another command
  EXPECT_EQ(stored().size(), 1u);
}

}  // namespace
}  // namespace maild::testing
