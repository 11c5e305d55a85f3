// dns::Resolver against a real dnsmasq on a free loopback port (UDP and TCP),
// started by the suite and stopped by PID, plus a UDP socket that never
// answers for timeouts (dnsmasq_fixture.hpp). Every wait is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dns/resolver.hpp"
#include "dnsmasq_fixture.hpp"

namespace maild::dns {
namespace {

using maild::testing::Dnsmasq;
using maild::testing::dnsmasq_path;

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Dnsmasq;
using testing::dnsmasq_path;
using testing::SilentServer;

// What dnsmasq serves; everything under .test that is not here is NXDOMAIN
// (--local), names elsewhere are REFUSED (no upstream).
const std::vector<std::string> zone = {
    "--local=/test/",
    "--mx-host=mx.test,mx1.test,10",
    "--mx-host=mx.test,mx2.test,20",
    "--mx-host=mx.test,mx3.test,20",
    "--mx-host=mx.test,mx0.test,5",
    "--mx-host=null.test,.,0",
    "--mx-host=mixed.test,.,0",
    "--mx-host=mixed.test,mx1.test,10",
    "--host-record=aonly.test,192.0.2.7",
    "--host-record=six.test,2001:db8::6",
    "--host-record=dual.test,192.0.2.8,2001:db8::8",
    "--txt-record=txtonly.test,nothing for mail here",
};
constexpr int big_count = 40;  // too many A records for 512 octets: c-ares retries over TCP

config::DnsSettings settings_for(std::uint16_t port, Seconds timeout) {
  config::DnsSettings settings;
  settings.servers.push_back(Endpoint{"127.0.0.1", port});
  settings.timeout = timeout;
  return settings;
}

IpAddress ip(const char* text) {
  const auto parsed = parse_ip(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(IpAddress{});
}

std::vector<std::string> hosts_of(const MxResult& result) {
  std::vector<std::string> hosts;
  for (const MxHost& mx : result.hosts) hosts.push_back(mx.host);
  return hosts;
}

class DnsResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    binary_ = dnsmasq_path();
    if (binary_.empty()) return;
    const char* tmp = std::getenv("MAILD_TEST_TMP");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/maild-dns-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return;
    folder_ = new std::filesystem::path(pattern);
    server_ = new Dnsmasq;
    auto records = zone;
    for (int i = 1; i <= big_count; ++i)
      records.push_back("--host-record=big.test,10.0.0." + std::to_string(i));
    started_ = server_->start(binary_, *folder_, records);
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
    resolver_ =
        std::make_unique<Resolver>(settings_for(server_->port(), Seconds{5}), io_.get_executor());
  }

  void TearDown() override { resolver_.reset(); }

  // Runs one coroutine on io_ to completion (bounded by the resolver's timeout).
  template <class T>
  T run(asio::awaitable<T> task) {
    auto result = asio::co_spawn(io_, std::move(task), asio::use_future);
    io_.restart();
    io_.run();
    return result.get();
  }

  MxResult mx(const std::string& domain) { return run(resolver_->mx(domain)); }
  AddressResult addresses(const std::string& host) { return run(resolver_->addresses(host)); }

