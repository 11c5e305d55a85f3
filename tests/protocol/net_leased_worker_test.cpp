// LeasedWorker's lease renewal: an outcome recorded while a renewal runs ends
// its lease in the store, which the renewal then meets; that is no lost lease
// and the log must not say so. A lease that another owner took is lost, and
// the log says so once. The store is played by each test's renew().
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "net/leased_worker.hpp"

namespace maild::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Ids = std::vector<LeasedWorker::Id>;

// Holds 1, 2 and 3, renews their leases once, and stops. The n-th renewal
// answers as `renewals[n]` says, which may release ids as a recording would.
class OneRenewal final : public LeasedWorker {
 public:
  using Renewal = std::function<bool(OneRenewal&, const Ids&)>;

  OneRenewal(asio::any_io_executor io, std::vector<Renewal> renewals)
      : LeasedWorker(io, "test", "things", "node.example.test", 1, Seconds{60}, Seconds{6}),
        renewals_(std::move(renewals)) {}

  using LeasedWorker::release;
  std::vector<Ids> asked;    // the ids of each renewal, in order
  std::optional<bool> kept;  // what renew_leases() said

 private:
  void on_start() override {}
  asio::awaitable<void> round() override {
    if (kept) co_return;
    for (const Id id : {1, 2, 3}) hold(id);
    const bool renewed = co_await renew_leases();
    kept = renewed;
    stop();
  }
  asio::awaitable<bool> renew(const Ids& ids) override {
    asked.push_back(ids);
    if (asked.size() > renewals_.size()) co_return true;
    co_return renewals_[asked.size() - 1](*this, ids);
  }
  void on_stop() override {}

  std::vector<Renewal> renewals_;
};

class LeaseRenewal : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_)));
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  // Runs one renewal round to its end (within 5 s).
  void run(OneRenewal& worker) {
    worker.start();
    io_.run_for(5s);
    ASSERT_TRUE(worker.kept.has_value()) << "the round did not end";
  }
  bool said_lost() const {
    return log_.str().find("test: a lease on things in flight was lost") != std::string::npos;
  }

  asio::io_context io_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LeaseRenewal, AnOutcomeRecordedDuringTheRenewalLosesNoLease) {
  // 2's outcome was recorded while the renewal ran: the store no longer leases it to us.
  OneRenewal worker(io_.get_executor(), {[](OneRenewal& w, const Ids&) {
                      w.release(2);
                      return false;
                    }});
  run(worker);
  EXPECT_TRUE(*worker.kept);
  ASSERT_EQ(worker.asked.size(), 2u);
  EXPECT_EQ(worker.asked[0], (Ids{1, 2, 3}));
  EXPECT_EQ(worker.asked[1], (Ids{1, 3}));  // what is still in flight, once more
  EXPECT_FALSE(said_lost()) << log_.str();
}

TEST_F(LeaseRenewal, EveryOutcomeRecordedDuringTheRenewalLosesNoLease) {
  OneRenewal worker(io_.get_executor(), {[](OneRenewal& w, const Ids& ids) {
                      for (const auto id : ids) w.release(id);
                      return false;
                    }});
  run(worker);
  EXPECT_TRUE(*worker.kept);
  EXPECT_EQ(worker.asked.size(), 1u);  // nothing left to renew
  EXPECT_FALSE(said_lost()) << log_.str();
}

TEST_F(LeaseRenewal, ALeaseTakenOverIsLostAndTheLogSaysSo) {
  OneRenewal worker(io_.get_executor(), {[](OneRenewal&, const Ids&) { return false; }});
  run(worker);
  EXPECT_FALSE(*worker.kept);
  EXPECT_EQ(worker.asked.size(), 1u);  // nothing left meanwhile: nothing explains it
  EXPECT_TRUE(said_lost()) << log_.str();
}

TEST_F(LeaseRenewal, ALossBesideARecordedOutcomeIsStillALoss) {
  OneRenewal worker(io_.get_executor(), {[](OneRenewal& w, const Ids&) {
                                           w.release(2);
                                           return false;
                                         },
                                         [](OneRenewal&, const Ids&) { return false; }});
  run(worker);
  EXPECT_FALSE(*worker.kept);
  ASSERT_EQ(worker.asked.size(), 2u);
  EXPECT_EQ(worker.asked[1], (Ids{1, 3}));
  EXPECT_TRUE(said_lost()) << log_.str();
}

TEST_F(LeaseRenewal, RenewedLeasesAreKept) {
  OneRenewal worker(io_.get_executor(), {[](OneRenewal&, const Ids&) { return true; }});
  run(worker);
  EXPECT_TRUE(*worker.kept);
  EXPECT_EQ(worker.asked.size(), 1u);
  EXPECT_FALSE(said_lost()) << log_.str();
}

}  // namespace
}  // namespace maild::net
