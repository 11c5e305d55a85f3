// The leased workers' shared loop; see leased_worker.hpp.
#include "net/leased_worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "maild/core/ids.hpp"

namespace maild::net {
namespace asio = boost::asio;

LeasedWorker::LeasedWorker(asio::any_io_executor io, std::string name, std::string leased,
                           const std::string& hostname, std::size_t workers, Seconds poll,
                           Seconds lease_time)
    : name_(std::move(name)),
      leased_(std::move(leased)),
      strand_(asio::make_strand(io)),
      wakeup_(strand_),
      owner_(hostname + "/" + std::to_string(::getpid()) + "/" + random_hex_128().substr(0, 8)),
      poll_(poll),
      lease_time_(lease_time),
      workers_(strand_, workers) {}

void LeasedWorker::start() {
  idle_ = false;
  running_ = true;
  asio::co_spawn(strand_, run(), asio::detached);
}

void LeasedWorker::wake() {
  asio::post(strand_, [this] { look_again(); });
}

void LeasedWorker::stop() {
  asio::post(strand_, [this] {
    stopping_ = true;
    wakeup_.cancel();
    workers_.stop();
    on_stop();
    idle_ = !running_ && jobs_ == 0;
  });
}

bool LeasedWorker::idle() const { return idle_; }

asio::awaitable<void> LeasedWorker::run() {
  on_start();
  while (!stopping_) {
    woken_ = false;
    try {
      co_await round();
    } catch (const std::exception& e) {
      spdlog::warn("{}: store error: {}", name_, e.what());
    }
    if (stopping_ || woken_) continue;
    boost::system::error_code ec;
    wakeup_.expires_after(poll_);
    co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  running_ = false;
  idle_ = jobs_ == 0;
}

asio::awaitable<bool> LeasedWorker::renew_leases() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Id> ids;
  {
    std::lock_guard lock(in_flight_mutex_);
    if (in_flight_.empty() || now - last_renewal_ < lease_time_ / 3) co_return true;
    ids.assign(in_flight_.begin(), in_flight_.end());
  }
  last_renewal_ = now;
  for (;;) {
    const bool kept = co_await renew(ids);
    if (kept) co_return true;
    // An outcome recorded while renew() ran ended its lease: no loss. Renew
    // what is still in flight once more; unless nothing left it meanwhile.
    std::vector<Id> still;
    {
      std::lock_guard lock(in_flight_mutex_);
      for (const auto id : ids)
        if (in_flight_.contains(id)) still.push_back(id);
    }
    if (still.empty()) co_return true;
    if (still.size() == ids.size()) break;
    ids = std::move(still);
  }
  spdlog::warn("{}: a lease on {} in flight was lost", name_, leased_);
  co_return false;
}

void LeasedWorker::hold(Id id) {
  std::lock_guard lock(in_flight_mutex_);
  in_flight_.insert(id);
}

std::size_t LeasedWorker::in_flight() const {
  std::lock_guard lock(in_flight_mutex_);
  return in_flight_.size();
}

void LeasedWorker::release(Id id) {
  std::lock_guard lock(in_flight_mutex_);
  in_flight_.erase(id);
}

void LeasedWorker::look_again() {
  woken_ = true;
  wakeup_.cancel();
}

void LeasedWorker::job_finished() {
  --jobs_;
  if (stopping_) idle_ = !running_ && jobs_ == 0;
}

}  // namespace maild::net
