// The retrieval worker's end-of-content checks (smtp::Extension::on_fetched):
// a pending retrieval in a SQLite store, the sender domain's MX served by a
// private dnsmasq and played by a scripted SOURCE server on loopback, and the
// checks' verdicts seen in the store: stored verified with their headers in
// the trace, failed for good, or deferred to a later attempt.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dns/resolver.hpp"
#include "dnsmasq_fixture.hpp"
#include "maild/config/limits.hpp"
#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "reverse/fetch_address.hpp"
#include "reverse/retriever.hpp"
#include "scripted_peer.hpp"
#include "smtp/extension.hpp"

namespace maild::reverse {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::Dnsmasq;
using testing::PeerConnection;
using testing::ScriptedPeer;

const std::string token = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a";
// What the origin stored, and what goes on the wire for it.
const std::string content = "Subject: fetched\r\n\r\n.leading dot\r\nbody\r\n";
const std::string stuffed = "Subject: fetched\r\n\r\n..leading dot\r\nbody\r\n.\r\n";
const std::string received =
    "Received: from mx.origin.test ([192.0.2.1]) by client.example.test\r\n";

// What a check was shown of one fetched message.
struct Seen {
  std::string reverse_path;
  std::vector<std::string> recipients;
  std::string client_address;
  std::string helo;
  std::string content;
};

// A check that answers every fetched message with `verdict` and remembers what it saw.
class FetchedCheck final : public smtp::Extension {
 public:
  explicit FetchedCheck(smtp::Verdict verdict) : verdict_(std::move(verdict)) {}

