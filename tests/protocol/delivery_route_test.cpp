// Routing and the courier: static routes, MX hosts from a real dnsmasq
// (preference fallback, implicit MX, null MX, NXDOMAIN, a silent server) and
// scripted SMTP peers on 127.0.0.x, all on one port as MX hosts share
// [delivery] smtp_port; and the per_destination limit.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/courier.hpp"
#include "dnsmasq_fixture.hpp"
#include "scripted_peer.hpp"

namespace maild::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::PeerConnection;
using testing::ScriptedPeer;
using Clock = std::chrono::steady_clock;
using Kind = Outcome::Kind;

// 127.0.0.2: the MX that works; 127.0.0.3: nothing listens (refused);
// 127.0.0.4: an MX that greets with 421; 127.0.0.5: a smarthost.
const std::vector<std::string> zone = {
    "--local=/test/",
    "--mx-host=pref.test,mx1.pref.test,10",
    "--mx-host=pref.test,mx2.pref.test,20",
    "--host-record=mx1.pref.test,127.0.0.3",
    "--host-record=mx2.pref.test,127.0.0.2",
    "--mx-host=busy.test,busy-mx.test,10",
    "--mx-host=busy.test,mx2.pref.test,20",
    "--host-record=busy-mx.test,127.0.0.4",
    "--mx-host=dead.test,mx1.pref.test,10",
    "--mx-host=dead.test,mx1.pref.test,20",
    "--mx-host=ghost.test,nowhere.test,10",
    "--mx-host=null.test,.,0",
    "--host-record=implicit.test,127.0.0.2",
    "--host-record=smart.test,127.0.0.5",
    "--txt-record=txtonly.test,nothing for mail here",
};

const std::string text = "Subject: routed\r\n\r\nhello\r\n";

Parcel parcel_for(const std::string& address) {
  Parcel p;
  p.queue_id = 1;
  p.reverse_path = "alice@example.net";
  store::QueueRecipient r;
  r.id = 5;
  r.address = address;
  r.domain = address.substr(address.find('@') + 1);
  p.recipients.push_back(r);
  p.text = text;
  return p;
}

// The greeting and one message of parcel_for(address), as the peer sees them.
void accepts_one(PeerConnection& peer, const std::string& address) {
  peer.say("220 mx ESMTP\r\n");
  peer.expect("EHLO client.example.test\r\n");
  peer.say("250-mx\r\n250 PIPELINING\r\n");
  peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<" + address + ">\r\nDATA\r\n");
  peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  peer.expect(text + ".\r\n");
  peer.say("250 2.0.0 Ok: queued\r\n");
}

// A whole successful delivery of parcel_for(address).
ScriptedPeer::Script accepts(const std::string& address) {
  return [address](PeerConnection& peer) {
    accepts_one(peer, address);
    peer.expect("QUIT\r\n");
    peer.say("221 2.0.0 Bye\r\n");
    peer.expect_closed();
  };
}

class DeliveryRouteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    binary_ = testing::dnsmasq_path();
    if (binary_.empty()) return;
    const char* tmp = std::getenv("MAILD_TEST_TMP");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/maild-route-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return;
    folder_ = new std::filesystem::path(pattern);
    server_ = new testing::Dnsmasq;
    started_ = server_->start(binary_, *folder_, zone);
    const auto command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        (*folder_ / "key.pem").string() + " -out " + (*folder_ / "cert.pem").string() +
        " -days 2 -subj /CN=mx2.pref.test 2>/dev/null";
    certificate_ = std::system(command.c_str()) == 0;
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) server_->stop();
    delete server_;
    server_ = nullptr;
    if (folder_ != nullptr) {
      std::error_code ignored;
      std::filesystem::remove_all(*folder_, ignored);
    }
    delete folder_;
    folder_ = nullptr;
  }

  void SetUp() override {
    if (binary_.empty()) GTEST_SKIP() << "dnsmasq is not installed (scripts/install-deps.sh test)";
    ASSERT_TRUE(started_) << "dnsmasq did not start; its log:\n" << (server_ ? server_->log() : "");
    mx_.emplace("127.0.0.2");  // its port is every MX host's port
    settings_.server.hostname = "client.example.test";
    settings_.delivery.smtp_port = mx_->port();
    use_dns(server_->port(), Seconds{5});
  }

  void TearDown() override {
    for (auto* peer : {&mx_, &busy_, &smart_})
      if (*peer) (*peer)->finish();
    courier_.reset();
    resolver_.reset();
  }

  void use_dns(std::uint16_t port, Seconds timeout) {
    courier_.reset();
    config::DnsSettings dns;
    dns.servers = {Endpoint{"127.0.0.1", port}};
    dns.timeout = timeout;
    resolver_.emplace(dns, io_.get_executor());
  }

  std::vector<Outcome> deliver(const std::string& domain, std::vector<Parcel>& parcels,
                               config::TlsPolicy tls = config::TlsPolicy::may) {
    if (!courier_) courier_.emplace(settings_, *resolver_, io_.get_executor());
    domain_ = domain;
    auto result = asio::co_spawn(io_, courier_->deliver(domain_, parcels, tls), asio::use_future);
    io_.restart();
    io_.run();
    return result.get();
  }

  Outcome deliver_one(const std::string& address) {
    std::vector<Parcel> parcels{parcel_for(address)};
    auto outcomes = deliver(address.substr(address.find('@') + 1), parcels);
    EXPECT_EQ(outcomes.size(), 1u);
    return outcomes.empty() ? Outcome{} : outcomes.front();
  }

  std::string port_suffix() const { return ":" + std::to_string(mx_->port()); }

  static inline std::string binary_;
  static inline std::filesystem::path* folder_ = nullptr;
  static inline testing::Dnsmasq* server_ = nullptr;
  static inline bool started_ = false;
  static inline bool certificate_ = false;
  config::Settings settings_;
  std::optional<ScriptedPeer> mx_, busy_, smart_;
  asio::io_context io_;
  std::optional<dns::Resolver> resolver_;
  std::optional<Courier> courier_;
  std::string domain_;
};

TEST_F(DeliveryRouteTest, TheNextMxWhenTheFirstRefusesConnections) {
  mx_->play({accepts("bob@pref.test")});
  const auto outcome = deliver_one("bob@pref.test");
  EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
  EXPECT_EQ(outcome.reply, "250 2.0.0 Ok: queued");
  EXPECT_EQ(outcome.remote_host, "mx2.pref.test[127.0.0.2]" + port_suffix());
}

TEST_F(DeliveryRouteTest, TheNextMxAfterA421Greeting) {
  busy_.emplace("127.0.0.4", mx_->port());
  busy_->play({[](PeerConnection& peer) {
    peer.say("421 4.3.2 busy-mx.test too busy, try later\r\n");
    peer.close();
  }});
  mx_->play({accepts("bob@busy.test")});
  const auto outcome = deliver_one("bob@busy.test");
  EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
  EXPECT_EQ(outcome.remote_host, "mx2.pref.test[127.0.0.2]" + port_suffix());
  busy_->finish();
  EXPECT_EQ(busy_->connections(), 1);
}

TEST_F(DeliveryRouteTest, AfterA421MidSessionTheNextMxGetsWhatIsLeft) {
  busy_.emplace("127.0.0.4", mx_->port());
  busy_->play({[](PeerConnection& peer) {
    accepts_one(peer, "bob@busy.test");
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<carol@busy.test>\r\nDATA\r\n");
    peer.say("421 4.3.2 busy-mx.test going down\r\n");
    peer.close();
  }});
  mx_->play({accepts("carol@busy.test")});
  std::vector<Parcel> parcels{parcel_for("bob@busy.test"), parcel_for("carol@busy.test")};
  const auto outcomes = deliver("busy.test", parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered) << outcomes[0].reply;
  EXPECT_EQ(outcomes[0].remote_host, "busy-mx.test[127.0.0.4]" + port_suffix());
  EXPECT_EQ(outcomes[1].kind, Kind::delivered) << outcomes[1].reply;
  EXPECT_EQ(outcomes[1].remote_host, "mx2.pref.test[127.0.0.2]" + port_suffix());
}

