// The outbound SMTP client, driven through the courier over a static route
// to a scripted peer on loopback TCP: each test is the dialogue the peer
// expects, byte for byte (pipelined writes and dot-stuffing included), and
// the outcomes the queue would get.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/courier.hpp"
#include "maild/core/base64.hpp"
#include "scripted_peer.hpp"

namespace maild::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::ehlo_reply;
using testing::greet;
using testing::PeerConnection;
using testing::quit;
using testing::ScriptedPeer;
using Clock = std::chrono::steady_clock;
using Kind = Outcome::Kind;

const std::string sender = "alice@example.net";
const std::string content =
    "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Subject: dots\r\n"
    "\r\n"
    ".one dot\r\n"
    "..two dots\r\n"
    "a line with . inside\r\n"
    ".\r\n"
    "end\r\n";
// What goes on the wire after the 354: dot-stuffed, then the final dot.
const std::string stuffed =
    "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Subject: dots\r\n"
    "\r\n"
    "..one dot\r\n"
    "...two dots\r\n"
    "a line with . inside\r\n"
    "..\r\n"
    "end\r\n"
    ".\r\n";

store::QueueRecipient recipient(store::QueueRecipientId id, std::string address,
                                unsigned notify = 0, std::string orcpt = {}) {
  store::QueueRecipient r;
  r.id = id;
  r.address = std::move(address);
  r.domain = "example.org";
  r.notify = notify;
  r.orcpt = std::move(orcpt);
  return r;
}

Parcel parcel(std::vector<store::QueueRecipient> recipients, std::string text = content) {
  Parcel p;
  p.queue_id = 7;
  p.reverse_path = sender;
  p.recipients = std::move(recipients);
  p.text = std::move(text);
  return p;
}

class SmtpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/maild-client-XXXXXX";
    suite_dir_ = ::mkdtemp(pattern);
    const auto command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        (suite_dir_ / "key.pem").string() + " -out " + (suite_dir_ / "cert.pem").string() +
        " -days 2 -subj /CN=mx.example.org 2>/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(suite_dir_); }

  void SetUp() override {
    settings_.server.hostname = "client.example.test";
    peer_.emplace("127.0.0.1");
    next_hop_ = Endpoint{"127.0.0.1", peer_->port()};
    settings_.delivery.routes = {config::Route{"example.org", next_hop_}};
    config::DnsSettings dns;
    dns.servers = {Endpoint{"127.0.0.1", 9}};  // never asked: the route is an IP address
    resolver_.emplace(dns, io_.get_executor());
    server_tls_.emplace(asio::ssl::context::tls_server);
    server_tls_->use_certificate_chain_file((suite_dir_ / "cert.pem").string());
    server_tls_->use_private_key_file((suite_dir_ / "key.pem").string(), asio::ssl::context::pem);
  }

  void TearDown() override {
    if (peer_) peer_->finish();
    courier_.reset();
    resolver_.reset();
  }

  Courier& courier() {
    if (!courier_) courier_.emplace(settings_, *resolver_, io_.get_executor());
    return *courier_;
  }

  std::vector<Outcome> deliver(std::vector<Parcel>& parcels,
                               config::TlsPolicy tls = config::TlsPolicy::may,
                               Courier::Report report = {}) {
    auto result = asio::co_spawn(io_, courier().deliver(domain_, parcels, tls, std::move(report)),
                                 asio::use_future);
    io_.restart();
    io_.run();
    return result.get();
  }

  std::string remote_host() const {
    return "127.0.0.1[127.0.0.1]:" + std::to_string(next_hop_.port);
  }

  void expect_outcome(const Outcome& outcome, store::QueueRecipientId id, Kind kind,
                      const std::string& reply) {
    EXPECT_EQ(outcome.recipient, id);
    EXPECT_EQ(outcome.kind, kind) << outcome.reply;
    EXPECT_EQ(outcome.reply, reply);
  }

  asio::ssl::context& server_tls() { return *server_tls_; }

  inline static std::filesystem::path suite_dir_;
  config::Settings settings_;
  std::optional<ScriptedPeer> peer_;
  Endpoint next_hop_;
  const std::string domain_ = "example.org";
  asio::io_context io_;
  std::optional<dns::Resolver> resolver_;
  std::optional<Courier> courier_;
  std::optional<asio::ssl::context> server_tls_;
};