  std::unique_ptr<smtp::ExtensionSession> open(const smtp::SessionView&) const override {
    return std::make_unique<smtp::ExtensionSession>();
  }
  asio::awaitable<smtp::Verdict> on_fetched(const smtp::FetchedMessage& message) const override {
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(Seen{message.reverse_path, message.recipients, message.client_address,
                           message.helo, message.content});
    }
    co_return verdict_;
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  smtp::Verdict verdict_;
  mutable std::mutex mutex_;
  mutable std::vector<Seen> seen_;
};

class RetrieverChecks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    binary_ = testing::dnsmasq_path();
    if (binary_.empty()) return;
    std::string pattern = "/tmp/maild-retriever-dns-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return;
    dns_folder_ = pattern;
    dnsmasq_ = new Dnsmasq;
    started_dns_ = dnsmasq_->start(
        binary_, dns_folder_,
        {"--local=/test/", "--mx-host=origin.test,mx.origin.test,10",
         "--mx-host=other.test,mx.origin.test,10", "--host-record=mx.origin.test,127.0.0.1"});
  }
  static void TearDownTestSuite() {
    if (dnsmasq_ != nullptr) dnsmasq_->stop();
    delete dnsmasq_;
    dnsmasq_ = nullptr;
    std::error_code ignored;
    if (!dns_folder_.empty()) std::filesystem::remove_all(dns_folder_, ignored);
  }

  void SetUp() override {
    if (binary_.empty()) GTEST_SKIP() << "dnsmasq is not installed (scripts/install-deps.sh test)";
    ASSERT_TRUE(started_dns_) << "dnsmasq did not start: " << (dnsmasq_ ? dnsmasq_->log() : "");
    std::string pattern = "/tmp/maild-retriever-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    peer_.emplace("127.0.0.1");

    // The EHLO name scripted_peer.hpp's greet() expects.
    settings_.server.hostname = "client.example.test";
    settings_.store.path = dir_ / "mail.db";
    settings_.store.workers = 2;
    settings_.delivery.smtp_port = peer_->port();
    settings_.delivery.workers = 2;
    settings_.delivery.retry_schedule = {Seconds{300}};
    settings_.reverse.poll_interval = Seconds{1};
    settings_.dns.servers = {Endpoint{"127.0.0.1", dnsmasq_->port()}};
    settings_.dns.timeout = Seconds{2};
    // The scripted origin listens on loopback: named, as a private route would be.
    settings_.reverse.trusted_peers = {*parse_network("127.0.0.1")};

    store_ = store::open_store(settings_);
    store_->migrate();
    auto& admin = store_->admin();
    admin.add_domain("example.test");
    admin.add_user("bob@example.test", "$y$j9T$notarealhash");
    admin.add_user("carol@example.test", "$y$j9T$notarealhash");
    resolver_.emplace(settings_.dns, io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (retriever_) {
      retriever_->stop();
      EXPECT_TRUE(eventually([this] { return retriever_->idle(); }));
    }
    if (peer_) peer_->finish();
    if (io_thread_.joinable()) {
      work_.reset();
      io_.stop();
      io_thread_.join();
    }
    retriever_.reset();
    resolver_.reset();
    pool_.join();
    if (store_) store_->close();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // A SOURCE accepted from mx.origin.test for bob@ and carol@, as the session records it.
  store::RetrievalId add_retrieval(const std::string& with_token = token,
                                   std::optional<std::uint64_t> declared = content.size(),
                                   const std::string& sender = "alice@origin.test") {
    store::NewRetrieval retrieval;
    retrieval.token = with_token;
    retrieval.reverse_path = sender;
    for (const char* address : {"bob@example.test", "carol@example.test"})
      retrieval.recipients.push_back({address, store_->directory().resolve(address).mailboxes});
    retrieval.declared_size = declared;
    retrieval.client_address = "192.0.2.1";
    retrieval.helo = "mx.origin.test";
    retrieval.trace = "Return-Path: <alice@origin.test>\r\n" + received;
    const auto added = store_->retrieval_intake().add_retrieval(retrieval, 1000, 1000);
    EXPECT_EQ(added.outcome, store::RetrievalAdded::Outcome::added);
    return added.id;
  }

  // The origin answers one GET for `token` with the content (as on the wire), then QUIT.
  void serve_content(const std::string& wire = stuffed) {
    peer_->play({[wire](PeerConnection& peer) {
      testing::greet(peer, {"SOURCE"});
      peer.expect("GET " + token + "\r\n");
      peer.say("354 2.0.0 " + token + " message follows\r\n");
      peer.say(wire);
      peer.say("250 2.0.0 " + token + " transferred\r\n");
      testing::quit(peer);
    }});
  }

  // Starts the retriever with `checks` and tells it a SOURCE was accepted.
  void start(smtp::SessionExtensions checks) {
    checks_ = std::move(checks);
    retriever_.emplace(settings_, store_->retrievals(), pool_.get_executor(), *resolver_,
                       io_.get_executor(), checks_);
    smtp::ClientTimeouts timeouts;
    for (Seconds* timeout : {&timeouts.connect, &timeouts.greeting, &timeouts.hello, &timeouts.mail,
                             &timeouts.rcpt, &timeouts.data, &timeouts.data_block,
                             &timeouts.end_of_data, &timeouts.rset, &timeouts.source})
      *timeout = Seconds{5};
    timeouts.fetch = fetch_timeout_;
    retriever_->set_timeouts(timeouts);
    retriever_->start();
    retriever_->wake();
  }

  // The one retrieval, once `done` holds for it (within 10 s).
  std::optional<store::PendingRetrieval> retrieval_once(
      const std::function<bool(const store::PendingRetrieval&)>& done) {
    std::optional<store::PendingRetrieval> found;
    eventually([&] {
      const auto list = store_->reverse_admin().list_retrievals(10);
      if (list.size() != 1 || !done(list[0])) return false;
      found = list[0];
      return true;
    });
    return found;
  }

  static bool eventually(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return condition();
  }

  std::int64_t counter(const char* name) {
    return store_->reverse_admin().stats().counters.at(name);
  }

  static inline std::string binary_;
  static inline std::filesystem::path dns_folder_;
  static inline Dnsmasq* dnsmasq_ = nullptr;
  static inline bool started_dns_ = false;

  config::Settings settings_;
  Seconds fetch_timeout_{30};
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::optional<ScriptedPeer> peer_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::thread io_thread_;
  asio::thread_pool pool_{2};
  std::optional<dns::Resolver> resolver_;
  smtp::SessionExtensions checks_;
  std::optional<Retriever> retriever_;
};

TEST_F(RetrieverChecks, ProceedingChecksAddTheirHeadersAfterTheVerificationResult) {
  const FetchedCheck first(smtp::Verdict::proceed_with("X-First-Check: clean\r\n"));
  const FetchedCheck second(smtp::Verdict::proceed_with("X-Second-Check: also clean\r\n"));
  add_retrieval();
  serve_content();
  start({&first, &second});

  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::fetched) << after->last_error;

  // Both checks saw the SOURCE transaction's envelope and the content as fetched (unstuffed).
  for (const auto* check : {&first, &second}) {
    const auto seen = check->seen();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].reverse_path, "alice@origin.test");
    EXPECT_EQ(seen[0].recipients,
              (std::vector<std::string>{"bob@example.test", "carol@example.test"}));
    EXPECT_EQ(seen[0].client_address, "192.0.2.1");
    EXPECT_EQ(seen[0].helo, "mx.origin.test");
    EXPECT_EQ(seen[0].content, content);
  }

  // Stored verified for both mailboxes; the trace: Return-Path, the result, the checks' headers
  // in the order the checks ran, then the SOURCE transaction's Received.
  const auto mail = store_->admin().list_mail(0, std::nullopt);
  ASSERT_EQ(mail.size(), 2u);
  for (const auto& summary : mail) {
    EXPECT_TRUE(summary.verified);
    const auto detail = store_->admin().get_mail(summary.id);
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->content, content);
    EXPECT_EQ(detail->trace,
              "Return-Path: <alice@origin.test>\r\n"
              "Authentication-Results: client.example.test; source-get=pass "
              "smtp.mailfrom=origin.test\r\n"
              "X-First-Check: clean\r\n"
              "X-Second-Check: also clean\r\n" +
                  received);
  }
  EXPECT_EQ(counter(store::counter::get_fetched), 1);
  EXPECT_EQ(counter(store::counter::get_failed), 0);
}