  static inline std::string binary_;
  static inline std::filesystem::path* folder_ = nullptr;
  static inline Dnsmasq* server_ = nullptr;
  static inline bool started_ = false;
  asio::io_context io_;
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(DnsResolverTest, MxHostsComeInPreferenceOrder) {
  const MxResult result = mx("mx.test");
  ASSERT_EQ(result.outcome, Outcome::ok) << result.detail;
  ASSERT_EQ(result.hosts.size(), 4u);
  EXPECT_EQ(result.hosts[0], (MxHost{5, "mx0.test"}));
  EXPECT_EQ(result.hosts[1], (MxHost{10, "mx1.test"}));
  EXPECT_EQ(result.hosts[2].preference, 20);
  EXPECT_EQ(result.hosts[3].preference, 20);
  const std::set<std::string> last_two = {result.hosts[2].host, result.hosts[3].host};
  EXPECT_EQ(last_two, (std::set<std::string>{"mx2.test", "mx3.test"}));
}

TEST_F(DnsResolverTest, EqualPreferencesComeInRandomOrder) {
  std::set<std::vector<std::string>> orders;
  for (int i = 0; i < 64 && orders.size() < 2; ++i) {
    const MxResult result = mx("MX.test.");  // case and a trailing dot do not matter
    ASSERT_EQ(result.outcome, Outcome::ok) << result.detail;
    orders.insert(hosts_of(result));
  }
  EXPECT_EQ(orders.size(), 2u);
  for (const auto& order : orders) {
    EXPECT_EQ(order[0], "mx0.test");
    EXPECT_EQ(order[1], "mx1.test");
  }
}

TEST_F(DnsResolverTest, ADomainWithOnlyAnAddressIsItsOwnMx) {
  const MxResult v4 = mx("aonly.test");
  ASSERT_EQ(v4.outcome, Outcome::ok) << v4.detail;
  EXPECT_EQ(v4.hosts, (std::vector<MxHost>{{0, "aonly.test"}}));

  const MxResult v6 = mx("six.test");
  ASSERT_EQ(v6.outcome, Outcome::ok) << v6.detail;
  EXPECT_EQ(v6.hosts, (std::vector<MxHost>{{0, "six.test"}}));
}

TEST_F(DnsResolverTest, NullMxIsPermanent) {
  const MxResult result = mx("null.test");
  EXPECT_EQ(result.outcome, Outcome::null_mx) << result.detail;
  EXPECT_TRUE(result.hosts.empty());
}

TEST_F(DnsResolverTest, ADotBesideRealMxHostsIsIgnored) {
  const MxResult result = mx("mixed.test");
  ASSERT_EQ(result.outcome, Outcome::ok) << result.detail;
  EXPECT_EQ(result.hosts, (std::vector<MxHost>{{10, "mx1.test"}}));
}

TEST_F(DnsResolverTest, NxdomainIsNoSuchDomain) {
  EXPECT_EQ(mx("nx.test").outcome, Outcome::no_such_domain);
  EXPECT_EQ(addresses("nx.test").outcome, Outcome::no_such_domain);
}

TEST_F(DnsResolverTest, ANameWithoutMxOrAddressIsNoData) {
  EXPECT_EQ(mx("txtonly.test").outcome, Outcome::no_data);
  EXPECT_EQ(addresses("mx.test").outcome, Outcome::no_data);
}

TEST_F(DnsResolverTest, RefusedIsTemporary) {
  const MxResult result = mx("elsewhere.example");  // dnsmasq has no upstream for it
  EXPECT_EQ(result.outcome, Outcome::temporary);
  EXPECT_FALSE(result.detail.empty());
}

TEST_F(DnsResolverTest, InvalidNamesAreRefusedWithoutAQuery) {
  const std::vector<std::string> names = {"",
                                          ".",
                                          "a..b",
                                          "bad name.test",
                                          std::string(64, 'a') + ".test",
                                          std::string(260, 'a'),
                                          "caf\xc3\xa9.test",
                                          "back\\slash.test"};
  for (const std::string& name : names) {
    EXPECT_EQ(mx(name).outcome, Outcome::no_such_domain) << name;
    EXPECT_EQ(addresses(name).outcome, Outcome::no_such_domain) << name;
  }
}

TEST_F(DnsResolverTest, AddressesAreAThenAaaa) {
  const AddressResult dual = addresses("dual.test");
  ASSERT_EQ(dual.outcome, Outcome::ok) << dual.detail;
  EXPECT_EQ(dual.addresses, (std::vector<IpAddress>{ip("192.0.2.8"), ip("2001:db8::8")}));

  const AddressResult v4 = addresses("aonly.test");
  ASSERT_EQ(v4.outcome, Outcome::ok) << v4.detail;
  EXPECT_EQ(v4.addresses, (std::vector<IpAddress>{ip("192.0.2.7")}));

  const AddressResult v6 = addresses("six.test");
  ASSERT_EQ(v6.outcome, Outcome::ok) << v6.detail;
  EXPECT_EQ(v6.addresses, (std::vector<IpAddress>{ip("2001:db8::6")}));
}

TEST_F(DnsResolverTest, ATruncatedAnswerIsFetchedOverTcp) {
  const AddressResult big = addresses("big.test");
  ASSERT_EQ(big.outcome, Outcome::ok) << big.detail;
  EXPECT_EQ(big.addresses.size(), static_cast<std::size_t>(big_count));
  EXPECT_NE(std::find(big.addresses.begin(), big.addresses.end(), ip("10.0.0.40")),
            big.addresses.end());
}

TEST_F(DnsResolverTest, PtrNames) {
  const NamesResult v4 = run(resolver_->ptr(ip("192.0.2.7")));
  ASSERT_EQ(v4.outcome, Outcome::ok) << v4.detail;
  EXPECT_EQ(v4.names, (std::vector<std::string>{"aonly.test"}));

  const NamesResult v6 = run(resolver_->ptr(ip("2001:db8::6")));
  ASSERT_EQ(v6.outcome, Outcome::ok) << v6.detail;
  EXPECT_EQ(v6.names, (std::vector<std::string>{"six.test"}));
}

TEST_F(DnsResolverTest, ASilentServerIsTemporaryWithinTheTimeout) {
  SilentServer silent;
  ASSERT_NE(silent.port(), 0);
  resolver_ =
      std::make_unique<Resolver>(settings_for(silent.port(), Seconds{1}), io_.get_executor());
  const auto started = Clock::now();
  const MxResult result = mx("mx.test");
  const auto took = Clock::now() - started;
  EXPECT_EQ(result.outcome, Outcome::temporary);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2s);  // the deadline, plus slack for a loaded machine
}

TEST_F(DnsResolverTest, ManyLookupsFromManyCoroutinesOnManyThreads) {
  constexpr int coroutines = 8;
  constexpr int rounds = 20;
  std::mutex mutex;
  std::vector<std::string> problems;
  const auto note = [&](const std::string& problem) {
    const std::lock_guard lock(mutex);
    problems.push_back(problem);
  };
  std::atomic<int> done{0};
  auto worker = [&](int id) -> asio::awaitable<void> {
    for (int i = 0; i < rounds; ++i) {
      const std::string domain = (i + id) % 3 == 0   ? "mx.test"
                                 : (i + id) % 3 == 1 ? "aonly.test"
                                                     : "nx.test";
      const MxResult result = co_await resolver_->mx(domain);
      const Outcome expected = domain == "nx.test" ? Outcome::no_such_domain : Outcome::ok;
      if (result.outcome != expected)
        note("mx " + domain + ": " + to_string(result.outcome) + " " + result.detail);
      const std::string host = i % 2 == 0 ? "dual.test" : "big.test";
      const AddressResult address = co_await resolver_->addresses(host);
      const std::size_t count = host == "dual.test" ? 2u : static_cast<std::size_t>(big_count);
      if (address.outcome != Outcome::ok || address.addresses.size() != count) {
        note("addresses " + host + ": " + to_string(address.outcome) + " " + address.detail);
      }
    }
    ++done;
  };
  for (int id = 0; id < coroutines; ++id)
    asio::co_spawn(asio::make_strand(io_), worker(id), asio::detached);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([this] { io_.run(); });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(done.load(), coroutines);
  EXPECT_TRUE(problems.empty()) << problems.size() << " wrong, the first: "
                                << (problems.empty() ? "" : problems.front());
}

TEST_F(DnsResolverTest, DestroyingTheResolverEndsLookupsInFlight) {
  SilentServer silent;
  ASSERT_NE(silent.port(), 0);
  resolver_ =
      std::make_unique<Resolver>(settings_for(silent.port(), Seconds{30}), io_.get_executor());
  constexpr int lookups = 10;
  std::atomic<int> temporary{0};
  std::atomic<int> finished{0};
  auto lookup = [&](int id) -> asio::awaitable<void> {
    if (id % 2 == 0) {
      const MxResult result = co_await resolver_->mx("mx.test");
      if (result.outcome == Outcome::temporary) ++temporary;
    } else {
      const AddressResult result = co_await resolver_->addresses("dual.test");
      if (result.outcome == Outcome::temporary) ++temporary;
    }
    ++finished;
  };
  for (int id = 0; id < lookups; ++id)
    asio::co_spawn(asio::make_strand(io_), lookup(id), asio::detached);
  auto destroyer = [&]() -> asio::awaitable<void> {
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor);
    timer.expires_after(200ms);
    co_await timer.async_wait(asio::use_awaitable);
    resolver_.reset();
  };
  asio::co_spawn(io_, destroyer(), asio::detached);
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([this] { io_.run(); });
  for (std::thread& thread : threads) thread.join();
  EXPECT_LT(Clock::now() - started, 5s);  // not the 30 s timeout
  EXPECT_EQ(finished.load(), lookups);
  EXPECT_EQ(temporary.load(), lookups);
}

}  // namespace
}  // namespace maild::dns