TEST_F(SmtpClientTest, OneMessageWithoutPipeliningIsDotStuffed) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"8BITMIME", "ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 End data with <CR><LF>.<CR><LF>\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok: queued as 4F2A\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(11, "bob@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 11, Kind::delivered, "250 2.0.0 Ok: queued as 4F2A");
  EXPECT_EQ(outcomes[0].remote_host, remote_host());
  EXPECT_FALSE(outcomes[0].dsn_relayed);
  EXPECT_FALSE(outcomes[0].unconfirmed);
}

TEST_F(SmtpClientTest, HeloWhenEhloIsRefusedAndNoParametersThen) {
  peer_->play({[](PeerConnection& peer) {
    peer.say("220 old.example.org SMTP\r\n");
    peer.expect("EHLO client.example.test\r\n");
    peer.say("502 5.5.2 Error: command not recognized\r\n");
    peer.expect("HELO client.example.test\r\n");
    peer.say("250 old.example.org\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\n");  // no BODY, RET, ENVID without EHLO
    peer.say("250 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");  // no NOTIFY, ORCPT
    peer.say("250 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go ahead\r\n");
    peer.expect(stuffed);
    peer.say("250 Ok\r\n");
    quit(peer);
  }});
  auto p =
      parcel({recipient(1, "bob@example.org", store::notify_success, "rfc822;bob@example.org")});
  p.eight_bit = true;
  p.envid = "id-1";
  p.ret = store::DsnReturn::full;
  std::vector<Parcel> parcels{p};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 Ok");
  EXPECT_TRUE(outcomes[0].dsn_relayed);  // NOTIFY=SUCCESS could not be passed on
}

TEST_F(SmtpClientTest, PipeliningSendsMailRcptsAndDataInOneWrite) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "SIZE 1000000", "ENHANCEDSTATUSCODES"});
    // All of it arrives before the peer has answered anything.
    peer.expect("MAIL FROM:<alice@example.net> SIZE=" + std::to_string(content.size()) +
                "\r\n"
                "RCPT TO:<bob@example.org>\r\n"
                "RCPT TO:<carol@example.org>\r\n"
                "RCPT TO:<dave@example.org>\r\n"
                "DATA\r\n");
    peer.say(
        "250 2.1.0 Ok\r\n"
        "250 2.1.5 Ok\r\n"
        "550-5.1.1 <carol@example.org>: Recipient address rejected:\r\n"
        "550 5.1.1 User unknown in virtual mailbox table\r\n"
        "450 4.2.0 <dave@example.org>: Recipient address rejected: Greylisted\r\n"
        "354 End data with <CR><LF>.<CR><LF>\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok: queued as 99\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{
      parcel({recipient(1, "bob@example.org"), recipient(2, "carol@example.org"),
              recipient(3, "dave@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 3u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 Ok: queued as 99");
  expect_outcome(outcomes[1], 2, Kind::permanent,
                 "550 5.1.1 <carol@example.org>: Recipient address rejected:; User unknown in "
                 "virtual mailbox table");
  expect_outcome(outcomes[2], 3, Kind::temporary,
                 "450 4.2.0 <dave@example.org>: Recipient address rejected: Greylisted");
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome.remote_host, remote_host());
}

TEST_F(SmtpClientTest, MailRefusedWhilePipeliningFailsEveryRecipient) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING"});
    peer.expect(
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
        "RCPT TO:<carol@example.org>\r\nDATA\r\n");
    peer.say(
        "553 5.7.1 <alice@example.net>: Sender address rejected\r\n"
        "503 5.5.1 Error: need MAIL command\r\n"
        "503 5.5.1 Error: need MAIL command\r\n"
        "503 5.5.1 Error: need RCPT command\r\n");
    quit(peer);  // no RSET: there is no transaction to reset
  }});
  std::vector<Parcel> parcels{
      parcel({recipient(1, "bob@example.org"), recipient(2, "carol@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& outcome : outcomes)
    EXPECT_EQ(outcome.reply, "553 5.7.1 <alice@example.net>: Sender address rejected");
  EXPECT_EQ(outcomes[0].kind, Kind::permanent);
  EXPECT_EQ(outcomes[1].kind, Kind::permanent);
}

TEST_F(SmtpClientTest, SizeOverThePeersLimitFailsWithoutSendingAnything) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "SIZE 100"});
    quit(peer);  // no MAIL at all
  }});
  std::vector<Parcel> parcels{
      parcel({recipient(1, "bob@example.org"), recipient(2, "carol@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  const auto expected = "552 5.3.4 message size " + std::to_string(content.size()) +
                        " exceeds the limit 100 of " + remote_host();
  expect_outcome(outcomes[0], 1, Kind::permanent, expected);
  expect_outcome(outcomes[1], 2, Kind::permanent, expected);
}

TEST_F(SmtpClientTest, SmtpUtf8NeededButNotOfferedFailsWithoutSendingAnything) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "8BITMIME"});
    quit(peer);
  }});
  auto p = parcel({recipient(1, "bob@example.org")});
  p.smtputf8 = true;
  std::vector<Parcel> parcels{p};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(
      outcomes[0], 1, Kind::permanent,
      "553 5.6.7 " + remote_host() + " does not support SMTPUTF8, which the message needs");
}

