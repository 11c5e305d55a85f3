// The retrieval worker; see retriever.hpp. The loop and its bookkeeping run
// on one strand, like the queue manager's; each group's connections run on a
// strand of their own and record every outcome as soon as it is known.
#include "reverse/retriever.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "maild/config/limits.hpp"
#include "maild/core/ids.hpp"
#include "net/session_log.hpp"
#include "net/store_calls.hpp"
#include "net/tls.hpp"
#include "reverse/fetch_address.hpp"
#include "reverse/policy.hpp"
#include "smtp/header_section.hpp"
#include "smtp/limits.hpp"
#include "smtp/token.hpp"

namespace maild::reverse {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string stopping_reply = "451 4.3.0 retrieval interrupted: maild is stopping";

// The stored SOURCE trace is Return-Path, then Received: the verification
// result goes between them, where DATA's `tag` puts its own.
std::string trace_with_result(const std::string& trace, const std::string& result) {
  if (!trace.starts_with("Return-Path:")) return result + trace;
  const auto end = trace.find("\r\n");
  if (end == std::string::npos) return trace + "\r\n" + result;
  return trace.substr(0, end + 2) + result + trace.substr(end + 2);
}

// Tokens announced by different clients take turns within a domain's groups:
// a forger's many SOURCEs do not queue in front of the genuine sender's.
// Otherwise in the store's order.
std::vector<store::PendingRetrieval> interleaved_by_client(
    std::vector<store::PendingRetrieval> retrievals) {
  std::vector<std::deque<store::PendingRetrieval>> by_client;
  std::map<std::string, std::size_t> index;
  for (auto& retrieval : retrievals) {
    const auto [at, added] = index.try_emplace(retrieval.client_address, by_client.size());
    if (added) by_client.emplace_back();
    by_client[at->second].push_back(std::move(retrieval));
  }
  std::vector<store::PendingRetrieval> out;
  out.reserve(retrievals.size());
  for (bool more = true; more;) {
    more = false;
    for (auto& queue : by_client) {
      if (queue.empty()) continue;
      out.push_back(std::move(queue.front()));
      queue.pop_front();
      more = more || !queue.empty();
    }
  }
  return out;
}

}  // namespace

// One sender domain's retrievals, fetched over as few connections as possible.
struct Retriever::Group {
  std::string domain;
  std::vector<store::PendingRetrieval> retrievals;
  std::vector<bool> settled;
  std::string problem;  // why what is left unsettled was not fetched
  std::string refused;  // an address we would not connect to (fetch_address.hpp), and why
  bool tried = false;   // an address we may connect to was found

  bool done() const { return std::all_of(settled.begin(), settled.end(), std::identity{}); }
};

// [delivery] per_destination connections per sender domain at once, on the
// worker's strand. A group waits for its domain's turn before it waits for a
// worker slot, so that one domain's many groups never queue in front of other
// domains' (SOURCE-GET.md 6). A turn given back while others wait goes
// straight to the first of them.
class Retriever::DomainTurns {
 public:
  explicit DomainTurns(unsigned share) : share_(share) {}

  // Waits at most `wait` for a turn of `domain`; false on timeout or after stop().
  asio::awaitable<bool> acquire(const std::string& domain, Seconds wait) {
    if (stopped_) co_return false;
    auto& turns = domains_[domain];
    if (turns.busy < share_) {
      ++turns.busy;
      co_return true;
    }
    const auto executor = co_await asio::this_coro::executor;
    auto waiter = std::make_shared<Waiter>(executor);
    turns.waiters.push_back(waiter);
    waiter->timer.expires_after(wait);
    boost::system::error_code ignored;
    co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (waiter->granted) co_return true;
    // Still listed, so the domain's entry is still there.
    auto& waiters = domains_[domain].waiters;
    waiters.erase(std::remove(waiters.begin(), waiters.end(), waiter), waiters.end());
    co_return false;
  }

  void release(const std::string& domain) {
    const auto found = domains_.find(domain);
    if (found == domains_.end()) return;
    auto& turns = found->second;
    if (!turns.waiters.empty() && !stopped_) {
      const auto next = turns.waiters.front();
      turns.waiters.pop_front();
      next->granted = true;
      next->timer.cancel();
      return;
    }
    if (--turns.busy == 0 && turns.waiters.empty()) domains_.erase(found);
  }