TEST_F(DeliveryRouteTest, WhenEveryMxFailsTheLastProblemDefers) {
  const auto outcome = deliver_one("bob@dead.test");
  EXPECT_EQ(outcome.kind, Kind::temporary);
  EXPECT_EQ(outcome.reply,
            "451 4.4.1 no answer from any MX of dead.test; last: connect to "
            "mx1.pref.test[127.0.0.3]" +
                port_suffix() + ": Connection refused");
  EXPECT_EQ(outcome.remote_host, "");
}

TEST_F(DeliveryRouteTest, AServersReplyIsTheProblemThatCounts) {
  busy_.emplace("127.0.0.4", mx_->port());
  busy_->play({[](PeerConnection& peer) {
    peer.say("421 4.3.2 busy-mx.test too busy, try later\r\n");
    peer.close();
  }});
  mx_->play({[](PeerConnection& peer) {
    peer.say("554 5.7.1 mx2 does not like you\r\n");
    peer.close();
  }});
  const auto outcome = deliver_one("bob@busy.test");
  EXPECT_EQ(outcome.kind, Kind::temporary);  // never a bounce before any message was sent
  EXPECT_EQ(outcome.reply, "454 4.7.1 mx2 does not like you (in reply to the greeting)");
  EXPECT_EQ(outcome.remote_host, "mx2.pref.test[127.0.0.2]" + port_suffix());
}

TEST_F(DeliveryRouteTest, ADomainWithOnlyAnAddressIsItsOwnMx) {
  mx_->play({accepts("bob@implicit.test")});
  const auto outcome = deliver_one("bob@implicit.test");
  EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
  EXPECT_EQ(outcome.remote_host, "implicit.test[127.0.0.2]" + port_suffix());
}

TEST_F(DeliveryRouteTest, NullMxIsPermanent) {
  const auto outcome = deliver_one("bob@null.test");
  EXPECT_EQ(outcome.kind, Kind::permanent);
  EXPECT_EQ(outcome.reply, "556 5.1.10 null.test accepts no mail (null MX)");
  EXPECT_EQ(outcome.remote_host, "");
}

TEST_F(DeliveryRouteTest, NxdomainAndNoDataArePermanent) {
  const auto nx = deliver_one("bob@nx.test");
  EXPECT_EQ(nx.kind, Kind::permanent);
  EXPECT_EQ(nx.reply, "550 5.1.2 domain nx.test does not exist");
  const auto nodata = deliver_one("bob@txtonly.test");
  EXPECT_EQ(nodata.kind, Kind::permanent);
  EXPECT_EQ(nodata.reply, "550 5.1.2 txtonly.test has no MX or address records");
}

TEST_F(DeliveryRouteTest, AnMxHostWithoutAddressDefers) {
  const auto outcome = deliver_one("bob@ghost.test");
  EXPECT_EQ(outcome.kind, Kind::temporary);
  EXPECT_EQ(outcome.reply, "451 4.4.3 no address for nowhere.test: not found");
}

TEST_F(DeliveryRouteTest, ADnsTimeoutDefers) {
  testing::SilentServer silent;
  ASSERT_NE(silent.port(), 0);
  use_dns(silent.port(), Seconds{1});
  const auto started = Clock::now();
  const auto outcome = deliver_one("bob@pref.test");
  EXPECT_LT(Clock::now() - started, 3s);
  EXPECT_EQ(outcome.kind, Kind::temporary);
  EXPECT_EQ(outcome.reply.rfind("451 4.4.3 DNS lookup of MX for pref.test failed: ", 0), 0u)
      << outcome.reply;
}

TEST_F(DeliveryRouteTest, AStaticRouteByNameTakesItsPortAndNoMxLookup) {
  smart_.emplace("127.0.0.5");
  // routed.test does not exist in DNS: an MX lookup would make this permanent.
  settings_.delivery.routes = {
      config::Route{"routed.test", Endpoint{"smart.test", smart_->port()}}};
  smart_->play({accepts("bob@routed.test")});
  const auto outcome = deliver_one("bob@routed.test");
  EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
  EXPECT_EQ(outcome.remote_host, "smart.test[127.0.0.5]:" + std::to_string(smart_->port()));
}