TEST_F(SmtpClientTest, EightBitAndSmtpUtf8AreDeclaredWhenOffered) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"8BITMIME", "SMTPUTF8"});
    peer.expect("MAIL FROM:<alice@example.net> BODY=8BITMIME SMTPUTF8\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<b\xc3\xb6rje@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok\r\n");
    quit(peer);
  }});
  auto p = parcel({recipient(1, "b\xc3\xb6rje@example.org")});
  p.smtputf8 = true;
  p.eight_bit = true;
  std::vector<Parcel> parcels{p};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered) << outcomes[0].reply;
}

TEST_F(SmtpClientTest, PerRecipientRepliesWithoutPipeliningAndRsetWhenNoneIsAccepted) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("452 4.2.2 mailbox full\r\n");
    peer.expect("RCPT TO:<carol@example.org>\r\n");
    peer.say("550 5.1.1 no such user\r\n");
    peer.expect("RSET\r\n");  // no recipient: no DATA, and a clean state for what follows
    peer.say("250 2.0.0 Ok\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{
      parcel({recipient(1, "bob@example.org"), recipient(2, "carol@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  expect_outcome(outcomes[0], 1, Kind::temporary, "452 4.2.2 mailbox full");
  expect_outcome(outcomes[1], 2, Kind::permanent, "550 5.1.1 no such user");
}

TEST_F(SmtpClientTest, DataRefusedOrOddlyAnsweredDeliversNothing) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("250 2.0.0 what content?\r\n");  // no 354: nothing was delivered
    peer.expect("RSET\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<carol@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("554 5.7.1 no content from you\r\n");
    peer.expect("RSET\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}),
                              parcel({recipient(2, "carol@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "451 4.5.0 unexpected reply: 250 2.0.0 what content?");
  expect_outcome(outcomes[1], 2, Kind::permanent, "554 5.7.1 no content from you");
}

TEST_F(SmtpClientTest, SeveralMessagesOnOneConnection) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 first\r\n");
    // The second message: no recipient accepted, DATA refused, then RSET.
    peer.expect(
        "MAIL FROM:<>\r\nRCPT TO:<carol@example.org>\r\nRCPT TO:<dave@example.org>\r\n"
        "DATA\r\n");
    peer.say(
        "250 2.1.0 Ok\r\n550 5.1.1 unknown carol\r\n550 5.1.1 unknown dave\r\n"
        "554 5.5.1 Error: no valid recipients\r\n");
    peer.expect("RSET\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<erin@example.org>\r\nDATA\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    peer.expect("hello\r\n.\r\n");
    peer.say("250 2.0.0 third\r\n");
    quit(peer);
  }});
  auto bounce = parcel({recipient(2, "carol@example.org"), recipient(3, "dave@example.org")});
  bounce.reverse_path = "";
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}), bounce,
                              parcel({recipient(4, "erin@example.org")}, "hello\r\n")};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 4u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 first");
  expect_outcome(outcomes[1], 2, Kind::permanent, "550 5.1.1 unknown carol");
  expect_outcome(outcomes[2], 3, Kind::permanent, "550 5.1.1 unknown dave");
  expect_outcome(outcomes[3], 4, Kind::delivered, "250 2.0.0 third");
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 1);
}

