// The courier; see courier.hpp. Each deliver() call runs on a strand of its
// own and holds one of its destination's slots for all of its connections,
// which it opens one after the other.
#include "delivery/courier.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "maild/core/ids.hpp"
#include "net/session_log.hpp"
#include "net/tls.hpp"
#include "smtp/header_section.hpp"

namespace maild::delivery {
namespace asio = boost::asio;
using asio::ip::tcp;
using Kind = Outcome::Kind;

namespace {

const std::string stopping_reply = "451 4.3.0 delivery interrupted: maild is stopping";

// "451 4.4.1 connect to ...: refused" -> "connect to ...: refused"
std::string text_of(const std::string& reply) {
  const auto code_end = reply.find(' ');
  const auto enhanced_end = reply.find(' ', code_end + 1);
  return enhanced_end == std::string::npos ? reply : reply.substr(enhanced_end + 1);
}

const char* kind_word(Kind kind) {
  switch (kind) {
    case Kind::delivered:
      return "delivered";
    case Kind::temporary:
      return "deferred";
    case Kind::permanent:
      return "failed";
  }
  return "?";
}

// Every recipient not settled yet gets `reply`.
void settle_rest(smtp::Transfer& transfer, Kind kind, const std::string& reply) {
  for (std::size_t i = 0; i < transfer.outcomes.size(); ++i) {
    if (transfer.settled[i]) continue;
    transfer.outcomes[i].kind = kind;
    transfer.outcomes[i].reply = reply;
    transfer.settled[i] = true;
  }
}
void settle_rest(std::vector<smtp::Transfer>& transfers, Kind kind, const std::string& reply) {
  for (auto& transfer : transfers) settle_rest(transfer, kind, reply);
}

}  // namespace

// The per_destination limit, shared by every deliver() call. A slot freed
// while others wait goes straight to the first waiter.
class Courier::Slots {
 public:
  explicit Slots(unsigned limit) : limit_(limit) {}

  // Waits at most `wait` for a slot of `key`; false on timeout or after close().
  asio::awaitable<bool> acquire(const std::string& key, Seconds wait) {
    const auto executor = co_await asio::this_coro::executor;
    auto waiter = std::make_shared<Waiter>(executor);
    {
      std::lock_guard lock(mutex_);
      if (closed_) co_return false;
      auto& destination = destinations_[key];
      if (destination.busy < limit_) {
        ++destination.busy;
        co_return true;
      }
      destination.waiters.push_back(waiter);
    }
    waiter->timer.expires_after(wait);
    boost::system::error_code ignored;
    co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    std::lock_guard lock(mutex_);
    if (waiter->granted) co_return true;
    if (const auto found = destinations_.find(key); found != destinations_.end()) {
      auto& waiters = found->second.waiters;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), waiter), waiters.end());
    }
    co_return false;
  }

  void release(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto found = destinations_.find(key);
    if (found == destinations_.end()) return;
    auto& destination = found->second;
    if (!destination.waiters.empty()) {
      auto next = destination.waiters.front();
      destination.waiters.pop_front();
      next->granted = true;
      wake(next);
      return;
    }
    if (--destination.busy == 0) destinations_.erase(found);
  }

  // Shutdown: every waiter gives up, and nobody gets a slot any more.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& [key, destination] : destinations_) {
      for (auto& waiter : destination.waiters) wake(waiter);
      destination.waiters.clear();
    }
  }

 private:
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool granted = false;  // guarded by mutex_
  };
  struct Destination {
    unsigned busy = 0;
    std::deque<std::shared_ptr<Waiter>> waiters;
  };

  // On the waiter's executor: a timer is not thread-safe.
  static void wake(const std::shared_ptr<Waiter>& waiter) {
    asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
  }

  const unsigned limit_;
  std::mutex mutex_;
  std::map<std::string, Destination> destinations_;
  bool closed_ = false;
};

// What went wrong so far, for the recipients no server settled.
struct Courier::Problem {
  std::optional<smtp::SessionTrouble> answered;  // the last trouble a server's reply caused
  std::string unanswered;                        // the last connection or lookup failure
  bool unanswered_is_connect = false;
};

Courier::Courier(const config::Settings& settings, dns::Resolver& resolver,
                 asio::any_io_executor executor, smtp::SourceOffers* pickups)
    : settings_(settings),
      resolver_(resolver),
      executor_(std::move(executor)),
      pickups_(settings.reverse.use_source ? pickups : nullptr),
      logins_(RouteLogins::load(settings.delivery.route_auth_file)),
      ourselves_(settings, Ourselves::interface_addresses()),
      tls_context_(net::make_client_tls_context()),
      slots_(std::make_unique<Slots>(settings.delivery.per_destination)) {
  bind_address_ = bind_address_of(settings.delivery);
  if (logins_.size() > 0) spdlog::info("{} smarthost logins loaded", logins_.size());
}

Courier::~Courier() = default;

void Courier::stop() {
  stopped_ = true;
  slots_->close();
  sessions_.request_stop();
  sessions_.close_all();
}

