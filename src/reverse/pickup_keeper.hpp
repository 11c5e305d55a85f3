// The pickups' housekeeping (docs/source-get.md): a pickup the receiving
// server never fetched within [reverse] pickup_max_age expires and gets the
// sender one failure notice (RFC 3464); the content of pickups done with is
// purged. Every [reverse] poll_interval, on every node; the store keeps two
// nodes from expiring one pickup twice.
// Talks to: the store (on the store worker pool, never on an I/O thread).
// Trust: the store is ours; tokens are secrets: the log shows them shortened.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <optional>
#include <string>

#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"

namespace maild::reverse {

class PickupKeeper {
 public:
  // `settings` and `store` must outlive it. `notice_queued` is called (on the
  // keeper's strand) after a notice was stored: it may be queued for another server.
  PickupKeeper(const config::Settings& settings, store::PickupKeeping& pickups,
               store::Directory& directory, boost::asio::any_io_executor store_pool,
               boost::asio::any_io_executor io, std::function<void()> notice_queued);

  void start();
  // Shutdown: no further rounds; the one running ends after its store call. Any thread.
  void stop();
  // True once stopped and the loop has ended. Any thread.
  bool idle() const;

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> tend();
  std::optional<store::NewMessage> notice_for(const store::Pickup& pickup,
                                              const std::string& original) const;

  const config::Settings& settings_;
  store::PickupKeeping& pickups_;
  store::Directory& directory_;  // who a notice goes to
  boost::asio::any_io_executor store_pool_;
  std::function<void()> notice_queued_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer wakeup_;

  // On the strand only.
  bool stopping_ = false;
  bool running_ = false;
  std::atomic<bool> idle_{true};
};

}  // namespace maild::reverse