TEST_F(SmtpClientTest, Reply421MidSessionDefersWhatIsLeft) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 first\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n");
    peer.say("421 4.3.2 mx.example.org shutting down\r\n");
    peer.close();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}),
                              parcel({recipient(2, "carol@example.org")}),
                              parcel({recipient(3, "dave@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 3u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 first");
  const std::string deferred = "421 4.3.2 mx.example.org shutting down (in reply to MAIL FROM)";
  expect_outcome(outcomes[1], 2, Kind::temporary, deferred);
  expect_outcome(outcomes[2], 3, Kind::temporary, deferred);
  EXPECT_EQ(outcomes[1].remote_host, remote_host());
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 1);
}

TEST_F(SmtpClientTest, StartTlsThenEhloAgain) {
  peer_->play({[this](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "STARTTLS"});
    peer.expect("STARTTLS\r\n");
    peer.say("220 2.0.0 Ready to start TLS\r\n");
    ASSERT_TRUE(peer.start_tls(server_tls()));
    EXPECT_EQ(peer.sni(), "");  // the next hop is an IP address: no SNI (RFC 6066 3)
    peer.expect("EHLO client.example.test\r\n");
    peer.say(ehlo_reply({"PIPELINING"}));
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 under TLS\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels, config::TlsPolicy::encrypt);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 under TLS");
}

TEST_F(SmtpClientTest, EncryptWithoutStartTlsSendsNothing) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "8BITMIME"});
    quit(peer);  // no MAIL
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels, config::TlsPolicy::encrypt);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "450 4.7.4 TLS required but not offered by " + remote_host());
  EXPECT_EQ(outcomes[0].remote_host, remote_host());
}

TEST_F(SmtpClientTest, EncryptWithStartTlsRefusedSendsNothing) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"STARTTLS"});
    peer.expect("STARTTLS\r\n");
    peer.say("454 4.7.0 TLS not available due to local problem\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels, config::TlsPolicy::encrypt);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "450 4.7.4 TLS required but STARTTLS refused by " + remote_host() +
                     ": 454 4.7.0 TLS not available due to local problem");
}

// A handshake that fails: the peer answers the ClientHello with plain text.
void botched_handshake(PeerConnection& peer) {
  greet(peer, {"PIPELINING", "STARTTLS"});
  peer.expect("STARTTLS\r\n");
  peer.say("220 2.0.0 Ready to start TLS\r\n");
  peer.say("this is not TLS at all\r\n");
  peer.close();
}

TEST_F(SmtpClientTest, MayRetriesInPlainTextAfterAFailedHandshake) {
  peer_->play({botched_handshake, [](PeerConnection& peer) {
                 greet(peer, {"PIPELINING", "STARTTLS"});  // offered again, not taken
                 peer.expect(
                     "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
                 peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
                 peer.expect(stuffed);
                 peer.say("250 2.0.0 in plain text\r\n");
                 quit(peer);
               }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels, config::TlsPolicy::may);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 in plain text");
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 2);
}

TEST_F(SmtpClientTest, EncryptDefersAfterAFailedHandshake) {
  peer_->play({botched_handshake});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels, config::TlsPolicy::encrypt);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "450 4.7.5 TLS handshake with " + remote_host() + " failed");
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 1);
}

TEST_F(SmtpClientTest, DsnParametersArePassedOnWhenOffered) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"DSN", "ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net> RET=HDRS ENVID=QQ+2Bid+3D1\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect(
        "RCPT TO:<bob@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.org\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("RCPT TO:<carol@example.org> NOTIFY=NEVER\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("RCPT TO:<dave@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok\r\n");
    quit(peer);
  }});
  auto p = parcel({recipient(1, "bob@example.org", store::notify_success | store::notify_failure,
                             "rfc822;bob+x@example.org"),
                   recipient(2, "carol@example.org", store::notify_never),
                   recipient(3, "dave@example.org")});
  p.envid = "QQ+id=1";
  p.ret = store::DsnReturn::headers;
  std::vector<Parcel> parcels{p};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& outcome : outcomes) {
    EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
    EXPECT_FALSE(outcome.dsn_relayed);  // the peer takes NOTIFY on
  }
}