// One deliver() call: its parcels, how far each got, and who hears of the outcomes.
struct Courier::Batch {
  std::vector<Parcel>& parcels;
  std::vector<smtp::Transfer> transfers;
  std::vector<bool> finished;  // its outcomes were reported
  const Report& report;
  bool unrecorded = false;  // an outcome could not be recorded: nothing more goes out

  bool all_settled() const {
    return std::all_of(transfers.begin(), transfers.end(),
                       [](const smtp::Transfer& t) { return t.done(); });
  }
};

asio::awaitable<std::vector<Outcome>> Courier::deliver(const std::string& domain,
                                                       std::vector<Parcel>& parcels,
                                                       config::TlsPolicy tls, Report report) {
  // A strand of its own, so its connections never share one with the caller's.
  auto task = run(domain, parcels, tls, report);
  auto running = asio::co_spawn(asio::make_strand(executor_), std::move(task), asio::use_awaitable);
  auto outcomes = co_await std::move(running);
  co_return outcomes;
}

asio::awaitable<std::vector<Outcome>> Courier::run(const std::string& domain,
                                                   std::vector<Parcel>& parcels,
                                                   config::TlsPolicy tls, const Report& report) {
  const bool nothing_to_do = std::all_of(parcels.begin(), parcels.end(),
                                         [](const Parcel& p) { return p.recipients.empty(); });
  if (nothing_to_do) co_return std::vector<Outcome>{};
  Batch batch{parcels, {}, std::vector<bool>(parcels.size(), false), report};
  auto& transfers = batch.transfers;
  transfers.reserve(parcels.size());
  for (const auto& parcel : parcels) transfers.emplace_back(parcel);
  // RFC 5321 6.3: a message that went round too often is bounced here, not passed on.
  for (std::size_t p = 0; p < parcels.size(); ++p) {
    const auto hops = smtp::count_received(parcels[p].text);
    if (hops <= settings_.smtp.max_hops) continue;
    settle_rest(transfers[p], Kind::permanent,
                "554 5.4.6 too many hops (" + std::to_string(hops) +
                    " Received fields, [smtp] max_hops = " +
                    std::to_string(settings_.smtp.max_hops) + "): mail loop?, not relayed");
  }
  const auto destination = destination_for(settings_.delivery, domain);
  Problem problem;

  const bool got_slot = co_await slots_->acquire(destination.key, slot_wait_);
  if (got_slot) {
    struct Release {
      Slots& slots;
      const std::string& key;
      ~Release() { slots.release(key); }
    } release{*slots_, destination.key};
    const auto hops = co_await find_hops(resolver_, destination, settings_.delivery.smtp_port);
    if (hops.kind == Hops::Kind::ok) {
      co_await try_hops(destination, hops, batch, tls, problem);
    } else {
      settle_rest(transfers, hops.kind == Hops::Kind::permanent ? Kind::permanent : Kind::temporary,
                  hops.reply);
    }
  } else if (!stopped_) {
    problem.unanswered = "451 4.4.5 too many connections to " + destination.key +
                         " already ([delivery] per_destination = " +
                         std::to_string(settings_.delivery.per_destination) + ")";
  }

  // What no server settled is deferred with the most telling problem.
  Outcome left;
  left.kind = Kind::temporary;
  if (stopped_) {
    left.reply = stopping_reply;
  } else if (batch.unrecorded) {
    left.reply = "451 4.3.0 not sent: an earlier outcome could not be recorded";
  } else if (problem.answered) {
    left.reply = problem.answered->reply;
    left.remote_host = problem.answered->remote_host;
  } else if (problem.unanswered_is_connect) {
    const auto whom = destination.next_hop ? destination.next_hop->to_string() + " (route for " +
                                                 destination.domain + ")"
                                           : "any MX of " + destination.domain;
    left.reply = "451 4.4.1 no answer from " + whom + "; last: " + text_of(problem.unanswered);
  } else {
    left.reply = problem.unanswered.empty() ? "451 4.4.0 not attempted" : problem.unanswered;
  }
  std::vector<Outcome> outcomes;
  for (std::size_t p = 0; p < parcels.size(); ++p) {
    auto& transfer = transfers[p];
    if (!batch.finished[p]) {
      for (std::size_t i = 0; i < transfer.outcomes.size(); ++i) {
        if (transfer.settled[i]) continue;
        transfer.outcomes[i].kind = left.kind;
        transfer.outcomes[i].reply = left.reply;
        transfer.outcomes[i].remote_host = left.remote_host;
      }
      co_await finish(batch, p);
    }
    for (auto& outcome : transfer.outcomes) outcomes.push_back(std::move(outcome));
  }
  co_return outcomes;
}

