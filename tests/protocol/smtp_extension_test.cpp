// The session's extension seam: a check registered from outside the session
// answers at every stage (connect, HELO/EHLO, MAIL, RCPT, the end of DATA and
// BDAT) with "go on", "refuse", "defer" or "add these headers", and the
// session's dialogue, its error count and its store stay right.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "session_fixture.hpp"
#include "smtp/extension.hpp"
#include "smtp/session.hpp"

namespace maild::testing {
namespace {

using net::Service;
namespace asio = boost::asio;

enum class Stage { none, connect, hello, mail, rcpt, content };

// Says no at one stage (to one recipient at RCPT), adds a header at RCPT and
// at the end of the content, and counts what it saw.
class StageCheck final : public smtp::Extension {
 public:
  Stage stage = Stage::none;
  smtp::Verdict answer;
  std::string refused_recipient = "carol@example.test";
  mutable std::atomic<int> contents{0};
  mutable std::atomic<int> sessions{0};

  std::unique_ptr<smtp::ExtensionSession> open(const smtp::SessionView&) const override {
    ++sessions;
    return std::make_unique<Hooks>(*this);
  }

 private:
  class Hooks final : public smtp::ExtensionSession {
   public:
    explicit Hooks(const StageCheck& owner) : owner_(owner) {}
    asio::awaitable<smtp::Verdict> on_connect(smtp::SessionView&) override {
      co_return at(Stage::connect);
    }
    asio::awaitable<smtp::Verdict> on_hello(smtp::SessionView&, const smtp::Hello&) override {
      co_return at(Stage::hello);
    }
    asio::awaitable<smtp::Verdict> on_mail(smtp::SessionView&, const smtp::Mail&) override {
      co_return at(Stage::mail);
    }
    asio::awaitable<smtp::Verdict> on_rcpt(smtp::SessionView&, const smtp::Transaction&,
                                           const smtp::RecipientFacts& recipient) override {
      if (owner_.stage == Stage::rcpt && recipient.address == owner_.refused_recipient)
        co_return owner_.answer;
      co_return smtp::Verdict::proceed_with("X-Checked-Rcpt: " + recipient.address + "\r\n");
    }
    asio::awaitable<smtp::Verdict> on_content(smtp::SessionView& session,
                                              const smtp::Transaction& transaction,
                                              const std::string& content) override {
      ++owner_.contents;
      if (owner_.stage == Stage::content) co_return owner_.answer;
      co_return smtp::Verdict::proceed_with(
          "X-Checked: " + std::to_string(content.size()) + " octets for " +
          std::to_string(transaction.recipients.size()) + " by " + session.hostname() + "\r\n");
    }

   private:
    smtp::Verdict at(Stage stage) const {
      return owner_.stage == stage ? owner_.answer : smtp::Verdict{};
    }
    const StageCheck& owner_;
  };
};

const std::string message = "Subject: seam\r\n\r\nbody\r\n";

class SmtpExtension : public SessionFixture {
 protected:
  Client connect(Service service = Service::smtp) {
    if (!world_started()) add_smtp_extension(check);
    return SessionFixture::connect(&smtp::serve<LocalSocket>, service, "192.0.2.7");
  }
  Client said_ehlo() {
    auto c = connect();
    c.expect("220 ");
    c.send("EHLO client.example\r\n");
    c.expect("250 ");
    return c;
  }
  std::vector<store::MailSummary> stored() { return store().admin().list_mail(0, std::nullopt); }
  std::string trace_of(const store::MailSummary& mail) {
    return store().admin().get_mail(mail.id)->trace;
  }

