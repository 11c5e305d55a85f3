// The outbound queue's manager; see queue_manager.hpp.
#include "delivery/queue_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <map>
#include <optional>

#include "delivery/dsn.hpp"
#include "maild/config/limits.hpp"
#include "maild/core/ids.hpp"
#include "maild/core/text.hpp"
#include "net/store_calls.hpp"

namespace maild::delivery {
namespace asio = boost::asio;

namespace {

// What a batch reads from the store before it is delivered.
struct Loaded {
  std::vector<std::optional<store::MessageText>> texts;  // nothing: deleted from the queue
  std::optional<config::TlsPolicy> tls;                  // the domain's own; else [delivery] tls
};

store::UnixTime unix_now() {
  return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string rfc5322_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  const auto n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return std::string(text, n);
}

}  // namespace

std::string expired_reply(const std::string& last_reply, std::chrono::seconds max_age) {
  return "550 5.4.7 delivery time expired after " + std::to_string(max_age.count() / 3600) +
         "h; last problem: " + last_reply;
}

QueueManager::QueueManager(const config::Settings& settings, store::DeliveryQueue& queue,
                           store::DomainPolicies& policies, store::Directory& directory,
                           asio::any_io_executor store_pool, Courier& courier,
                           asio::any_io_executor io)
    : LeasedWorker(io, "queue", "recipients", settings.server.hostname, settings.delivery.workers,
                   limits::queue_poll, settings.delivery.lease_time),
      settings_(settings),
      queue_(queue),
      policies_(policies),
      directory_(directory),
      store_pool_(std::move(store_pool)),
      courier_(courier) {}

void QueueManager::on_start() {
  spdlog::info("queue: delivering as {} with {} workers", owner(), settings_.delivery.workers);
}

asio::awaitable<void> QueueManager::round() {
  co_await send_notices();
  co_await claim_work();
  co_await renew_leases();
}

void QueueManager::on_stop() { courier_.stop(); }

asio::awaitable<void> QueueManager::claim_work() {
  const std::size_t capacity = settings_.delivery.workers * limits::batch_messages_max;
  const auto busy = in_flight();
  if (busy >= capacity) co_return;
  auto& queue = queue_;
  const auto next = co_await net::run_blocking(store_pool_, [&queue] { return queue.next_due(); });
  if (!next || *next > unix_now()) co_return;
  const std::size_t limit = capacity - busy;
  const auto lease = settings_.delivery.lease_time;
  const auto& owner = this->owner();
  auto jobs = co_await net::run_blocking(
      store_pool_, [&queue, &owner, lease, limit] { return queue.claim(owner, lease, limit); });
  if (stopping()) {
    // Claimed while stopping: give them back at once rather than after the lease.
    std::vector<store::RecipientResult> back;
    for (const auto& job : jobs)
      for (const auto& r : job.message.recipients)
        back.push_back({r.id, store::RecipientResult::Kind::deferred, unix_now(),
                        "451 4.3.2 maild was shutting down", "", false, false});
    co_await net::run_blocking(store_pool_,
                               [&queue, &owner, &back] { return queue.record(owner, back); });
    co_return;
  }
  std::size_t claimed = 0;
  std::map<std::string, std::vector<store::DeliveryJob>> by_domain;
  for (auto& job : jobs) {
    for (const auto& r : job.message.recipients) hold(r.id);
    claimed += job.message.recipients.size();
    auto& batch = by_domain[job.domain];
    if (batch.size() == limits::batch_messages_max) {
      job_started();
      asio::co_spawn(strand(), deliver_batch(job.domain, std::move(batch)), asio::detached);
      batch.clear();
    }
    batch.push_back(std::move(job));
  }
  for (auto& [domain, batch] : by_domain) {
    if (batch.empty()) continue;
    job_started();
    asio::co_spawn(strand(), deliver_batch(domain, std::move(batch)), asio::detached);
  }
  if (claimed == limit) look_again();  // there may be more due: look again at once
}

asio::awaitable<void> QueueManager::deliver_batch(std::string domain,
                                                  std::vector<store::DeliveryJob> jobs) {
  auto& queue = queue_;
  std::vector<bool> reported(jobs.size(), false);  // its outcomes went to record_outcomes()
  bool unrecorded = false;  // a recording failed: the store is in trouble, try the rest once
  try {
    const auto slot = co_await workers().acquire();  // given back when the try block ends
    std::vector<Parcel> parcels;
    std::vector<std::size_t> job_of;  // each parcel's job
    // The contents, and the domain's own STARTTLS policy (mailctl policy set --tls).
    const auto load = [&policies = policies_, &queue, &jobs, &domain] {
      Loaded loaded;
      for (const auto& job : jobs) loaded.texts.push_back(queue.text(job.message.id));
      loaded.tls = policies.policy(domain).tls;
      return loaded;
    };
    auto loaded = co_await net::run_blocking(store_pool_, load);
    auto& texts = loaded.texts;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto& m = jobs[i].message;
      if (!texts[i]) {
        // Deleted from the queue meanwhile: nothing to send, nothing to record.
        for (const auto& r : m.recipients) release(r.id);
        reported[i] = true;
        continue;
      }
      parcels.push_back(Parcel{m.id, m.reverse_path, m.envid, m.ret, m.smtputf8, m.eight_bit,
                               m.recipients, texts[i]->trace + texts[i]->content,
                               texts[i]->trace.size(), m.queued_at});
      job_of.push_back(i);
    }
    if (!stopping() && !parcels.empty()) {
      const auto tls = loaded.tls.value_or(settings_.delivery.tls);
      // On the courier's strand: each message's outcomes are recorded on this
      // one's, at once, while the connection waits.
      const Courier::Report report = [this, &domain, &jobs, &job_of, &reported, &unrecorded](
                                         std::size_t parcel, std::vector<Outcome> outcomes) {
        const auto index = job_of[parcel];
        reported[index] = true;  // deliver_batch waits for the courier meanwhile
        auto recording = record_outcomes(domain, jobs[index], std::move(outcomes), unrecorded);
        return asio::co_spawn(strand(), std::move(recording), asio::use_awaitable);
      };
      auto delivering = courier_.deliver(domain, parcels, tls, report);
      co_await std::move(delivering);
    }
  } catch (const std::exception& e) {
    spdlog::warn("queue: delivery to {} failed: {}", domain, e.what());
  }