// RFC 8601 5: the origin cannot speak as us; its own results and the body stay.
TEST_F(RetrieverChecks, FetchedContentLosesAuthenticationResultsClaimingToBeOurs) {
  const FetchedCheck check(smtp::Verdict{});
  const std::string forged =
      "Authentication-Results: Client.Example.Test; source-get=pass smtp.mailfrom=bank.test\r\n"
      "Authentication-Results:\r\n (x) client.example.test 1; spf=pass\r\n";
  const std::string theirs = "Authentication-Results: mx.origin.test; dkim=pass\r\n";
  add_retrieval(token, std::nullopt);
  serve_content(forged + theirs + stuffed);
  start({&check});

  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::fetched) << after->last_error;
  ASSERT_EQ(check.seen().size(), 1u);
  EXPECT_EQ(check.seen()[0].content, theirs + content);  // the checks see it without them
  const auto mail = store_->admin().list_mail(0, std::nullopt);
  ASSERT_EQ(mail.size(), 2u);
  for (const auto& summary : mail) {
    const auto detail = store_->admin().get_mail(summary.id);
    ASSERT_TRUE(detail);
    EXPECT_EQ(detail->content, theirs + content);
    EXPECT_EQ(detail->trace,
              "Return-Path: <alice@origin.test>\r\n"
              "Authentication-Results: client.example.test; source-get=pass "
              "smtp.mailfrom=origin.test\r\n" +
                  received);
  }
}