// A parcel's outcomes are final: logged, and reported before anything else is sent.
asio::awaitable<bool> Courier::finish(Batch& batch, std::size_t parcel) {
  const auto& p = batch.parcels[parcel];
  const auto& outcomes = batch.transfers[parcel].outcomes;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& outcome = outcomes[i];
    spdlog::info("queue {} to=<{}> relay={} {}: {}", p.queue_id, p.recipients[i].address,
                 outcome.remote_host.empty() ? "none" : outcome.remote_host,
                 kind_word(outcome.kind), outcome.reply);
  }
  batch.finished[parcel] = true;
  if (!batch.report) co_return true;
  auto reporting = batch.report(parcel, outcomes);
  const bool recorded = co_await std::move(reporting);
  if (!recorded) batch.unrecorded = true;
  co_return recorded;
}

// Each host in order, each of its addresses in order, until every recipient is settled.
asio::awaitable<void> Courier::try_hops(const Destination& destination, const Hops& hops,
                                        Batch& batch, config::TlsPolicy tls, Problem& problem) {
  const auto finished = [&] { return batch.all_settled() || batch.unrecorded || stopped_; };
  // RFC 5321 5.1: ourselves among the hosts ends the list; as the first, it is a loop.
  const auto loops_back = [&](std::size_t index, const std::string& whom) {
    if (index == 0)
      settle_rest(
          batch.transfers, Kind::permanent,
          "554 5.4.6 mail for " + destination.domain + " loops back to myself (" + whom + ")");
  };
  for (std::size_t index = 0; index < hops.hops.size(); ++index) {
    const auto& hop = hops.hops[index];
    if (finished()) co_return;
    if (ourselves_.named(hop.host)) {
      loops_back(index, hop.host);
      co_return;
    }
    const auto found = co_await addresses_of(resolver_, hop);
    if (found.addresses.empty()) {
      spdlog::info("{}: {}", destination.domain, found.problem);
      problem.unanswered = found.problem;
      problem.unanswered_is_connect = false;
      continue;
    }
    for (const auto& address : found.addresses) {
      if (finished()) co_return;
      if (ourselves_.reached_at(address, hop.port)) {
        loops_back(index, remote_host_text(hop.host, address, hop.port));
        co_return;
      }
      auto trouble = co_await attempt(destination, hop, address, batch, tls, true);
      // A failed handshake under `may`: the same server once more, in plain text.
      if (trouble && trouble->tls_failed && tls == config::TlsPolicy::may && !stopped_) {
        auto again = co_await attempt(destination, hop, address, batch, tls, false);
        trouble = std::move(again);
      }
      if (!trouble) continue;
      if (!trouble->remote_host.empty()) {
        problem.answered = std::move(*trouble);
      } else {
        problem.unanswered = trouble->reply;
        problem.unanswered_is_connect = true;
      }
    }
  }
}

// One connection to one address: the session, and every unsettled parcel over it.
asio::awaitable<std::optional<smtp::SessionTrouble>> Courier::attempt(
    const Destination& destination, const Hop& hop, IpAddress address, Batch& batch,
    config::TlsPolicy tls, bool try_starttls) {
  const auto remote_host = remote_host_text(hop.host, address, hop.port);
  const net::SessionLog log(next_session_id());
  const auto executor = co_await asio::this_coro::executor;
  OutgoingSocket outgoing(sessions_, executor);
  auto& socket = outgoing.socket;
  const auto& control = outgoing.control;
  if (stopped_) co_return smtp::SessionTrouble{stopping_reply, "", false};

  const auto why =
      co_await connect_from(socket, bind_address_, address, hop.port, timeouts_.connect);
  if (stopped_) co_return smtp::SessionTrouble{stopping_reply, "", false};
  if (!why.empty()) {
    log.info("connect to {}: {}", remote_host, why);
    co_return smtp::SessionTrouble{"451 4.4.1 connect to " + remote_host + ": " + why, "", false};
  }
  log.info("connected to {} for {}{}", remote_host, destination.domain,
           try_starttls ? "" : " (plain text after a failed TLS handshake)");

  smtp::ClientOptions options;
  options.helo_name = settings_.server.hostname;
  options.server_name = hop.host;
  options.remote_host = remote_host;
  options.tls = tls;
  options.try_starttls = try_starttls;
  options.tls_context = tls_context_.get();
  options.credentials = destination.next_hop ? logins_.find(*destination.next_hop) : nullptr;
  options.pickups = pickups_;
  options.timeouts = timeouts_;
  smtp::ClientSession session(socket, options, control, log);
  const bool opened = co_await session.open();
  if (opened) {
    // Each message's outcome is recorded before the next goes out: after a
    // crash, only the message on the wire can arrive twice.
    auto& transfers = batch.transfers;
    for (std::size_t p = 0; p < batch.parcels.size() && session.usable(); ++p) {
      if (batch.finished[p]) continue;
      if (!transfers[p].done()) co_await session.send(batch.parcels[p], transfers[p]);
      if (!transfers[p].done()) continue;
      const bool recorded = co_await finish(batch, p);
      if (!recorded || stopped_) break;
    }
  }
  co_await session.quit();
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  if (session.usable()) co_return std::nullopt;
  co_return session.trouble();
}

}  // namespace maild::delivery
