// POP3 session transcripts in memory: every command in every state, message
// numbers, deleted messages, byte-stuffing, locking, UPDATE, STLS and logins.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "maild/core/base64.hpp"
#include "pop3/session.hpp"
#include "session_fixture.hpp"

namespace maild::testing {
namespace {

using net::Service;

class Pop3Session : public SessionFixture {
 protected:
  Client connect(Service service = Service::pop3, const char* remote = "127.0.0.1") {
    return SessionFixture::connect(&pop3::serve<LocalSocket>, service, remote);
  }

  // Delivers a message to bob; returns its text as served (trace + content).
  std::string deliver(const std::string& content, const std::string& to = "bob@example.test") {
    if (!store_ready_) {
      start_world();
      store_ready_ = true;
    }
    const auto account = store().directory().account(to);
    store::NewMessage message;
    message.reverse_path = "alice@origin.test";
    message.mailboxes = {account->mailbox};
    message.trace = "Return-Path: <alice@origin.test>\r\n";
    message.content = content;
    store().mail().deliver(message);
    return message.trace + content;
  }

  Client logged_in(const std::string& user = "bob@example.test") {
    auto c = connect();
    expect_ok(c);
    c.send("USER " + user + "\r\nPASS secret\r\n");
    expect_ok(c);
    expect_ok(c);
    return c;
  }

  static std::string expect_ok(Client& c) {
    const auto line = c.line();
    EXPECT_EQ(line.rfind("+OK", 0), 0u) << line;
    return line;
  }
  static std::string expect_err(Client& c, const std::string& prefix = "-ERR") {
    const auto line = c.line();
    EXPECT_EQ(line.rfind(prefix, 0), 0u) << "expected " << prefix << ", got " << line;
    return line;
  }
  // A multi-line response's lines, after its +OK line, without the final ".".
  static std::vector<std::string> multiline(Client& c) {
    std::vector<std::string> lines;
    for (auto line = c.line(); line != "." && !c.closed(); line = c.line()) lines.push_back(line);
    return lines;
  }
  // RETR's body with the byte-stuffing undone, as a client would.
  static std::string retrieved(Client& c) {
    std::string text;
    for (const auto& line : multiline(c))
      text += (line.rfind("..", 0) == 0 ? line.substr(1) : line) + "\r\n";
    return text;
  }

  bool store_ready_ = false;
};

TEST_F(Pop3Session, GreetingCapaAndQuitInAuthorization) {
  auto c = connect();
  EXPECT_EQ(expect_ok(c), "+OK maild POP3 server ready");
  c.send("CAPA\r\n");
  expect_ok(c);
  const std::vector<std::string> expected{
      "USER",       "SASL PLAIN",          "STLS", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
      "PIPELINING", "IMPLEMENTATION maild"};
  EXPECT_EQ(multiline(c), expected);
  c.send("QUIT\r\n");
  expect_ok(c);
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, TransactionCommandsAreRefusedBeforeLogin) {
  auto c = connect();
  expect_ok(c);
  for (const char* command :
       {"STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "RSET", "NOOP", "TOP 1 1"}) {
    c.send(std::string(command) + "\r\n");
    expect_err(c, "-ERR command not valid in this state");
  }
  c.send("PASS secret\r\n");
  expect_err(c, "-ERR send USER first");
  c.send("APOP bob 0123\r\n");
  expect_err(c, "-ERR unknown command");
}

TEST_F(Pop3Session, LoginStatListUidlRetr) {
  const auto first = deliver("Subject: one\r\n\r\nfirst\r\n");
  const auto second = deliver("Subject: two\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n");
  auto c = connect();
  expect_ok(c);
  c.send("USER bob@example.test\r\n");
  expect_ok(c);
  c.send("PASS secret\r\n");
  EXPECT_EQ(c.line(), "+OK maildrop has 2 messages (" +
                          std::to_string(first.size() + second.size()) + " octets)");
  c.send("STAT\r\n");
  EXPECT_EQ(c.line(), "+OK 2 " + std::to_string(first.size() + second.size()));
  c.send("LIST\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c), (std::vector<std::string>{"1 " + std::to_string(first.size()),
                                                    "2 " + std::to_string(second.size())}));
  c.send("LIST 2\r\n");
  EXPECT_EQ(c.line(), "+OK 2 " + std::to_string(second.size()));
  c.send("UIDL\r\n");
  expect_ok(c);
  const auto uidls = multiline(c);
  ASSERT_EQ(uidls.size(), 2u);
  EXPECT_EQ(uidls[0].rfind("1 ", 0), 0u);
  c.send("UIDL 1\r\n");
  EXPECT_EQ(c.line(), "+OK " + uidls[0]);
  c.send("RETR 2\r\n");
  EXPECT_EQ(c.line(), "+OK " + std::to_string(second.size()) + " octets");
  EXPECT_EQ(retrieved(c), second);  // byte-exact after undoing the stuffing
  c.send("NOOP\r\n");
  expect_ok(c);
}

TEST_F(Pop3Session, RetrievalInOrderReadsAheadAndStaysExact) {
  std::vector<std::string> texts;
  for (int i = 1; i <= 12; ++i)
    texts.push_back(
        deliver("Subject: m" + std::to_string(i) + "\r\n\r\n.body " + std::to_string(i) + "\r\n"));
  auto c = logged_in();
  c.send("DELE 4\r\n");
  expect_ok(c);
  for (const int n : {1, 2, 3, 5, 6}) {  // in order: from 2 on, later messages come along
    c.send("RETR " + std::to_string(n) + "\r\n");
    expect_ok(c);
    EXPECT_EQ(retrieved(c), texts[static_cast<std::size_t>(n - 1)]) << n;
  }
  c.send("RETR 4\r\n");
  expect_err(c);  // deleted, even though it was never read ahead
  c.send("TOP 7 0\r\nRETR 11\r\nRETR 12\r\nRETR 7\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c),
            (std::vector<std::string>{"Return-Path: <alice@origin.test>", "Subject: m7", ""}));
  for (const int n : {11, 12, 7}) {
    expect_ok(c);
    EXPECT_EQ(retrieved(c), texts[static_cast<std::size_t>(n - 1)]) << n;
  }
  c.send("QUIT\r\n");
  EXPECT_EQ(c.line(), "+OK maild POP3 server signing off (11 messages left)");
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, ByteStuffingOnTheWire) {
  deliver("S: x\r\n\r\n.a\r\n.\r\n");
  auto c = logged_in();
  c.send("RETR 1\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c), (std::vector<std::string>{"Return-Path: <alice@origin.test>", "S: x", "",
                                                    "..a", ".."}));
}