// RFC 5321 6.3: fetched content over max_hops fails for good, as DATA would be refused.
TEST_F(RetrieverChecks, FetchedContentOverTheHopLimitFails) {
  settings_.smtp.max_hops = 2;
  const FetchedCheck check(smtp::Verdict{});
  add_retrieval(token, std::nullopt);
  serve_content("Received: from a\r\nReceived: from b\r\nreceived: from c\r\n" + stuffed);
  start({&check});

  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::failed);
  EXPECT_EQ(after->last_error, "554 5.4.6 too many hops (3 Received fields): mail loop?");
  EXPECT_TRUE(check.seen().empty());
  EXPECT_TRUE(store_->admin().list_mail(0, std::nullopt).empty());
}

TEST_F(RetrieverChecks, ARefusingCheckFailsTheRetrievalAndNothingIsStored) {
  const FetchedCheck refusing(
      smtp::Verdict::refuse(smtp::Status{550, "5.7.1"}, "content refused by policy"));
  const FetchedCheck later(smtp::Verdict::proceed_with("X-Never: added\r\n"));
  add_retrieval();
  serve_content();
  start({&refusing, &later});

  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::failed);
  EXPECT_EQ(after->last_error, "550 5.7.1 content refused by policy");
  EXPECT_EQ(after->lease_owner, "");
  ASSERT_EQ(refusing.seen().size(), 1u);
  EXPECT_EQ(refusing.seen()[0].content, content);
  EXPECT_TRUE(later.seen().empty()) << "a check ran after a refusal";

  EXPECT_TRUE(store_->admin().list_mail(0, std::nullopt).empty());
  // Counted as a permanent GET failure, as any other.
  EXPECT_EQ(counter(store::counter::get_failed), 1);
  EXPECT_EQ(counter(store::counter::get_fetched), 0);
  EXPECT_EQ(store_->reverse_admin().stats().retrievals_pending, 0);
}

TEST_F(RetrieverChecks, ADeferringCheckLeavesTheRetrievalPendingForALaterAttempt) {
  const FetchedCheck deferring(
      smtp::Verdict::defer(smtp::status::check_failed, "cannot check now"));
  const FetchedCheck later(smtp::Verdict::proceed_with("X-Never: added\r\n"));
  add_retrieval();
  serve_content();
  start({&deferring, &later});

  const auto after = retrieval_once([](const auto& r) {
    return r.state != store::RetrievalState::pending ||
           (!r.last_error.empty() && r.lease_owner.empty());
  });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::pending);
  EXPECT_EQ(after->last_error, "451 4.3.5 cannot check now");
  EXPECT_EQ(after->attempts, 1);
  // The first step of the retry schedule (300 s) from now.
  EXPECT_GT(after->next_attempt, std::chrono::system_clock::now() + 200s);
  ASSERT_EQ(deferring.seen().size(), 1u);
  EXPECT_TRUE(later.seen().empty()) << "a check ran after a deferral";

  EXPECT_TRUE(store_->admin().list_mail(0, std::nullopt).empty());
  EXPECT_EQ(counter(store::counter::get_failed), 0);
  EXPECT_EQ(counter(store::counter::get_fetched), 0);
  EXPECT_EQ(store_->reverse_admin().stats().retrievals_pending, 1);
}

TEST_F(RetrieverChecks, EachFetchedMessageIsStoredBeforeTheNextGet) {
  // Two tokens of one sender domain: one group, one connection, two GETs.
  const std::string second = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
  add_retrieval();
  add_retrieval(second);
  std::atomic<int> first_state_at_second_get{-1};
  peer_->play({[&](PeerConnection& peer) {
    testing::greet(peer, {"SOURCE"});
    std::string first_token;
    for (int n = 0; n < 2; ++n) {
      const auto get = peer.line();
      ASSERT_TRUE(get.starts_with("GET ")) << get;
      const auto asked = get.substr(4);
      if (n == 0) {
        first_token = asked;
      } else {
        // What the store says of the first while the second is asked for.
        for (const auto& r : store_->reverse_admin().list_retrievals(10))
          if (r.token == first_token) first_state_at_second_get = static_cast<int>(r.state);
      }
      peer.say("354 2.0.0 " + asked + " message follows\r\n");
      peer.say(stuffed);
      peer.say("250 2.0.0 " + asked + " transferred\r\n");
    }
    testing::quit(peer);
  }});
  start({});

  ASSERT_TRUE(eventually([this] {
    const auto list = store_->reverse_admin().list_retrievals(10);
    return list.size() == 2 && std::all_of(list.begin(), list.end(), [](const auto& r) {
             return r.state == store::RetrievalState::fetched;
           });
  }));
  // The first was stored as soon as it was fetched, not with the rest of its group.
  EXPECT_EQ(first_state_at_second_get.load(), static_cast<int>(store::RetrievalState::fetched));
  EXPECT_EQ(counter(store::counter::get_fetched), 2);
}