  // What the courier never reported (stopping, or trouble) is recorded as unfinished.
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (reported[i]) continue;
    std::vector<Outcome> none;
    co_await record_outcomes(domain, jobs[i], std::move(none), unrecorded);
  }
  for (const auto& job : jobs)
    for (const auto& r : job.message.recipients) release(r.id);
  job_finished();
  look_again();  // notices may be owed now
}

// One message's outcomes, recorded in a commit of their own (which the store
// may share with other workers'), retried a few times unless `unrecorded` (an
// earlier recording of the batch failed); false, and `unrecorded`, when they
// could not be recorded. Its leases are released first: renewals no longer count them.
asio::awaitable<bool> QueueManager::record_outcomes(const std::string& domain,
                                                    const store::DeliveryJob& job,
                                                    std::vector<Outcome> outcomes,
                                                    bool& unrecorded) {
  auto& queue = queue_;
  const auto results = results_for(job, outcomes);
  for (const auto& r : job.message.recipients) release(r.id);
  const auto& owner = this->owner();
  const int tries = unrecorded ? 1 : limits::record_tries;
  for (int attempt = 1; attempt <= tries; ++attempt) {
    try {
      const auto applied = co_await net::run_blocking(
          store_pool_, [&queue, &owner, &results] { return queue.record(owner, results); });
      if (applied < results.size())
        spdlog::warn("queue: {} of {} results for message {} to {} came after their lease was lost",
                     results.size() - applied, results.size(), job.message.id, domain);
      look_again();  // notices may be owed now
      co_return true;
    } catch (const std::exception& e) {
      spdlog::warn("queue: recording results for message {} to {} failed (try {}): {}",
                   job.message.id, domain, attempt, e.what());
    }
    if (attempt == tries) break;
    asio::steady_timer pause(strand(), limits::record_retry_wait);
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  unrecorded = true;
  co_return false;
}

std::vector<store::RecipientResult> QueueManager::results_for(
    const store::DeliveryJob& job, const std::vector<Outcome>& outcomes) const {
  using Kind = store::RecipientResult::Kind;
  std::map<store::QueueRecipientId, const Outcome*> by_id;
  for (const auto& o : outcomes) by_id[o.recipient] = &o;
  const auto now = unix_now();
  const auto& d = settings_.delivery;
  std::vector<store::RecipientResult> results;
  const auto& m = job.message;
  for (const auto& r : m.recipients) {
    store::RecipientResult result;
    result.id = r.id;
    const auto found = by_id.find(r.id);
    const Outcome fallback{r.id,
                           Outcome::Kind::temporary,
                           stopping() ? "451 4.3.2 maild was shutting down"
                                      : "451 4.3.0 the delivery attempt did not finish",
                           "",
                           false,
                           false};
    const Outcome& o = found == by_id.end() ? fallback : *found->second;
    result.reply = o.reply;
    result.remote_host = o.remote_host;
    if (o.unconfirmed)
      spdlog::warn("queue: <{}> of message {}: no reply after the content; it may arrive twice",
                   r.address, m.id);
    switch (o.kind) {
      case Outcome::Kind::delivered:
        result.kind = Kind::delivered;
        result.notice = o.dsn_relayed && !m.reverse_path.empty();
        break;
      case Outcome::Kind::permanent:
        result.kind = Kind::failed;
        result.notice = wants_failure_notice(m.reverse_path, r.notify);
        break;
      case Outcome::Kind::temporary: {
        const auto age = now - m.queued_at;
        const auto expires = m.queued_at + d.max_queue_age;
        if (now >= expires) {
          result.kind = Kind::failed;
          result.reply = expired_reply(o.reply, d.max_queue_age);
          result.notice = wants_failure_notice(m.reverse_path, r.notify);
          break;
        }
        const auto step = std::min<std::size_t>(static_cast<std::size_t>(r.attempts),
                                                d.retry_schedule.size() - 1);
        result.kind = Kind::deferred;
        result.next_attempt = std::min(now + d.retry_schedule[step], expires);
        if (d.delay_warning.count() > 0 && !r.delay_warned && age >= d.delay_warning &&
            wants_delay_notice(m.reverse_path, r.notify)) {
          result.notice = true;
          result.delay_warned = true;
        }
        break;
      }
    }
    spdlog::info("queue: <{}> of message {}: {} ({}) {}", r.address, m.id,
                 result.kind == Kind::delivered ? "delivered"
                 : result.kind == Kind::failed  ? "failed"
                                                : "deferred",
                 result.remote_host.empty() ? "-" : result.remote_host, result.reply);
    results.push_back(std::move(result));
  }
  return results;
}

store::NewMessage QueueManager::notice_for(const store::QueuedMessage& message,
                                           const std::string& original) const {
  NoticeInput in;
  in.reverse_path = message.reverse_path;
  in.envid = message.envid;
  in.ret = message.ret;
  in.arrival = message.queued_at;
  in.retry_until = in.arrival + settings_.delivery.max_queue_age;
  for (const auto& r : message.recipients)
    in.recipients.push_back({r.address, r.orcpt, r.state, r.last_reply, r.remote_host});
  in.original = original;
  return notice_message(in, settings_, directory_, "message " + std::to_string(message.id));
}

store::NewMessage notice_message(NoticeInput& in, const config::Settings& settings,
                                 store::Directory& directory, const std::string& about) {
  in.hostname = settings.server.hostname;
  in.now = std::chrono::system_clock::now();
  in.token = random_hex_128();

  store::NewMessage notice;
  notice.reverse_path = "";  // a notice never gets a notice back (RFC 3461 6.1)
  const std::string received =
      "Received: by " + settings.server.hostname + " (maild); " + rfc5322_now() + "\r\n";
  notice.trace = "Return-Path: <>\r\n" + received;
  notice.outbound_trace = received;
  notice.content = compose_notice(in);

  const auto resolution = directory.resolve(in.reverse_path);
  switch (resolution.kind) {
    case store::Resolution::Kind::mailboxes:
      notice.mailboxes = resolution.mailboxes;
      for (const auto& target : resolution.forwards)
        notice.outbound.push_back({target, store::notify_never, ""});
      break;
    case store::Resolution::Kind::not_local:
      notice.outbound.push_back({in.reverse_path, store::notify_never, ""});
      break;
    case store::Resolution::Kind::unknown_local:
      spdlog::warn("queue: notice for {} dropped: <{}> is no mailbox of ours", about,
                   in.reverse_path);
      break;
  }
  return notice;
}

asio::awaitable<void> QueueManager::send_notices() {
  auto& queue = queue_;
  auto owed = co_await net::run_blocking(
      store_pool_, [&queue] { return queue.notices_owed(limits::notices_per_round); });
  for (const auto& message : owed) {
    const auto send = [this, &queue, &message] {
      const auto text = queue.text(message.id);
      const auto notice = notice_for(message, text ? text->trace + text->content : "");
      std::vector<store::QueueRecipientId> ids;
      for (const auto& r : message.recipients) ids.push_back(r.id);
      return queue.send_notice(ids, notice);
    };
    const auto stored = co_await net::run_blocking(store_pool_, send);
    spdlog::info("queue: notice for message {} to <{}>: {}{}", message.id, message.reverse_path,
                 counted(message.recipients.size(), "recipient"), stored.queued ? ", queued" : "");
    if (stored.queued) look_again();
  }
}

asio::awaitable<bool> QueueManager::renew(const std::vector<Id>& ids) {
  auto& queue = queue_;
  const auto& owner = this->owner();
  const auto lease = settings_.delivery.lease_time;
  const bool kept = co_await net::run_blocking(
      store_pool_, [&queue, &owner, &ids, lease] { return queue.renew(owner, ids, lease); });
  co_return kept;
}

}  // namespace maild::delivery