  StageCheck check;
};

TEST_F(SmtpExtension, HeadersFromChecksGoBetweenReturnPathAndReceived) {
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 2.1.0");
  c.expect("250 2.1.5");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  const auto trace = trace_of(mail[0]);
  EXPECT_EQ(trace.rfind("Return-Path: <a@origin.test>\r\n"
                        "X-Checked-Rcpt: bob@example.test\r\n"
                        "X-Checked: " +
                            std::to_string(message.size()) +
                            " octets for 1 by mx.example.test\r\n"
                            "Received: from client.example",
                        0),
            0u)
      << trace;
  EXPECT_EQ(check.sessions, 1);
}

TEST_F(SmtpExtension, ARefusalAtConnectIsTheGreeting) {
  check.stage = Stage::connect;
  check.answer = smtp::Verdict::refuse({554, "5.7.1"}, "not from here");
  auto c = connect();
  c.expect("554 5.7.1 not from here");
  EXPECT_TRUE(c.closed());
}

TEST_F(SmtpExtension, ADeferralAtHelloLeavesTheClientUngreeted) {
  check.stage = Stage::hello;
  check.answer = smtp::Verdict::defer({450, "4.7.1"}, "come back later");
  auto c = connect();
  c.expect("220 ");
  c.send("EHLO client.example\r\n");
  c.expect("450 4.7.1 come back later");
  c.send("MAIL FROM:<a@origin.test>\r\n");
  c.expect("503 5.5.1 send HELO or EHLO first");
}

TEST_F(SmtpExtension, ARefusalAtMailOpensNoTransaction) {
  check.stage = Stage::mail;
  check.answer = smtp::Verdict::refuse({550, "5.7.1"}, "sender refused");
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@origin.test>\r\n");
  c.expect("550 5.7.1 sender refused");
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1 need MAIL before RCPT");
}

TEST_F(SmtpExtension, ARefusalAtRcptRefusesThatRecipientOnly) {
  check.stage = Stage::rcpt;
  check.answer = smtp::Verdict::refuse({550, "5.7.1"}, "recipient refused");
  auto c = said_ehlo();
  c.send(
      "MAIL FROM:<a@origin.test>\r\nRCPT TO:<carol@example.test>\r\n"
      "RCPT TO:<bob@example.test>\r\nDATA\r\n");
  c.expect("250 2.1.0");
  c.expect("550 5.7.1 recipient refused");
  c.expect("250 2.1.5");
  c.expect("354 ");
  c.send(message + ".\r\n");
  c.expect("250 2.0.0");
  const auto mail = stored();
  ASSERT_EQ(mail.size(), 1u);
  EXPECT_EQ(mail[0].mailbox, "bob@example.test");
}

TEST_F(SmtpExtension, ARefusalAtTheEndOfDataStoresNothingAndDoesNotCountAsAnError) {
  settings_.smtp.max_errors = 1;
  check.stage = Stage::content;
  check.answer = smtp::Verdict::refuse({550, "5.7.1"}, "content refused");
  auto c = said_ehlo();
  for (int i = 0; i < 3; ++i) {
    c.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    c.expect("250 2.1.0");
    c.expect("250 2.1.5");
    c.expect("354 ");
    c.send(message + ".\r\n");
    c.expect("550 5.7.1 content refused");
  }
  c.send("NOOP\r\n");
  c.expect("250 2.0.0");  // still open: answers to content never count toward max_errors
  EXPECT_TRUE(stored().empty());
  EXPECT_EQ(check.contents, 3);
}

TEST_F(SmtpExtension, ADeferralAtTheEndOfBdatStoresNothing) {
  check.stage = Stage::content;
  check.answer = smtp::Verdict::defer({451, "4.7.1"}, "try again later");
  auto c = said_ehlo();
  c.send("MAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@example.test>\r\n");
  c.expect("250 2.1.0");
  c.expect("250 2.1.5");
  c.send("BDAT " + std::to_string(message.size()) + " LAST\r\n" + message);
  c.expect("451 4.7.1 try again later");
  EXPECT_TRUE(stored().empty());
  EXPECT_EQ(check.contents, 1);
}

TEST_F(SmtpExtension, CommandErrorsStillCountOnceAndCloseAtTheLimit) {
  settings_.smtp.max_errors = 2;
  auto c = said_ehlo();
  c.send("RCPT TO:<bob@example.test>\r\n");
  c.expect("503 5.5.1");
  c.send("BOGUS\r\n");
  c.expect("500 5.5.1 command unrecognized");
  c.expect("421 4.7.0 mx.example.test too many errors, closing connection");
  EXPECT_TRUE(c.closed());
}

}  // namespace
}  // namespace maild::testing