// ---- where the worker connects, and how much of it one peer may hold (SOURCE-GET.md 6) ----

// 32 hex characters, distinct for each n.
std::string token_for(int n) {
  std::string hex = std::to_string(n);
  return std::string(32 - hex.size(), 'a') + hex;
}

TEST_F(RetrieverChecks, AnMxOnANonPublicAddressIsNeverConnectedTo) {
  settings_.reverse.trusted_peers.clear();
  add_retrieval();
  start({});
  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::failed);
  EXPECT_EQ(
      after->last_error,
      "550 5.7.1 not fetched from mx.origin.test[127.0.0.1]:" + std::to_string(peer_->port()) +
          ": 127.0.0.1 is not a public address, and neither [reverse] trusted_peers nor "
          "[delivery] routes name it");
  EXPECT_EQ(peer_->connections(), 0);
  EXPECT_EQ(counter(store::counter::get_failed), 1);
}

TEST_F(RetrieverChecks, ARouteToTheAddressLetsTheWorkerConnect) {
  settings_.reverse.trusted_peers.clear();
  settings_.delivery.routes = {{"elsewhere.test", Endpoint{"127.0.0.1", peer_->port()}}};
  add_retrieval();
  serve_content();
  start({});
  const auto after =
      retrieval_once([](const auto& r) { return r.state != store::RetrievalState::pending; });
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::fetched) << after->last_error;
  EXPECT_EQ(peer_->connections(), 1);
}

// DATA's whole-transfer deadline applies to a GET's content: a peer that
// sends one line a second, each well within the per-read wait, is cut off.
TEST_F(RetrieverChecks, AnOriginThatDripsItsContentIsCutOffAtTheDeadline) {
  fetch_timeout_ = Seconds{2};
  add_retrieval();
  peer_->play({[](PeerConnection& peer) {
    testing::greet(peer, {"SOURCE"});
    peer.expect("GET " + token + "\r\n");
    peer.say("354 2.0.0 " + token + " message follows\r\n");
    for (int i = 0; i < 6; ++i) {
      peer.say("X-Drip: " + std::to_string(i) + "\r\n");
      peer.stall(1s);
    }
  }});
  const auto started = std::chrono::steady_clock::now();
  start({});
  const auto after = retrieval_once([](const auto& r) { return !r.last_error.empty(); });
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, store::RetrievalState::pending);
  EXPECT_EQ(
      after->last_error.rfind("451 4.4.2 timeout after 2s receiving the message 5f0c2e8a...", 0),
      0u)
      << after->last_error;
  EXPECT_GE(took, 2s);
  EXPECT_LT(took, 5s);
}

// The worker's defaults: [smtp] data_timeout bounds the whole content.
TEST(FetchTimeouts, FollowDataTimeout) {
  config::Settings settings;
  settings.smtp.data_timeout = Seconds{7};
  const auto timeouts = Retriever::timeouts_for(settings);
  EXPECT_EQ(timeouts.fetch, Seconds{7});
  EXPECT_EQ(timeouts.data_block, Seconds{7});
  EXPECT_EQ(timeouts.data, Seconds{7});
  EXPECT_EQ(timeouts.end_of_data, Seconds{7});
  settings.smtp.data_timeout = std::chrono::hours(1);
  const auto longer = Retriever::timeouts_for(settings);
  EXPECT_EQ(longer.fetch, std::chrono::hours(1));
  EXPECT_EQ(longer.data_block, smtp::ClientTimeouts{}.data_block);  // never longer than RFC 5321's
}