TEST_F(Pop3Session, TopSendsHeaderAndLines) {
  deliver("Subject: top\r\n\r\none\r\ntwo\r\nthree\r\n");
  auto c = logged_in();
  c.send("TOP 1 0\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c),
            (std::vector<std::string>{"Return-Path: <alice@origin.test>", "Subject: top", ""}));
  c.send("TOP 1 2\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c).size(), 5u);
}

TEST_F(Pop3Session, BadNumbersAndDeletedMessages) {
  deliver("Subject: a\r\n\r\na\r\n");
  deliver("Subject: b\r\n\r\nb\r\n");
  auto c = logged_in();
  for (const char* command : {"RETR 0", "RETR 3", "LIST 9", "UIDL 3", "DELE 4", "TOP 5 1"}) {
    c.send(std::string(command) + "\r\n");
    expect_err(c, "-ERR no such message");
  }
  c.send("RETR x\r\n");
  expect_err(c);
  c.send("DELE 1\r\n");
  EXPECT_EQ(c.line(), "+OK message 1 deleted");
  for (const char* command : {"DELE 1", "RETR 1", "LIST 1", "UIDL 1", "TOP 1 0"}) {
    c.send(std::string(command) + "\r\n");
    expect_err(c, "-ERR message 1 already deleted");
  }
  c.send("STAT\r\n");
  EXPECT_EQ(c.line().rfind("+OK 1 ", 0), 0u);
  c.send("LIST\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c).size(), 1u);  // deleted messages are not listed
  c.send("RSET\r\n");
  EXPECT_EQ(c.line().rfind("+OK maildrop has 2 messages", 0), 0u);
}

TEST_F(Pop3Session, DeletionsApplyAtQuitOnly) {
  deliver("Subject: a\r\n\r\na\r\n");
  deliver("Subject: b\r\n\r\nb\r\n");
  {
    auto c = logged_in();
    c.send("DELE 1\r\n");
    expect_ok(c);
  }  // dropped without QUIT: nothing deleted
  auto again = connect();
  expect_ok(again);
  // The dropped session's lock is released (or expires); retry briefly.
  std::string reply;
  for (int attempt = 0; attempt < 50; ++attempt) {
    again.send("USER bob@example.test\r\nPASS secret\r\n");
    again.line();
    reply = again.line();
    if (reply.rfind("+OK", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(reply.rfind("+OK maildrop has 2 messages", 0), 0u) << reply;
  again.send("DELE 1\r\nQUIT\r\n");
  expect_ok(again);
  EXPECT_EQ(again.line(), "+OK maild POP3 server signing off (1 message left)");
  auto third = logged_in();
  third.send("STAT\r\n");
  EXPECT_EQ(third.line().rfind("+OK 1 ", 0), 0u);
  const auto mail = store().admin().list_mail(0, std::nullopt);
  ASSERT_EQ(mail.size(), 2u);
}

TEST_F(Pop3Session, RetrievedMessagesAreMarkedAtQuit) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = logged_in();
  c.send("RETR 1\r\n");
  expect_ok(c);
  multiline(c);
  c.send("QUIT\r\n");
  expect_ok(c);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(store().admin().list_mail(0, std::nullopt)[0].status, store::DeliveryStatus::retrieved);
}

TEST_F(Pop3Session, ASecondLoginIsInUse) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto first = logged_in();
  auto second = connect();
  expect_ok(second);
  second.send("USER bob@example.test\r\nPASS secret\r\n");
  expect_ok(second);
  expect_err(second, "-ERR [IN-USE]");
  first.send("QUIT\r\n");
  expect_ok(first);
  EXPECT_TRUE(first.closed());
  second.send("USER bob@example.test\r\nPASS secret\r\n");
  expect_ok(second);
  expect_ok(second);  // free after QUIT
}

TEST_F(Pop3Session, UidlsAreStableAcrossSessions) {
  deliver("Subject: a\r\n\r\na\r\n");
  deliver("Subject: b\r\n\r\nb\r\n");
  std::vector<std::string> first_listing;
  {
    auto c = logged_in();
    c.send("UIDL\r\n");
    expect_ok(c);
    first_listing = multiline(c);
    c.send("QUIT\r\n");
    expect_ok(c);
    EXPECT_TRUE(c.closed());
  }
  auto c = logged_in();
  c.send("UIDL\r\n");
  expect_ok(c);
  EXPECT_EQ(multiline(c), first_listing);
}

TEST_F(Pop3Session, WrongPasswordAndUnknownUserGetTheSameReply) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect();
  expect_ok(c);
  c.send("USER bob@example.test\r\nPASS wrong\r\n");
  expect_ok(c);
  const auto wrong = expect_err(c, "-ERR [AUTH]");
  c.send("USER nobody@example.test\r\nPASS secret\r\n");
  expect_ok(c);
  EXPECT_EQ(expect_err(c, "-ERR [AUTH]"), wrong);
}

TEST_F(Pop3Session, AChangedPasswordEndsTheCachedOne) {
  deliver("Subject: a\r\n\r\na\r\n");
  for (int i = 0; i < 2; ++i) {  // the second login is answered from the credential cache
    auto c = logged_in();
    c.send("QUIT\r\n");
    expect_ok(c);
    EXPECT_TRUE(c.closed());
  }
  store().admin().set_password("bob@example.test", password::hash("new secret"));
  auto c = connect();
  expect_ok(c);
  c.send("USER bob@example.test\r\nPASS secret\r\n");
  expect_ok(c);
  expect_err(c, "-ERR [AUTH]");
  c.send("USER bob@example.test\r\nPASS new secret\r\n");
  expect_ok(c);
  expect_ok(c);
}

TEST_F(Pop3Session, FailedLoginsAreThrottled) {
  settings_.pop3.max_auth_failures = 2;
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect();
  expect_ok(c);
  for (int i = 0; i < 2; ++i) {
    c.send("USER bob@example.test\r\nPASS wrong\r\n");
    expect_ok(c);
    expect_err(c, "-ERR [AUTH]");
  }
  c.send("USER bob@example.test\r\nPASS secret\r\n");
  expect_ok(c);
  expect_err(c, "-ERR [LOGIN-DELAY]");
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, PlaintextOnlyFromConfiguredNetworksOrUnderTls) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect(Service::pop3, "192.0.2.9");
  expect_ok(c);
  c.send("CAPA\r\n");
  expect_ok(c);
  const auto capabilities = multiline(c);
  EXPECT_EQ(std::find(capabilities.begin(), capabilities.end(), "USER"), capabilities.end());
  c.send("USER bob@example.test\r\n");
  expect_err(c, "-ERR [AUTH] use STLS");
  c.send("AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0secret", 24)) + "\r\n");
  expect_err(c, "-ERR [AUTH] use STLS");
  c.send("STLS\r\nUSER injected\r\n");
  expect_ok(c);
  c.start_tls();
  c.send("PASS secret\r\n");
  expect_err(c, "-ERR send USER first");  // the USER pipelined in clear was dropped
  c.send("AUTH PLAIN " + base64_encode(std::string("\0bob@example.test\0secret", 24)) + "\r\n");
  EXPECT_EQ(expect_ok(c).rfind("+OK maildrop has 1 messages", 0), 0u);
}