  // Shutdown: every waiter gives up, and nobody gets a turn any more.
  void stop() {
    stopped_ = true;
    for (auto& [domain, turns] : domains_)
      for (auto& waiter : turns.waiters) waiter->timer.cancel();
  }

 private:
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool granted = false;
  };
  struct Turns {
    unsigned busy = 0;
    std::deque<std::shared_ptr<Waiter>> waiters;
  };

  const unsigned share_;
  std::map<std::string, Turns> domains_;
  bool stopped_ = false;
};

// [delivery] per_destination connections per MX address at once, counted
// across every group (each on its own strand): many forged domains that name
// one slow host hold no more of the worker slots than one domain may. A
// group that finds the address busy does not wait: it goes on with the next
// address, and what is left is deferred.
class Retriever::AddressShares {
 public:
  explicit AddressShares(unsigned share) : share_(share) {}

  bool take(const IpAddress& address) {
    std::lock_guard lock(mutex_);
    auto& busy = busy_[address.to_string()];
    if (busy >= share_) return false;
    ++busy;
    return true;
  }

  void give_back(const IpAddress& address) {
    std::lock_guard lock(mutex_);
    const auto found = busy_.find(address.to_string());
    if (found != busy_.end() && --found->second == 0) busy_.erase(found);
  }

 private:
  const unsigned share_;
  std::mutex mutex_;
  std::map<std::string, unsigned> busy_;
};

Retriever::Retriever(const config::Settings& settings, store::RetrievalQueue& retrievals,
                     asio::any_io_executor store_pool, dns::Resolver& resolver,
                     asio::any_io_executor io, const smtp::SessionExtensions& checks)
    : LeasedWorker(io, "retrieval", "retrievals", settings.server.hostname,
                   settings.delivery.workers, settings.reverse.poll_interval,
                   settings.delivery.lease_time),
      settings_(settings),
      retrievals_(retrievals),
      store_pool_(std::move(store_pool)),
      resolver_(resolver),
      checks_(checks),
      io_(io),
      bind_address_(delivery::bind_address_of(settings.delivery)),
      tls_context_(net::make_client_tls_context()),
      timeouts_(timeouts_for(settings)),
      domain_turns_(std::make_unique<DomainTurns>(settings.delivery.per_destination)),
      address_shares_(std::make_unique<AddressShares>(settings.delivery.per_destination)) {}

Retriever::~Retriever() = default;

// DATA's deadlines, applied to a GET's content as it arrives (SOURCE-GET.md
// 6): each read within [smtp] data_timeout, as the server waits for DATA, and
// the whole content too, so that a peer dripping one line at a time is cut
// off; the 354 and the final reply wait no longer either.
smtp::ClientTimeouts Retriever::timeouts_for(const config::Settings& settings) {
  smtp::ClientTimeouts timeouts;
  const auto limit = settings.smtp.data_timeout;
  timeouts.fetch = limit;
  timeouts.data_block = std::min(timeouts.data_block, limit);
  timeouts.data = std::min(timeouts.data, limit);
  timeouts.end_of_data = std::min(timeouts.end_of_data, limit);
  return timeouts;
}

void Retriever::on_start() {
  spdlog::info(
      "retrieval: fetching as {} every {}s, at most {} connections at once, {} per domain and "
      "per MX address",
      owner(), settings_.reverse.poll_interval.count(), settings_.delivery.workers,
      settings_.delivery.per_destination);
}

asio::awaitable<void> Retriever::round() {
  co_await claim_work();
  co_await renew_leases();
  co_await purge();
}

void Retriever::on_stop() {
  stopped_ = true;
  domain_turns_->stop();
  sessions_.request_stop();
  sessions_.close_all();
}