// Two domains whose MX is one address: with per_destination = 1 only one
// connection reaches it at a time; the other group is deferred at once
// (it holds no worker slot waiting), and the limit is not passed.
TEST_F(RetrieverChecks, OneMxAddressHoldsNoMoreThanItsShareOfTheConnections) {
  settings_.delivery.per_destination = 1;
  add_retrieval(token_for(1));
  add_retrieval(token_for(2), content.size(), "zoe@other.test");
  std::atomic<int> gets{0};
  const auto slow = [&gets](PeerConnection& peer) {
    testing::greet(peer, {"SOURCE"});
    EXPECT_EQ(peer.line().rfind("GET ", 0), 0u);
    ++gets;
    peer.stall(1500ms);
    peer.say("550 5.1.0 unknown token\r\n");
    testing::quit(peer);
  };
  peer_->play({slow, slow});
  start({});
  ASSERT_TRUE(eventually([this] {
    const auto list = store_->reverse_admin().list_retrievals(10);
    return list.size() == 2 && std::all_of(list.begin(), list.end(),
                                           [](const auto& r) { return !r.last_error.empty(); });
  }));
  const auto list = store_->reverse_admin().list_retrievals(10);
  int deferred = 0;
  for (const auto& r : list) {
    if (r.state == store::RetrievalState::pending) {
      ++deferred;
      EXPECT_EQ(r.last_error,
                "451 4.4.5 too many retrieval connections to 127.0.0.1 already ([delivery] "
                "per_destination = 1)");
    } else {
      EXPECT_EQ(r.last_error.rfind("550 5.1.0", 0), 0u) << r.last_error;
    }
  }
  EXPECT_EQ(deferred, 1);
  EXPECT_EQ(peer_->most_at_once(), 1);
  EXPECT_EQ(gets, 1);
}

// One domain's tokens beyond one connection's worth make a second group: with
// per_destination = 1 it waits for the domain's turn (and gets it once the
// first is done), so the domain never holds two connections.
TEST_F(RetrieverChecks, OneDomainHoldsNoMoreThanItsShareOfTheConnections) {
  settings_.delivery.per_destination = 1;
  const int count = static_cast<int>(limits::gets_per_connection_max) + 1;
  for (int i = 1; i <= count; ++i) add_retrieval(token_for(i));
  const auto refuse_all = [](PeerConnection& peer) {
    testing::greet(peer, {"SOURCE"});
    for (;;) {
      const auto line = peer.line();
      if (line.rfind("GET ", 0) != 0) {
        peer.say("221 2.0.0 Bye\r\n");
        return;
      }
      peer.say("550 5.1.0 unknown token\r\n");
    }
  };
  peer_->play({refuse_all, refuse_all});
  start({});
  ASSERT_TRUE(eventually([this] { return counter(store::counter::get_failed) == 51; }));
  EXPECT_EQ(peer_->connections(), 2);
  EXPECT_EQ(peer_->most_at_once(), 1);
}