TEST_F(SmtpClientTest, WithoutDsnASuccessNoticeIsOwedAsRelayed) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING"});
    peer.expect(
        "MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
        "RCPT TO:<carol@example.org>\r\nDATA\r\n");
    peer.say("250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 Ok\r\n");
    quit(peer);
  }});
  auto p = parcel({recipient(1, "bob@example.org", store::notify_success, "rfc822;bob@example.org"),
                   recipient(2, "carol@example.org", store::notify_failure)});
  p.envid = "id";
  p.ret = store::DsnReturn::full;
  std::vector<Parcel> parcels{p};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered);
  EXPECT_TRUE(outcomes[0].dsn_relayed);
  EXPECT_EQ(outcomes[1].kind, Kind::delivered);
  EXPECT_FALSE(outcomes[1].dsn_relayed);
}

TEST_F(SmtpClientTest, ALargeMessageGoesInBlocks) {
  std::string big;
  for (int i = 0; big.size() < 300'000; ++i)
    big += (i % 7 == 0 ? ".line " : "line ") + std::to_string(i) + " of a large message\r\n";
  std::string wire;
  for (std::size_t start = 0; start < big.size();) {
    const auto end = big.find('\n', start) + 1;
    if (big[start] == '.') wire += '.';
    wire.append(big, start, end - start);
    start = end;
  }
  wire += ".\r\n";
  peer_->play({[&wire](PeerConnection& peer) {
    greet(peer, {"PIPELINING"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 Ok\r\n250 Ok\r\n354 go\r\n");
    peer.expect(wire);
    peer.say("250 2.0.0 big one\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}, big)};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 big one");
}

TEST_F(SmtpClientTest, AMissingGreetingTimesOut) {
  smtp::ClientTimeouts timeouts;
  timeouts.greeting = 1s;
  courier().set_timeouts(timeouts);
  peer_->play({[](PeerConnection& peer) {
    peer.stall(1500ms);
    peer.expect_closed();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto started = Clock::now();
  const auto outcomes = deliver(parcels);
  EXPECT_LT(Clock::now() - started, 1500ms);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "451 4.4.1 no answer from " + next_hop_.to_string() +
                     " (route for example.org); last: timeout after 1s waiting for the greeting "
                     "from " +
                     remote_host());
  EXPECT_EQ(outcomes[0].remote_host, "");
}

TEST_F(SmtpClientTest, ATricklingReplyStillTimesOut) {
  smtp::ClientTimeouts timeouts;
  timeouts.greeting = 1s;
  courier().set_timeouts(timeouts);
  peer_->play({[](PeerConnection& peer) {
    peer.say("220-mx.example.org");
    for (int i = 0; i < 8; ++i) {  // a byte every 200 ms: each read alone would be in time
      peer.stall(200ms);
      peer.say("x");
    }
    peer.expect_closed();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto started = Clock::now();
  const auto outcomes = deliver(parcels);
  EXPECT_LT(Clock::now() - started, 1500ms);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::temporary);
  EXPECT_NE(outcomes[0].reply.find("timeout after 1s waiting for the greeting"), std::string::npos)
      << outcomes[0].reply;
}

TEST_F(SmtpClientTest, NoReplyToTheEndOfDataIsUnconfirmed) {
  smtp::ClientTimeouts timeouts;
  timeouts.end_of_data = 1s;
  courier().set_timeouts(timeouts);
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 Ok\r\n250 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.stall(1500ms);
    peer.expect_closed();  // no QUIT after a timeout
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}),
                              parcel({recipient(2, "carol@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "451 4.4.2 no reply from " + remote_host() +
                     " to the end of the message, which may have been delivered");
  EXPECT_TRUE(outcomes[0].unconfirmed);
  // The second message never had its turn: deferred with the session's trouble.
  expect_outcome(outcomes[1], 2, Kind::temporary,
                 "451 4.4.2 timeout after 1s waiting for the end of data from " + remote_host());
  EXPECT_FALSE(outcomes[1].unconfirmed);
}

TEST_F(SmtpClientTest, AStalledRcptReplyTimesOut) {
  smtp::ClientTimeouts timeouts;
  timeouts.rcpt = 1s;
  courier().set_timeouts(timeouts);
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.stall(1500ms);
    peer.expect_closed();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "451 4.4.2 timeout after 1s waiting for RCPT TO from " + remote_host());
  EXPECT_EQ(outcomes[0].remote_host, remote_host());
}

class SmarthostTest : public SmtpClientTest {
 protected:
  void SetUp() override {
    SmtpClientTest::SetUp();
    const auto file = suite_dir_ / ("logins-" + std::to_string(next_hop_.port));
    std::ofstream(file) << "# smarthost logins\n\n  127.0.0.1:" << next_hop_.port
                        << "  relay-user   pass with spaces \n";
    settings_.delivery.route_auth_file = file;
  }
};

TEST_F(SmarthostTest, AuthPlainUnderTls) {
  peer_->play({[this](PeerConnection& peer) {
    greet(peer, {"STARTTLS", "AUTH PLAIN LOGIN"});
    peer.expect("STARTTLS\r\n");  // never AUTH in plain text
    peer.say("220 2.0.0 Ready\r\n");
    ASSERT_TRUE(peer.start_tls(server_tls()));
    peer.expect("EHLO client.example.test\r\n");
    peer.say(ehlo_reply({"PIPELINING", "AUTH LOGIN PLAIN"}));
    std::string plain;
    plain += '\0';
    plain += "relay-user";
    plain += '\0';
    plain += "pass with spaces";
    peer.expect("AUTH PLAIN " + base64_encode(plain) + "\r\n");
    peer.say("235 2.7.0 Authentication successful\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 Ok\r\n250 Ok\r\n354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 relayed\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 relayed");
}

TEST_F(SmarthostTest, RefusedCredentialsDefer) {
  peer_->play({[this](PeerConnection& peer) {
    greet(peer, {"STARTTLS"});
    peer.expect("STARTTLS\r\n");
    peer.say("220 2.0.0 Ready\r\n");
    ASSERT_TRUE(peer.start_tls(server_tls()));
    peer.expect("EHLO client.example.test\r\n");
    peer.say(ehlo_reply({"AUTH PLAIN"}));
    EXPECT_EQ(peer.line().rfind("AUTH PLAIN ", 0), 0u);
    peer.say("535 5.7.8 Error: authentication failed\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "435 4.7.8 Error: authentication failed (in reply to AUTH)");
}

TEST_F(SmarthostTest, NoCredentialsWithoutTls) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"AUTH PLAIN LOGIN"});
    quit(peer);  // neither AUTH nor MAIL
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "450 4.7.0 not sending credentials to " + remote_host() + " without TLS");
}

TEST(RouteLogins, FileFormat) {
  const auto logins = RouteLogins::parse(
      "# comment\n\nSmart.Example:587 user secret\n[2001:db8::1]:25 u2 two words\r\n", "test");
  EXPECT_EQ(logins.size(), 2u);
  const auto* first = logins.find(Endpoint{"smart.example", 587});
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->user, "user");
  EXPECT_EQ(first->password, "secret");
  const auto* second = logins.find(Endpoint{"2001:db8::1", 25});
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->password, "two words");
  EXPECT_EQ(logins.find(Endpoint{"smart.example", 25}), nullptr);
}

TEST(RouteLogins, BadLinesNameTheLineButNeverThePassword) {
  const std::vector<std::string> bad = {"smart.example user secret\n", "smart.example:587 user\n",
                                        "smart.example:587\n", "a:1 u p\nA:1 u2 p2\n"};
  for (const auto& text : bad) {
    try {
      RouteLogins::parse(text, "logins");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("logins line "), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
    }
  }
}

TEST_F(SmtpClientTest, StopCancelsASessionAndDefers) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"PIPELINING"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.stall(1500ms);  // far shorter than the client's 5 minutes, far longer than the stop
    peer.expect_closed();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")})};
  auto& c = courier();
  asio::steady_timer timer(io_, 300ms);
  timer.async_wait([&c](const boost::system::error_code&) { c.stop(); });
  const auto started = Clock::now();
  const auto outcomes = deliver(parcels);
  EXPECT_LT(Clock::now() - started, 1500ms);
  ASSERT_EQ(outcomes.size(), 1u);
  expect_outcome(outcomes[0], 1, Kind::temporary,
                 "451 4.3.0 delivery interrupted: maild is stopping");
  // After stop, nothing more is attempted.
  std::vector<Parcel> later{parcel({recipient(2, "carol@example.org")})};
  const auto after = deliver(later);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].reply, "451 4.3.0 delivery interrupted: maild is stopping");
}

// What the queue manager was told of one parcel, and when its recording ended.
struct Reported {
  std::size_t parcel;
  std::vector<Outcome> outcomes;
};

// A recording that takes 200 ms; then `recorded` says whether it worked, and `done` is set.
asio::awaitable<bool> record_slowly(std::vector<Reported>& reports, std::size_t parcel,
                                    std::vector<Outcome> outcomes, bool recorded,
                                    std::atomic<int>& done) {
  reports.push_back({parcel, std::move(outcomes)});
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor, 200ms);
  co_await pause.async_wait(asio::use_awaitable);
  ++done;
  co_return recorded;
}

TEST_F(SmtpClientTest, EachMessageIsReportedAndRecordedBeforeTheNextGoesOut) {
  std::atomic<int> recorded{0};
  std::atomic<int> recorded_at_second_mail{-1};
  std::atomic<int> recorded_at_third_mail{-1};
  peer_->play({[&](PeerConnection& peer) {
    greet(peer, {"ENHANCEDSTATUSCODES"});
    // One message; `seen` gets how many outcomes were recorded when its MAIL arrived.
    const auto message = [&](const std::string& to, const std::string& end,
                             std::atomic<int>* seen) {
      peer.expect("MAIL FROM:<alice@example.net>\r\n");
      if (seen != nullptr) *seen = recorded.load();
      peer.say("250 2.1.0 Ok\r\n");
      peer.expect("RCPT TO:<" + to + ">\r\n");
      peer.say("250 2.1.5 Ok\r\n");
      peer.expect("DATA\r\n");
      peer.say("354 go\r\n");
      peer.expect(stuffed);
      peer.say(end);
    };
    message("bob@example.org", "250 2.0.0 first\r\n", nullptr);
    message("carol@example.org", "550 5.7.1 not for carol\r\n", &recorded_at_second_mail);
    message("dave@example.org", "250 2.0.0 third\r\n", &recorded_at_third_mail);
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}),
                              parcel({recipient(2, "carol@example.org")}),
                              parcel({recipient(3, "dave@example.org")})};
  std::vector<Reported> reports;
  const auto outcomes =
      deliver(parcels, config::TlsPolicy::may, [&](std::size_t p, std::vector<Outcome> o) {
        return record_slowly(reports, p, std::move(o), true, recorded);
      });
  ASSERT_EQ(outcomes.size(), 3u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 first");
  expect_outcome(outcomes[1], 2, Kind::permanent, "550 5.7.1 not for carol");
  expect_outcome(outcomes[2], 3, Kind::delivered, "250 2.0.0 third");
  // Each message's outcome was recorded before the next MAIL went out, not after the batch.
  EXPECT_EQ(recorded_at_second_mail.load(), 1);
  EXPECT_EQ(recorded_at_third_mail.load(), 2);
  ASSERT_EQ(reports.size(), 3u);
  for (std::size_t p = 0; p < reports.size(); ++p) {
    EXPECT_EQ(reports[p].parcel, p);
    ASSERT_EQ(reports[p].outcomes.size(), 1u);
    EXPECT_EQ(reports[p].outcomes[0].recipient, outcomes[p].recipient);
    EXPECT_EQ(reports[p].outcomes[0].reply, outcomes[p].reply);
  }
}

TEST_F(SmtpClientTest, NothingMoreGoesOutOnceAnOutcomeCouldNotBeRecorded) {
  peer_->play({[](PeerConnection& peer) {
    greet(peer, {"ENHANCEDSTATUSCODES"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 first\r\n");
    quit(peer);  // no second message
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}),
                              parcel({recipient(2, "carol@example.org")})};
  std::vector<Reported> reports;
  std::atomic<int> recorded{0};
  const auto outcomes =
      deliver(parcels, config::TlsPolicy::may, [&](std::size_t p, std::vector<Outcome> o) {
        return record_slowly(reports, p, std::move(o), false, recorded);
      });
  ASSERT_EQ(outcomes.size(), 2u);
  expect_outcome(outcomes[0], 1, Kind::delivered, "250 2.0.0 first");
  expect_outcome(outcomes[1], 2, Kind::temporary,
                 "451 4.3.0 not sent: an earlier outcome could not be recorded");
  // Both reported, once each: the second as not sent.
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].parcel, 1u);
  EXPECT_EQ(reports[1].outcomes[0].kind, Kind::temporary);
  EXPECT_EQ(peer_->connections(), 1);
}

}  // namespace
}  // namespace maild::delivery