asio::awaitable<void> Retriever::claim_work() {
  const std::size_t capacity = settings_.delivery.workers * limits::gets_per_connection_max;
  const auto busy = in_flight();
  if (busy >= capacity) co_return;
  const std::size_t limit = capacity - busy;
  auto& reverse = retrievals_;
  const auto& owner = this->owner();
  const auto lease = settings_.delivery.lease_time;
  auto claimed = co_await net::run_blocking(store_pool_, [&reverse, &owner, lease, limit] {
    return reverse.claim_retrievals(owner, lease, limit);
  });
  if (claimed.empty()) co_return;
  const auto count = claimed.size();
  // Ordered by sender domain: consecutive runs make each domain's retrievals.
  std::vector<std::vector<store::PendingRetrieval>> domains;
  for (auto& retrieval : claimed) {
    hold(retrieval.id);
    if (domains.empty() || domains.back().front().sender_domain != retrieval.sender_domain)
      domains.emplace_back();
    domains.back().push_back(std::move(retrieval));
  }
  // Each domain's groups of at most gets_per_connection_max tokens.
  std::vector<std::vector<std::vector<store::PendingRetrieval>>> groups;
  for (auto& retrievals : domains) {
    auto& split = groups.emplace_back();
    for (auto& retrieval : interleaved_by_client(std::move(retrievals))) {
      if (split.empty() || split.back().size() == limits::gets_per_connection_max)
        split.emplace_back();
      split.back().push_back(std::move(retrieval));
    }
  }
  // Started in turn across domains: every domain's first group, then every
  // second one, so that the worker slots go round (SOURCE-GET.md 6).
  for (std::size_t round = 0, started = 1; started > 0; ++round) {
    started = 0;
    for (auto& split : groups) {
      if (round >= split.size()) continue;
      auto& group = split[round];
      job_started();
      auto domain = group.front().sender_domain;
      asio::co_spawn(strand(), fetch_group(std::move(domain), std::move(group)), asio::detached);
      ++started;
    }
  }
  if (count == limit) look_again();  // there may be more due: look again at once
}

