// The outbound SMTP client's SOURCE (docs/source-get.md), driven through the
// courier to a scripted peer on loopback TCP, with pickups in a real SQLite
// store: the token instead of DATA, the pickup recorded before the token goes
// out and confirmed after the 250, and the fallbacks (5xx: DATA in the same
// session; 4xx: deferred; the null sender and use_source = false: DATA).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/courier.hpp"
#include "maild/store/store.hpp"
#include "reverse/pickup_desk.hpp"
#include "scripted_peer.hpp"

namespace maild::delivery {
namespace {

namespace asio = boost::asio;
using testing::greet;
using testing::PeerConnection;
using testing::quit;
using testing::ScriptedPeer;
using Kind = Outcome::Kind;

const std::string trace = "Received: from o by client.example.test; Mon, 1 Jan 2024 +0000\r\n";
const std::string content =
    "Subject: dots\r\n"
    "\r\n"
    ".one dot\r\n"
    "end\r\n";
const std::string stuffed = trace +
                            "Subject: dots\r\n"
                            "\r\n"
                            "..one dot\r\n"
                            "end\r\n"
                            ".\r\n";

// "SOURCE <token>": the token, or "" when the line is anything else.
// (No std::regex: GCC 12 warns inside it at -O1 with the sanitizers.)
std::string source_token(const std::string& line) {
  const std::string verb = "SOURCE ";
  if (line.size() != verb.size() + 32 || line.compare(0, verb.size(), verb) != 0) return {};
  const auto token = line.substr(verb.size());
  const bool hex = std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  return hex ? token : std::string();
}

store::QueueRecipient recipient(store::QueueRecipientId id, std::string address) {
  store::QueueRecipient r;
  r.id = id;
  r.address = std::move(address);
  r.domain = "example.org";
  return r;
}

Parcel parcel(std::vector<store::QueueRecipient> recipients, std::string sender) {
  Parcel p;
  p.queue_id = 7;
  p.reverse_path = std::move(sender);
  p.envid = "env-1";
  p.recipients = std::move(recipients);
  p.text = trace + content;
  p.trace_size = trace.size();
  p.arrival = std::chrono::sys_seconds{std::chrono::seconds{1700000000}};
  return p;
}

class SourceClientTest : public ::testing::Test {
 public:
  void SetUp() override {
    char pattern[] = "/tmp/maild-client-source-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    settings_.server.hostname = "client.example.test";
    settings_.store.path = dir_ / "mail.db";
    settings_.store.workers = 2;
    store_ = store::open_store(settings_);
    store_->migrate();
    pool_.emplace(2);
    desk_.emplace(store_->pickup_offers(), pool_->get_executor());
    peer_.emplace("127.0.0.1");
    settings_.delivery.routes = {
        config::Route{"example.org", Endpoint{"127.0.0.1", peer_->port()}}};
    config::DnsSettings dns;
    dns.servers = {Endpoint{"127.0.0.1", 9}};  // never asked: the route is an IP address
    resolver_.emplace(dns, io_.get_executor());
  }

  void TearDown() override {
    if (peer_) peer_->finish();
    courier_.reset();
    resolver_.reset();
    if (pool_) pool_->join();
    if (store_) store_->close();
    std::filesystem::remove_all(dir_);
  }

  std::vector<Outcome> deliver(std::vector<Parcel>& parcels) {
    if (!courier_) courier_.emplace(settings_, *resolver_, io_.get_executor(), &*desk_);
    const std::string domain = "example.org";  // deliver() keeps a reference: it must outlive run()
    auto result = asio::co_spawn(io_, courier_->deliver(domain, parcels, config::TlsPolicy::may),
                                 asio::use_future);
    io_.restart();
    io_.run();
    peer_->finish();  // every script has ended: what they saw can be read
    return result.get();
  }

  std::optional<store::Pickup> pickup(const std::string& token) {
    return store_->reverse().find_pickup(token);
  }

  std::filesystem::path dir_;
  config::Settings settings_;
  std::unique_ptr<store::Store> store_;
  std::optional<asio::thread_pool> pool_;
  std::optional<reverse::StorePickupDesk> desk_;
  std::optional<ScriptedPeer> peer_;
  asio::io_context io_;
  std::optional<dns::Resolver> resolver_;
  std::optional<Courier> courier_;
};

TEST_F(SourceClientTest, APeerOfferingSourceGetsATokenAndNoData) {
  std::string token;
  std::optional<store::Pickup> before_reply;
  peer_->play({[&](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "ENHANCEDSTATUSCODES", "SOURCE"});
    // MAIL and the RCPTs in one group; SOURCE is not part of it.
    peer.expect(
        "MAIL FROM:<alice@example.net>\r\n"
        "RCPT TO:<bob@example.org>\r\n"
        "RCPT TO:<carol@example.org>\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n");
    token = source_token(peer.line());
    before_reply = pickup(token);  // recorded before the token went out
    peer.say("250 2.0.0 " + token + " accepted for retrieval\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel(
      {recipient(1, "bob@example.org"), recipient(2, "carol@example.org")}, "alice@example.net")};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(token.size(), 32u) << "no SOURCE with a token";
  ASSERT_TRUE(before_reply);
  EXPECT_EQ(before_reply->state, store::PickupState::offered);

  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered);
  // The token is a secret: the queue records and logs only its start.
  EXPECT_EQ(outcomes[0].reply, "250 2.0.0 " + token.substr(0, 8) + "... accepted for retrieval");
  EXPECT_EQ(outcomes[1].kind, Kind::permanent);