TEST_F(DeliveryRouteTest, TheWildcardRouteTakesWhatHasNoRouteOfItsOwn) {
  smart_.emplace("127.0.0.5");
  settings_.delivery.routes = {
      config::Route{"implicit.test", Endpoint{"127.0.0.2", mx_->port()}},
      config::Route{"*", Endpoint{"smart.test", smart_->port()}},
  };
  smart_->play({accepts("bob@null.test")});  // a null MX means nothing: the route wins
  mx_->play({accepts("carol@implicit.test")});
  EXPECT_EQ(deliver_one("bob@null.test").kind, Kind::delivered);
  EXPECT_EQ(deliver_one("carol@implicit.test").remote_host, "127.0.0.2[127.0.0.2]" + port_suffix());
}

TEST_F(DeliveryRouteTest, StartTlsNamesTheMxHostInSni) {
  ASSERT_TRUE(certificate_);
  asio::ssl::context tls(asio::ssl::context::tls_server);
  tls.use_certificate_chain_file((*folder_ / "cert.pem").string());
  tls.use_private_key_file((*folder_ / "key.pem").string(), asio::ssl::context::pem);
  mx_->play({[&tls](PeerConnection& peer) {
    peer.say("220 mx ESMTP\r\n");
    peer.expect("EHLO client.example.test\r\n");
    peer.say("250-mx\r\n250 STARTTLS\r\n");
    peer.expect("STARTTLS\r\n");
    peer.say("220 2.0.0 go ahead\r\n");
    ASSERT_TRUE(peer.start_tls(tls));
    EXPECT_EQ(peer.sni(), "mx2.pref.test");
    peer.expect("EHLO client.example.test\r\n");
    peer.say("250 mx\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\n");
    peer.say("250 Ok\r\n");
    peer.expect("RCPT TO:<bob@pref.test>\r\n");
    peer.say("250 Ok\r\n");
    peer.expect("DATA\r\n");
    peer.say("354 go\r\n");
    peer.expect(text + ".\r\n");
    peer.say("250 2.0.0 Ok\r\n");
    peer.expect("QUIT\r\n");
    peer.say("221 Bye\r\n");
  }});
  std::vector<Parcel> parcels{parcel_for("bob@pref.test")};
  const auto outcomes = deliver("pref.test", parcels, config::TlsPolicy::encrypt);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered) << outcomes[0].reply;
}

// RFC 5321 5.1: the best MX being ourselves is a loop, bounced at once.
TEST_F(DeliveryRouteTest, TheBestMxAtOurOwnListenerIsALoop) {
  settings_.smtp.listen = {Endpoint{"127.0.0.2", mx_->port()}};
  const auto outcome = deliver_one("bob@implicit.test");
  EXPECT_EQ(outcome.kind, Kind::permanent);
  EXPECT_EQ(outcome.reply,
            "554 5.4.6 mail for implicit.test loops back to myself (implicit.test[127.0.0.2]" +
                port_suffix() + ")");
  EXPECT_EQ(mx_->connections(), 0);
}

TEST_F(DeliveryRouteTest, AStaticRouteToOurOwnNameIsALoop) {
  settings_.server.hostname = "Smart.Test";
  settings_.delivery.routes = {config::Route{"routed.test", Endpoint{"smart.test.", 2526}}};
  const auto outcome = deliver_one("bob@routed.test");
  EXPECT_EQ(outcome.kind, Kind::permanent);
  EXPECT_EQ(outcome.reply, "554 5.4.6 mail for routed.test loops back to myself (smart.test.)");
}

// Ourselves below a better MX: we and what follows are dropped; the better one's trouble defers.
TEST_F(DeliveryRouteTest, OurselvesAsALesserMxEndsTheList) {
  settings_.server.hostname = "mx2.pref.test";
  const auto outcome = deliver_one("bob@pref.test");
  EXPECT_EQ(outcome.kind, Kind::temporary);
  EXPECT_EQ(outcome.reply.rfind("451 4.4.1 no answer from any MX of pref.test; last: ", 0), 0u)
      << outcome.reply;
  EXPECT_EQ(mx_->connections(), 0);
}