asio::awaitable<void> Retriever::fetch_group(std::string domain,
                                             std::vector<store::PendingRetrieval> retrievals) {
  Group group{std::move(domain), std::move(retrievals), {}, {}, {}, false};
  group.settled.assign(group.retrievals.size(), false);
  try {
    // The domain's turn first, then a worker slot: both given back when the try block ends.
    const bool turn = co_await domain_turns_->acquire(group.domain, limits::destination_slot_wait);
    struct EndTurn {
      DomainTurns& turns;
      const std::string& domain;
      bool held;
      ~EndTurn() {
        if (held) turns.release(domain);
      }
    } end_turn{*domain_turns_, group.domain, turn};
    if (!turn && !stopping()) {
      const auto reason = "451 4.4.5 too many retrieval connections for " + group.domain +
                          " already ([delivery] per_destination = " +
                          std::to_string(settings_.delivery.per_destination) + ")";
      for (std::size_t i = 0; i < group.retrievals.size(); ++i)
        co_await temporary(group, i, reason);
    }
    if (turn) {
      const auto slot = co_await workers().acquire();
      if (!stopping()) {
        // A strand of its own, so that its connections never share this one.
        auto task = run_group(group);
        auto running = asio::co_spawn(asio::make_strand(io_), std::move(task), asio::use_awaitable);
        co_await std::move(running);
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("retrieval: fetching from {} failed: {}", group.domain, e.what());
  }
  for (const auto& r : group.retrievals) release(r.id);
  job_finished();
}

// The sender domain's MX hosts in order, each of their addresses in order,
// until every token of the group has an outcome.
asio::awaitable<void> Retriever::run_group(Group& group) {
  const delivery::Destination destination{group.domain, group.domain, std::nullopt};
  const auto hops =
      co_await delivery::find_hops(resolver_, destination, settings_.delivery.smtp_port);
  if (hops.kind != delivery::Hops::Kind::ok) {
    // SOURCE-GET.md 3: a null MX (or no such domain) cannot have sent it.
    const bool gone = hops.kind == delivery::Hops::Kind::permanent;
    for (std::size_t i = 0; i < group.retrievals.size(); ++i) {
      if (gone)
        co_await permanent(group, i, hops.reply);
      else
        co_await temporary(group, i, hops.reply);
    }
    co_return;
  }
  for (const auto& hop : hops.hops) {
    if (group.done() || stopped_) break;
    const auto found = co_await delivery::addresses_of(resolver_, hop);
    if (found.addresses.empty()) {
      group.problem = found.problem;
      continue;
    }
    for (const auto& address : found.addresses) {
      if (group.done() || stopped_) break;
      const auto remote_host = delivery::remote_host_text(hop.host, address, hop.port);
      if (const auto why = refusal_to_fetch_from(settings_, hop.host, address); !why.empty()) {
        spdlog::warn("retrieval: not connecting to {} for {}: {}", remote_host, group.domain, why);
        group.refused = "550 5.7.1 not fetched from " + remote_host + ": " + why;
        continue;
      }
      group.tried = true;
      if (!address_shares_->take(address)) {
        group.problem = "451 4.4.5 too many retrieval connections to " + address.to_string() +
                        " already ([delivery] per_destination = " +
                        std::to_string(settings_.delivery.per_destination) + ")";
        continue;
      }
      struct GiveBack {
        AddressShares& shares;
        const IpAddress& address;
        ~GiveBack() { shares.give_back(address); }
      } give_back{*address_shares_, address};
      co_await try_address(group, hop, address, true);
    }
  }
  // Only addresses we must not connect to (and no lookup that failed for now):
  // the domain's MX cannot be reached, so the message cannot be verified.
  if (!stopped_ && !group.tried && !group.refused.empty() && group.problem.empty()) {
    for (std::size_t i = 0; i < group.retrievals.size(); ++i)
      if (!group.settled[i]) co_await permanent(group, i, group.refused);
    co_return;
  }
  if (group.problem.empty()) group.problem = "451 4.4.1 no answer from any MX of " + group.domain;
  if (stopped_) group.problem = stopping_reply;
  for (std::size_t i = 0; i < group.retrievals.size(); ++i) {
    if (group.settled[i]) continue;
    const auto reason = group.problem;
    co_await temporary(group, i, reason);
  }
}

// One connection to one address: EHLO (STARTTLS when offered), then GET for
// every token of the group that has no outcome yet.
asio::awaitable<void> Retriever::try_address(Group& group, const delivery::Hop& hop,
                                             const IpAddress& address, bool try_starttls) {
  const auto remote_host = delivery::remote_host_text(hop.host, address, hop.port);
  const net::SessionLog log(next_session_id());
  const auto executor = co_await asio::this_coro::executor;
  delivery::OutgoingSocket outgoing(sessions_, executor);
  auto& socket = outgoing.socket;
  const auto& control = outgoing.control;
  if (stopped_) co_return;

  const auto why =
      co_await delivery::connect_from(socket, bind_address_, address, hop.port, timeouts_.connect);
  if (stopped_) co_return;
  if (!why.empty()) {
    log.info("retrieval: connect to {}: {}", remote_host, why);
    group.problem = "451 4.4.1 connect to " + remote_host + ": " + why;
    co_return;
  }
  log.info("retrieval: connected to {} for {}{}", remote_host, group.domain,
           try_starttls ? "" : " (plain text after a failed TLS handshake)");

  smtp::ClientOptions options;
  options.helo_name = settings_.server.hostname;
  options.server_name = hop.host;
  options.remote_host = remote_host;
  options.tls = config::TlsPolicy::may;
  options.try_starttls = try_starttls;
  options.tls_context = tls_context_.get();
  options.timeouts = timeouts_;
  bool tls_failed = false;
  {
    smtp::ClientSession session(socket, options, control, log);
    const bool opened = co_await session.open();
    if (opened && !session.extensions().source) {
      // SOURCE-GET.md 4: the domain's MX does not know the extension.
      const auto reason = "550 5.7.0 " + remote_host + ", an MX of " + group.domain +
                          ", does not offer SOURCE: the message cannot be verified";
      for (std::size_t i = 0; i < group.retrievals.size(); ++i)
        if (!group.settled[i]) co_await permanent(group, i, reason);
    }
    for (std::size_t i = 0; i < group.retrievals.size() && opened && session.usable(); ++i) {
      if (group.settled[i]) continue;
      const auto& retrieval = group.retrievals[i];
      const auto declared = retrieval.declared_size.value_or(settings_.smtp.max_message_size.bytes);
      smtp::DataLimits limits{ByteSize{std::min(declared, settings_.smtp.max_message_size.bytes)},
                              smtp::text_line_max,
                              settings_.smtp.bare_newline == config::BareNewlinePolicy::reject
                                  ? smtp::BareNewline::reject
                                  : smtp::BareNewline::normalize};
      auto fetched = co_await session.fetch(retrieval.token, limits);
      const auto reason = fetched.reply + " (from " + remote_host + ")";
      switch (fetched.kind) {
        case smtp::Fetched::Kind::content:
          co_await accept(group, i, fetched.content, remote_host);
          break;
        case smtp::Fetched::Kind::permanent:
          co_await permanent(group, i, reason);
          break;
        case smtp::Fetched::Kind::temporary:
          // A 4xx answer settles the token for now; a broken session leaves
          // it to the next address.
          if (session.usable()) co_await temporary(group, i, reason);
          break;
      }
    }
    co_await session.quit();
    if (!session.usable()) {
      group.problem = session.trouble().reply;
      tls_failed = session.trouble().tls_failed;
    }
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  // A failed handshake: the same server once more, in plain text (as delivery does).
  if (tls_failed && try_starttls && !stopped_ && !group.done())
    co_await try_address(group, hop, address, false);
}

// SOURCE-GET.md 4: the fetched message, with the envelope of the SOURCE
// transaction, stored and marked verified in one commit.
asio::awaitable<void> Retriever::accept(Group& group, std::size_t index, std::string& content,
                                        const std::string& remote_host) {
  const auto& retrieval = group.retrievals[index];
  // As for DATA: a loop is refused, and only we may speak as our authserv-id (RFC 8601 5).
  if (const auto hops = smtp::count_received(content); hops > settings_.smtp.max_hops) {
    spdlog::info("retrieval {} {}: {} Received fields, more than max_hops {}", retrieval.id,
                 smtp::shown_token(retrieval.token), hops, settings_.smtp.max_hops);
    const auto reply =
        "554 5.4.6 too many hops (" + std::to_string(hops) + " Received fields): mail loop?";
    co_await permanent(group, index, reply);
    co_return;
  }
  if (const auto forged =
          smtp::remove_own_authentication_results(content, settings_.server.hostname))
    spdlog::info("retrieval {} {}: removed {} Authentication-Results fields claiming to be ours",
                 retrieval.id, smtp::shown_token(retrieval.token), forged);
  // The end of the content, as for DATA: every check may refuse, defer or add header fields.
  std::vector<std::string> recipients;
  for (const auto& recipient : retrieval.recipients) recipients.push_back(recipient.address);
  const smtp::FetchedMessage fetched{retrieval.reverse_path, recipients, retrieval.client_address,
                                     retrieval.helo, content};
  std::string headers;
  for (const auto* check : checks_) {
    const auto verdict = co_await check->on_fetched(fetched);
    auto reply = std::to_string(verdict.status.code);
    for (const std::string_view part : {verdict.status.enhanced, std::string_view(verdict.text)})
      if (!part.empty()) reply += " " + std::string(part);
    switch (verdict.action) {
      case smtp::Verdict::Action::proceed:
        headers += verdict.headers;
        continue;
      case smtp::Verdict::Action::refuse:
        spdlog::info("retrieval {} {}: refused by a check: {}", retrieval.id,
                     smtp::shown_token(retrieval.token), reply);
        co_await permanent(group, index, reply);
        co_return;
      case smtp::Verdict::Action::defer:
        spdlog::info("retrieval {} {}: deferred by a check: {}", retrieval.id,
                     smtp::shown_token(retrieval.token), reply);
        co_await temporary(group, index, reply);
        co_return;
    }
  }
  store::NewMessage message;
  message.reverse_path = retrieval.reverse_path;
  for (const auto& recipient : retrieval.recipients)
    message.mailboxes.insert(message.mailboxes.end(), recipient.mailboxes.begin(),
                             recipient.mailboxes.end());
  message.trace = trace_with_result(
      retrieval.trace,
      verified_result(settings_.server.hostname, retrieval.sender_domain) + headers);
  message.content = std::move(content);
  const auto size = message.content.size();
  auto& reverse = retrievals_;
  const auto& owner = this->owner();
  const auto id = retrieval.id;
  std::string refusal;
  release(id);  // stored now, before the rest of the group
  try {
    const auto stored = co_await net::run_blocking(store_pool_, [&reverse, &owner, id, &message] {
      return reverse.finish_retrieval(owner, id, message);
    });
    group.settled[index] = true;
    spdlog::info(
        "retrieval {} {} from <{}>: fetched from {}, {} octets, stored {} verified for {} "
        "mailboxes",
        id, smtp::shown_token(retrieval.token), retrieval.reverse_path, remote_host, size,
        stored.content_hash.substr(0, 16), stored.deliveries.size());
    co_return;
  } catch (const store::StoreConflict& e) {
    // Not ours any more (the lease was lost), or a mailbox is gone.
    spdlog::warn("retrieval {} {}: fetched, but not stored: {}", id,
                 smtp::shown_token(retrieval.token), e.what());
    refusal = std::string("550 5.3.0 not stored: ") + e.what();
  } catch (const std::exception& e) {
    spdlog::warn("retrieval {} {}: store error: {}", id, smtp::shown_token(retrieval.token),
                 e.what());
  }
  if (!refusal.empty()) {
    co_await permanent(group, index, refusal);
  } else {
    const std::string reason = "451 4.3.0 store error";
    co_await temporary(group, index, reason);
  }
}

asio::awaitable<void> Retriever::permanent(Group& group, std::size_t index,
                                           const std::string& reason) {
  group.settled[index] = true;
  const auto& retrieval = group.retrievals[index];
  auto& reverse = retrievals_;
  const auto& owner = this->owner();
  const auto id = retrieval.id;
  spdlog::info("retrieval {} {} from <{}>: failed, not delivered: {}", id,
               smtp::shown_token(retrieval.token), retrieval.reverse_path, reason);
  release(id);
  try {
    co_await net::run_blocking(store_pool_, [&reverse, &owner, id, &reason] {
      return reverse.fail_retrieval(owner, id, store::RetrievalFailure::permanent, reason);
    });
  } catch (const std::exception& e) {
    spdlog::warn("retrieval {}: recording the failure: {}", id, e.what());
  }
}

// Tried again after the next step of [delivery] retry_schedule, until
// [reverse] pending_max_age; then given up.
asio::awaitable<void> Retriever::temporary(Group& group, std::size_t index,
                                           const std::string& reason) {
  group.settled[index] = true;
  const auto& retrieval = group.retrievals[index];
  auto& reverse = retrievals_;
  const auto& owner = this->owner();
  const auto id = retrieval.id;
  const auto now = unix_now();
  const auto max_age = settings_.reverse.pending_max_age;
  const auto expires = retrieval.received_at.time_since_epoch().count() + max_age.count();
  release(id);
  try {
    if (now >= expires) {
      const auto why = "550 5.4.7 not fetched within " + std::to_string(max_age.count()) +
                       "s; last problem: " + reason;
      spdlog::info("retrieval {} {} from <{}>: given up: {}", id,
                   smtp::shown_token(retrieval.token), retrieval.reverse_path, why);
      co_await net::run_blocking(store_pool_, [&reverse, &owner, id, &why] {
        return reverse.fail_retrieval(owner, id, store::RetrievalFailure::expired, why);
      });
      co_return;
    }
    const auto& schedule = settings_.delivery.retry_schedule;
    const auto step = std::min<std::size_t>(
        static_cast<std::size_t>(std::max(retrieval.attempts, 0)), schedule.size() - 1);
    // Cut short by a stop: due again at once, for whichever node runs next.
    const auto next = stopped_ ? now : std::min(now + schedule[step].count(), expires);
    spdlog::info("retrieval {} {} from <{}>: deferred for {}s: {}", id,
                 smtp::shown_token(retrieval.token), retrieval.reverse_path, next - now, reason);
    co_await net::run_blocking(store_pool_, [&reverse, &owner, id, next, &reason] {
      return reverse.defer_retrieval(owner, id, store::UnixTime{std::chrono::seconds{next}},
                                     reason);
    });
  } catch (const std::exception& e) {
    spdlog::warn("retrieval {}: recording the deferral: {}", id, e.what());
  }
}

asio::awaitable<bool> Retriever::renew(const std::vector<Id>& ids) {
  auto& reverse = retrievals_;
  const auto& owner = this->owner();
  const auto lease = settings_.delivery.lease_time;
  const bool kept = co_await net::run_blocking(store_pool_, [&reverse, &owner, &ids, lease] {
    return reverse.renew_retrievals(owner, ids, lease);
  });
  co_return kept;
}

// Fetched and failed retrievals are kept for `mailctl` a while, then deleted.
asio::awaitable<void> Retriever::purge() {
  const auto now = std::chrono::steady_clock::now();
  if (last_purge_ != std::chrono::steady_clock::time_point{} &&
      now - last_purge_ < limits::retrieval_purge_interval)
    co_return;
  last_purge_ = now;
  auto& reverse = retrievals_;
  const store::UnixTime before{
      std::chrono::seconds{unix_now() - settings_.reverse.pending_max_age.count()}};
  const auto purged = co_await net::run_blocking(
      store_pool_, [&reverse, before] { return reverse.purge_retrievals(before); });
  if (purged > 0) spdlog::info("retrieval: {} finished retrievals purged", purged);
}

}  // namespace maild::reverse