  const auto after = pickup(token);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::PickupState::awaiting);
  EXPECT_NE(after->confirmed_at, store::UnixTime{});
  EXPECT_EQ(after->reverse_path, "alice@example.net");
  EXPECT_EQ(after->envid, "env-1");
  EXPECT_EQ(after->arrival, store::UnixTime{std::chrono::seconds{1700000000}});
  EXPECT_EQ(after->peer, outcomes[0].remote_host);
  ASSERT_EQ(after->recipients.size(), 1u);  // only what RCPT accepted
  EXPECT_EQ(after->recipients[0].address, "bob@example.org");
  EXPECT_EQ(after->recipients[0].domain, "example.org");
  // What GET will send: the outbound trace, then the content, byte for byte.
  const auto text = store_->reverse().pickup_text(after->id);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->trace + text->content, trace + content);
  EXPECT_EQ(text->trace, trace);
}

TEST_F(SourceClientTest, A5xxToSourceFallsBackToDataInTheSameSession) {
  std::string token;
  peer_->play({[&](PeerConnection& peer) {
    greet(peer, {"ENHANCEDSTATUSCODES", "SOURCE"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    token = source_token(peer.line());
    peer.say("550 5.7.1 SOURCE is not accepted here: send the message with DATA\r\n");
    peer.expect("RSET\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 2.1.0 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.5 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go ahead\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok: queued as 1\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}, "alice@example.net")};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(token.size(), 32u);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered);
  EXPECT_EQ(outcomes[0].reply, "250 2.0.0 Ok: queued as 1");
  const auto cancelled = pickup(token);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, store::PickupState::purged);
  EXPECT_FALSE(store_->reverse().pickup_text(cancelled->id));
}

TEST_F(SourceClientTest, A4xxToSourceDefersAndCancelsThePickup) {
  std::string token;
  peer_->play({[&](PeerConnection& peer) {
    greet(peer, {"PIPELINING", "ENHANCEDSTATUSCODES", "SOURCE"});
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.org>\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
    token = source_token(peer.line());
    peer.say("452 4.3.1 too many pending retrievals for your domain, try again later\r\n");
    peer.expect("RSET\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}, "alice@example.net")};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(token.size(), 32u);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::temporary);
  EXPECT_EQ(outcomes[0].reply,
            "452 4.3.1 too many pending retrievals for your domain, try again later");
  EXPECT_FALSE(outcomes[0].unconfirmed);
  const auto cancelled = pickup(token);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->state, store::PickupState::purged);
}

TEST_F(SourceClientTest, NoReplyToSourceLeavesThePickupOfferedAndIsUnconfirmed) {
  std::string token;
  peer_->play({[&](PeerConnection& peer) {
    greet(peer, {"SOURCE"});
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 Ok\r\n");
    peer.expect("RCPT TO:<bob@example.org>\r\n");
    peer.say("250 Ok\r\n");
    token = source_token(peer.line());
    peer.close();
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}, "alice@example.net")};
  const auto outcomes = deliver(parcels);
  ASSERT_EQ(token.size(), 32u);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::temporary);
  EXPECT_TRUE(outcomes[0].unconfirmed);
  EXPECT_TRUE(outcomes[0].reply.starts_with("451 4.4.2 no reply from ")) << outcomes[0].reply;
  const auto offered = pickup(token);
  ASSERT_TRUE(offered);
  EXPECT_EQ(offered->state, store::PickupState::offered);  // GET still answers
  EXPECT_TRUE(store_->reverse().pickup_text(offered->id));
}

// A peer that gets the message by DATA, pipelined, and no pickup is made.
void expect_data(SourceClientTest& test, const std::vector<std::string>& extensions,
                 const std::string& sender) {
  test.peer_->play({[extensions, sender](PeerConnection& peer) {
    greet(peer, extensions);
    peer.expect("MAIL FROM:<" + sender + ">\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
    peer.say("250 Ok\r\n250 Ok\r\n354 go ahead\r\n");
    peer.expect(stuffed);
    peer.say("250 2.0.0 Ok: queued as 2\r\n");
    quit(peer);
  }});
  std::vector<Parcel> parcels{parcel({recipient(1, "bob@example.org")}, sender)};
  const auto outcomes = test.deliver(parcels);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered);
  EXPECT_EQ(outcomes[0].reply, "250 2.0.0 Ok: queued as 2");
  EXPECT_TRUE(test.store_->reverse().list_pickups(10).empty());
}

TEST_F(SourceClientTest, ABounceGoesByDataEvenToASourcePeer) {
  expect_data(*this, {"PIPELINING", "SOURCE"}, "");
}

TEST_F(SourceClientTest, UseSourceOffSendsData) {
  settings_.reverse.use_source = false;
  expect_data(*this, {"PIPELINING", "SOURCE"}, "alice@example.net");
}

TEST_F(SourceClientTest, APeerWithoutSourceGetsData) {
  expect_data(*this, {"PIPELINING"}, "alice@example.net");
}

}  // namespace
}  // namespace maild::delivery
