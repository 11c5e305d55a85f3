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

LeasedWorker::LeasedWorker(asio::any_io_executor io, std::string name, const std::string& hostname,
                           std::size_t workers, Seconds poll, Seconds lease_time)
    : name_(std::move(name)),
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

asio::awaitable<void> LeasedWorker::renew_leases() {
  const auto now = std::chrono::steady_clock::now();
  if (in_flight_.empty() || now - last_renewal_ < lease_time_ / 3) co_return;
  last_renewal_ = now;
  const std::vector<Id> ids(in_flight_.begin(), in_flight_.end());
  co_await renew(ids);
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