TEST_F(Pop3Session, AuthPlainWithContinuation) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect();
  expect_ok(c);
  c.send("AUTH PLAIN\r\n");
  EXPECT_EQ(c.line(), "+ ");
  c.send("*\r\n");
  expect_err(c, "-ERR authentication cancelled");
  c.send("AUTH PLAIN\r\n");
  EXPECT_EQ(c.line(), "+ ");
  c.send(base64_encode(std::string("\0bob@example.test\0secret", 24)) + "\r\n");
  expect_ok(c);
  c.send("AUTH PLAIN\r\n");
  expect_err(c, "-ERR command not valid in this state");
}

TEST_F(Pop3Session, Pop3sIsImplicitTls) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect(Service::pop3s, "192.0.2.9");
  c.start_tls();
  expect_ok(c);
  c.send("CAPA\r\n");
  expect_ok(c);
  const auto capabilities = multiline(c);
  EXPECT_NE(std::find(capabilities.begin(), capabilities.end(), "USER"), capabilities.end());
  EXPECT_EQ(std::find(capabilities.begin(), capabilities.end(), "STLS"), capabilities.end());
}

TEST_F(Pop3Session, PipelinedCommandsAnswerInOrder) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = connect();
  expect_ok(c);
  c.send("USER bob@example.test\r\nPASS secret\r\nSTAT\r\nLIST 1\r\nNOOP\r\nQUIT\r\n");
  expect_ok(c);
  expect_ok(c);
  EXPECT_EQ(c.line().rfind("+OK 1 ", 0), 0u);
  EXPECT_EQ(c.line().rfind("+OK 1 ", 0), 0u);
  EXPECT_EQ(c.line(), "+OK");
  expect_ok(c);
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, TooManyBadCommandsClose) {
  auto c = connect();
  expect_ok(c);
  for (unsigned i = 0; i < pop3::max_bad_commands; ++i) {
    c.send("BOGUS\r\n");
    expect_err(c);
  }
  expect_err(c, "-ERR too many bad commands");
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, TheSessionTimeLimitEndsABusySession) {
  deliver("Subject: one\r\n\r\nbody\r\n");
  parts().pop3_session_max = Seconds{4};  // the login itself takes a while (password hashing)
  auto c = logged_in();
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> replies;
  for (int i = 0; i < 24; ++i) {
    try {
      c.send("NOOP\r\n");
    } catch (const std::exception&) {
      // closed already: its -ERR waits to be read
    }
    replies.push_back(c.line());
    if (replies.back() != "+OK") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies.front(), "+OK");  // within the limit: served
  EXPECT_EQ(replies.back(), "-ERR [SYS/TEMP] session time limit exceeded, closing connection");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, ACommandTrickledInEndsAtTheTimeoutCountedFromItsFirstByte) {
  settings_.pop3.idle_timeout = Seconds{1};
  auto c = connect();
  expect_ok(c);
  try {
    for (const char byte : std::string("CAPA CAPA CAPA")) {
      c.send(std::string(1, byte));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  } catch (const std::exception&) {
  }
  // Closed while the bytes still came (an idle timer would close only 1 s after the last).
  const auto after = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed());  // autologout: closed without a response (RFC 1939 3)
  EXPECT_LT(std::chrono::steady_clock::now() - after, std::chrono::milliseconds(500));
}

TEST_F(Pop3Session, ShutdownSaysSysTemp) {
  auto c = connect();
  expect_ok(c);
  request_stop();
  expect_err(c, "-ERR [SYS/TEMP]");
  EXPECT_TRUE(c.closed());
}

TEST_F(Pop3Session, AStoreFailureAtQuitKeepsTheMail) {
  deliver("Subject: a\r\n\r\na\r\n");
  auto c = logged_in();
  c.send("DELE 1\r\n");
  expect_ok(c);
  store().close();
  c.send("QUIT\r\n");
  expect_err(c, "-ERR [SYS/TEMP]");
  EXPECT_TRUE(c.closed());
  auto reopened = store::open_store(settings_, store::OpenMode::existing);
  const auto mail = reopened->admin().list_mail(0, std::nullopt);
  ASSERT_EQ(mail.size(), 1u);
  EXPECT_EQ(mail[0].status, store::DeliveryStatus::fresh);  // the DELE was never applied
  reopened->close();
}

}  // namespace
}  // namespace maild::testing