// RFC 5321 6.3: max_hops Received fields are relayed; one more is bounced, not sent.
TEST_F(DeliveryRouteTest, TheHopLimitAtAndPastItsEdge) {
  settings_.smtp.max_hops = 2;
  const std::string two = "Received: from a\r\n\tby b\r\nreceived: from c\r\n";
  mx_->play({[&](PeerConnection& peer) {
    peer.say("220 mx ESMTP\r\n");
    peer.expect("EHLO client.example.test\r\n");
    peer.say("250-mx\r\n250 PIPELINING\r\n");
    peer.expect("MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@implicit.test>\r\nDATA\r\n");
    peer.say("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    peer.expect(two + text + ".\r\n");
    peer.say("250 2.0.0 Ok: queued\r\n");
    peer.expect("QUIT\r\n");
    peer.say("221 2.0.0 Bye\r\n");
  }});
  std::vector<Parcel> parcels{parcel_for("bob@implicit.test"), parcel_for("bob@implicit.test")};
  parcels[0].text = two + text;
  parcels[1].queue_id = 2;
  parcels[1].recipients[0].id = 6;
  parcels[1].text = "Received: from z\r\n" + two + text;
  const auto outcomes = deliver("implicit.test", parcels);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, Kind::delivered) << outcomes[0].reply;
  EXPECT_EQ(outcomes[1].kind, Kind::permanent);
  EXPECT_EQ(outcomes[1].reply,
            "554 5.4.6 too many hops (3 Received fields, [smtp] max_hops = 2): mail loop?, not "
            "relayed");
  EXPECT_EQ(outcomes[1].remote_host, "");
}

TEST(Ourselves, OurNameAndListenersAndWildcardsOnLocalAddresses) {
  config::Settings settings;
  settings.server.hostname = "MX.Example.Test";
  settings.smtp.listen = {Endpoint{"127.0.0.7", 2525}};
  settings.smtp.submission = {Endpoint{"0.0.0.0", 587}};
  settings.smtp.submissions = {Endpoint{"::", 465}};
  const Ourselves ourselves(settings, {*parse_ip("192.0.2.9"), *parse_ip("2001:db8::9")});
  EXPECT_TRUE(ourselves.named("mx.example.test"));
  EXPECT_TRUE(ourselves.named("MX.EXAMPLE.TEST."));
  EXPECT_FALSE(ourselves.named("example.test"));
  EXPECT_FALSE(ourselves.named("mx.example.test.evil"));
  EXPECT_TRUE(ourselves.reached_at(*parse_ip("127.0.0.7"), 2525));
  EXPECT_FALSE(ourselves.reached_at(*parse_ip("127.0.0.7"), 2526));
  EXPECT_FALSE(ourselves.reached_at(*parse_ip("127.0.0.8"), 2525));
  EXPECT_TRUE(ourselves.reached_at(*parse_ip("127.1.2.3"), 587));  // a wildcard on loopback
  EXPECT_TRUE(ourselves.reached_at(*parse_ip("::1"), 465));
  EXPECT_TRUE(ourselves.reached_at(*parse_ip("192.0.2.9"), 587));  // and on our interfaces
  EXPECT_TRUE(ourselves.reached_at(*parse_ip("2001:db8::9"), 465));
  EXPECT_FALSE(ourselves.reached_at(*parse_ip("192.0.2.10"), 587));
  EXPECT_FALSE(ourselves.reached_at(*parse_ip("192.0.2.9"), 25));
  const Ourselves nameless(config::Settings{}, {});
  EXPECT_FALSE(nameless.named(""));
}

TEST(Destination, ExactDomainThenWildcardThenMx) {
  config::DeliverySettings delivery;
  delivery.routes = {config::Route{"example.org", Endpoint{"127.0.0.2", 2526}},
                     config::Route{"*", Endpoint{"Smart.Example", 587}}};
  const auto exact = destination_for(delivery, "Example.ORG");
  EXPECT_EQ(exact.domain, "example.org");
  EXPECT_EQ(exact.key, "127.0.0.2:2526");
  ASSERT_TRUE(exact.next_hop);
  EXPECT_EQ(exact.next_hop->port, 2526);
  const auto other = destination_for(delivery, "sub.example.org");  // exact means exact
  EXPECT_EQ(other.key, "smart.example:587");
  delivery.routes.pop_back();
  const auto mx = destination_for(delivery, "elsewhere.example");
  EXPECT_EQ(mx.key, "elsewhere.example");
  EXPECT_FALSE(mx.next_hop);
}

