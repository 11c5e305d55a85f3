// The outbound queue's manager: takes due recipients from the store by lease,
// hands them to the courier per destination domain, records each outcome
// (delivered, retry later, failed for good), and sends the notices senders
// are owed (RFC 3464). Any number of maild nodes on one store run one each;
// leases keep them from delivering a recipient twice at the same time. Its
// loop, leases and worker slots are net::LeasedWorker's.
// Talks to: the store (on the store worker pool, never on an I/O thread) and
// the courier. Trust: the store is ours; outcomes arrive classified.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "delivery/courier.hpp"
#include "delivery/dsn.hpp"
#include "maild/config/limits.hpp"
#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "net/leased_worker.hpp"

namespace maild::delivery {

// The reply recorded when max_queue_age is over.
std::string expired_reply(const std::string& last_reply, std::chrono::seconds max_age);

// The notice `in` describes, from us to its reverse path: to the sender's own
// mailboxes when they are ours, else queued to its server. `about` names it in
// the log. Reads the directory: only on the store worker pool.
store::NewMessage notice_message(NoticeInput& in, const config::Settings& settings,
                                 store::Directory& directory, const std::string& about);

// wake(): something was queued. stop(): transfers are cancelled and come back
// temporary, and are recorded so. idle(): every batch has recorded its outcomes.
// Each message's outcomes are recorded as soon as its peer's reply is in, before
// the connection sends the next: a crash resends at most the message on the wire.
class QueueManager final : public net::LeasedWorker {
 public:
  QueueManager(const config::Settings& settings, store::DeliveryQueue& queue,
               store::DomainPolicies& policies, store::Directory& directory,
               boost::asio::any_io_executor store_pool, Courier& courier,
               boost::asio::any_io_executor io);

 private:
  void on_start() override;
  boost::asio::awaitable<void> round() override;
  boost::asio::awaitable<bool> renew(const std::vector<Id>& ids) override;
  void on_stop() override;
  boost::asio::awaitable<void> claim_work();
  boost::asio::awaitable<void> deliver_batch(std::string domain,
                                             std::vector<store::DeliveryJob> jobs);
  boost::asio::awaitable<bool> record_outcomes(const std::string& domain,
                                               const store::DeliveryJob& job,
                                               std::vector<Outcome> outcomes, bool& unrecorded);
  boost::asio::awaitable<void> send_notices();
  std::vector<store::RecipientResult> results_for(const store::DeliveryJob& job,
                                                  const std::vector<Outcome>& outcomes) const;
  store::NewMessage notice_for(const store::QueuedMessage& message,
                               const std::string& original) const;

  const config::Settings& settings_;
  store::DeliveryQueue& queue_;
  store::DomainPolicies& policies_;  // each domain's own STARTTLS policy
  store::Directory& directory_;      // who a notice goes to
  boost::asio::any_io_executor store_pool_;
  Courier& courier_;
};

}  // namespace maild::delivery