// Within a domain, tokens announced by different clients take turns: the
// genuine sender's one token is not queued behind a forger's many.
TEST_F(RetrieverChecks, TokensOfDifferentAnnouncingClientsTakeTurns) {
  for (int i = 1; i <= 5; ++i) add_retrieval(token_for(i));  // from 192.0.2.1
  store::NewRetrieval genuine;
  genuine.token = token;
  genuine.reverse_path = "alice@origin.test";
  genuine.recipients.push_back(
      {"bob@example.test", store_->directory().resolve("bob@example.test").mailboxes});
  genuine.client_address = "192.0.2.99";
  genuine.helo = "mx.origin.test";
  genuine.trace = "Return-Path: <alice@origin.test>\r\n" + received;
  store_->retrieval_intake().add_retrieval(genuine, 1000, 1000);
  std::vector<std::string> order;
  std::mutex order_mutex;
  peer_->play({[&order, &order_mutex](PeerConnection& peer) {
    testing::greet(peer, {"SOURCE"});
    for (;;) {
      const auto line = peer.line();
      if (line.rfind("GET ", 0) != 0) {
        peer.say("221 2.0.0 Bye\r\n");
        return;
      }
      {
        std::lock_guard lock(order_mutex);
        order.push_back(line.substr(4));
      }
      peer.say("550 5.1.0 unknown token\r\n");
    }
  }});
  start({});
  ASSERT_TRUE(eventually([this] { return counter(store::counter::get_failed) == 6; }));
  std::lock_guard lock(order_mutex);
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[0], token_for(1));
  EXPECT_EQ(order[1], token);  // second, not sixth
}

// ---- which addresses are public ----

TEST(FetchAddress, NonPublicRangesAreRefusedAtTheirEdges) {
  const auto is_public = [](const char* text) { return is_public_address(*parse_ip(text)); };
  for (const char* refused : {"127.0.0.1",
                              "127.255.255.255",
                              "10.0.0.0",
                              "10.255.255.255",
                              "172.16.0.0",
                              "172.31.255.255",
                              "192.168.0.1",
                              "192.168.255.255",
                              "100.64.0.0",
                              "100.127.255.255",
                              "169.254.0.1",
                              "0.0.0.0",
                              "224.0.0.1",
                              "255.255.255.255",
                              "192.0.2.1",
                              "198.51.100.7",
                              "203.0.113.9",
                              "198.18.0.1",
                              "::1",
                              "::",
                              "fc00::1",
                              "fdff:ffff::1",
                              "fe80::1",
                              "ff02::1",
                              "2001:db8::1",
                              "::ffff:127.0.0.1",
                              "::ffff:10.1.2.3"})
    EXPECT_FALSE(is_public(refused)) << refused;
  for (const char* allowed : {"9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0",
                              "192.167.255.255", "192.169.0.0", "100.63.255.255", "100.128.0.0",
                              "128.0.0.1", "169.253.255.255", "223.255.255.255", "8.8.8.8",
                              "2a00:1450::1", "fbff:ffff::1", "2001:db9::1", "::ffff:8.8.8.8"})
    EXPECT_TRUE(is_public(allowed)) << allowed;
}

TEST(FetchAddress, TrustedPeersAndRoutesAllowAPrivateAddress) {
  config::Settings settings;
  const auto address = *parse_ip("10.0.0.5");
  EXPECT_NE(refusal_to_fetch_from(settings, "mx.private.test", address), "");
  EXPECT_EQ(refusal_to_fetch_from(settings, "mx.public.test", *parse_ip("8.8.8.8")), "");
  settings.reverse.trusted_peers = {*parse_network("10.0.0.0/24")};
  EXPECT_EQ(refusal_to_fetch_from(settings, "mx.private.test", address), "");
  settings.reverse.trusted_peers = {*parse_network("10.0.1.0/24")};  // just past it
  EXPECT_NE(refusal_to_fetch_from(settings, "mx.private.test", address), "");
  settings.reverse.trusted_peers.clear();
  settings.delivery.routes = {{"example.org", Endpoint{"10.0.0.5", 25}}};
  EXPECT_EQ(refusal_to_fetch_from(settings, "mx.private.test", address), "");
  settings.delivery.routes = {{"*", Endpoint{"Relay.Private.Test", 25}}};
  EXPECT_EQ(refusal_to_fetch_from(settings, "relay.private.test", address), "");
  EXPECT_NE(refusal_to_fetch_from(settings, "mx.private.test", address), "");
}

}  // namespace
}  // namespace maild::reverse