// The per_destination limit: no dnsmasq needed, a route to one scripted peer.
class PerDestinationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_.emplace("127.0.0.1");
    settings_.server.hostname = "client.example.test";
    settings_.delivery.routes = {
        config::Route{"example.org", Endpoint{"127.0.0.1", peer_->port()}}};
    config::DnsSettings dns;
    dns.servers = {Endpoint{"127.0.0.1", 9}};
    resolver_.emplace(dns, io_.get_executor());
  }
  void TearDown() override {
    peer_->finish();
    courier_.reset();
    resolver_.reset();
  }

  // `count` deliveries at once, each of one parcel to example.org.
  std::vector<Outcome> deliver_at_once(int count) {
    courier_.emplace(settings_, *resolver_, io_.get_executor());
    parcels_.clear();
    for (int i = 0; i < count; ++i)
      parcels_.push_back({parcel_for("bob" + std::to_string(i) + "@example.org")});
    std::vector<std::future<std::vector<Outcome>>> results;
    for (auto& parcels : parcels_)
      results.push_back(asio::co_spawn(
          io_, courier_->deliver(domain_, parcels, config::TlsPolicy::may), asio::use_future));
    io_.run();
    std::vector<Outcome> outcomes;
    for (auto& result : results) outcomes.push_back(result.get().at(0));
    return outcomes;
  }

  // Delivers one message, holding the connection for `hold` before the final reply.
  static ScriptedPeer::Script slow(std::chrono::milliseconds hold) {
    return [hold](PeerConnection& peer) {
      peer.say("220 mx ESMTP\r\n");
      peer.expect("EHLO client.example.test\r\n");
      peer.say("250 mx\r\n");
      peer.expect("MAIL FROM:<alice@example.net>\r\n");
      peer.say("250 Ok\r\n");
      (void)peer.line();  // RCPT: which bob comes first does not matter
      peer.say("250 Ok\r\n");
      peer.expect("DATA\r\n");
      peer.say("354 go\r\n");
      peer.expect(text + ".\r\n");
      peer.stall(hold);
      peer.say("250 2.0.0 Ok\r\n");
      peer.expect("QUIT\r\n");
      peer.say("221 Bye\r\n");
    };
  }

  config::Settings settings_;
  std::optional<ScriptedPeer> peer_;
  asio::io_context io_;
  std::optional<dns::Resolver> resolver_;
  std::optional<Courier> courier_;
  const std::string domain_ = "example.org";
  std::vector<std::vector<Parcel>> parcels_;
};

TEST_F(PerDestinationTest, NeverMoreConnectionsAtOnceThanTheLimit) {
  settings_.delivery.per_destination = 2;
  peer_->play({slow(300ms), slow(300ms), slow(300ms), slow(300ms), slow(300ms)});
  const auto outcomes = deliver_at_once(5);
  for (const auto& outcome : outcomes) EXPECT_EQ(outcome.kind, Kind::delivered) << outcome.reply;
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 5);
  EXPECT_EQ(peer_->most_at_once(), 2);
}

TEST_F(PerDestinationTest, ASlotThatStaysBusyDefers) {
  settings_.delivery.per_destination = 1;
  peer_->play({slow(2500ms)});
  courier_.emplace(settings_, *resolver_, io_.get_executor());
  std::vector<Parcel> first{parcel_for("bob@example.org")};
  std::vector<Parcel> second{parcel_for("carol@example.org")};
  courier_->set_slot_wait(1s);
  auto one = asio::co_spawn(io_, courier_->deliver(domain_, first, config::TlsPolicy::may),
                            asio::use_future);
  auto two = asio::co_spawn(io_, courier_->deliver(domain_, second, config::TlsPolicy::may),
                            asio::use_future);
  io_.run();
  EXPECT_EQ(one.get().at(0).kind, Kind::delivered);
  const auto deferred = two.get().at(0);
  EXPECT_EQ(deferred.kind, Kind::temporary);
  EXPECT_EQ(deferred.reply,
            "451 4.4.5 too many connections to 127.0.0.1:" + std::to_string(peer_->port()) +
                " already ([delivery] per_destination = 1)");
  peer_->finish();
  EXPECT_EQ(peer_->connections(), 1);
}

}  // namespace
}  // namespace maild::delivery
