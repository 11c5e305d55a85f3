// The outbound queue's manager: takes due recipients from the store by lease,
// hands them to the courier per destination domain, records each outcome
// (delivered, retry later, failed for good), and sends the notices senders
// are owed (RFC 3464). Any number of maild nodes on one store run one each;
// leases keep them from delivering a recipient twice at the same time.
// Talks to: the store (on the store worker pool, never on an I/O thread) and
// the courier. Trust: the store is ours; outcomes arrive classified.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "delivery/courier.hpp"
#include "delivery/dsn.hpp"
#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "net/worker_slots.hpp"

namespace maild::delivery {

// How often the manager looks at the store when nothing woke it: new mail
// queued by another node, recipients coming due, notices owed.
inline constexpr std::chrono::seconds queue_poll{1};
// At most this many messages go to one domain in one batch (one connection,
// one after the other); more make further batches.
inline constexpr std::size_t batch_messages_max = 50;

// The reply recorded when max_queue_age is over.
std::string expired_reply(const std::string& last_reply, std::chrono::seconds max_age);

// The notice `in` describes, from us to its reverse path: to the sender's own
// mailboxes when they are ours, else queued to its server. `about` names it in
// the log. Reads the directory: only on the store worker pool.
store::NewMessage notice_message(NoticeInput& in, const config::Settings& settings,
                                 store::Directory& directory, const std::string& about);

class QueueManager {
 public:
  QueueManager(const config::Settings& settings, store::Store& store,
               boost::asio::any_io_executor store_pool, Courier& courier,
               boost::asio::any_io_executor io);

  const std::string& owner() const { return owner_; }
  void start();
  // Something was queued: look now instead of at the next poll. Any thread.
  void wake();
  // Shutdown: no more claims; transfers are cancelled and come back
  // temporary, and are recorded so. Any thread.
  void stop();
  // True once stopped and every batch has recorded its outcomes. Any thread.
  bool idle() const;

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> claim_work();
  boost::asio::awaitable<void> deliver_batch(std::string domain,
                                             std::vector<store::DeliveryJob> jobs);
  boost::asio::awaitable<void> send_notices();
  boost::asio::awaitable<void> renew_leases();
  std::vector<store::RecipientResult> results_for(const std::vector<store::DeliveryJob>& jobs,
                                                  const std::vector<Outcome>& outcomes) const;
  store::NewMessage notice_for(const store::QueuedMessage& message,
                               const std::string& original) const;

  const config::Settings& settings_;
  store::Store& store_;
  boost::asio::any_io_executor store_pool_;
  Courier& courier_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer wakeup_;
  std::string owner_;

  // On the strand only.
  bool stopping_ = false;
  bool running_ = false;
  std::size_t batches_ = 0;                      // started and not yet recorded
  net::WorkerSlots workers_;                     // [delivery] workers: batches at once
  std::set<store::QueueRecipientId> in_flight_;  // leased by this node, being delivered
  bool woken_ = false;
  std::chrono::steady_clock::time_point last_renewal_;
  std::atomic<bool> idle_{true};
};

}  // namespace maild::delivery
