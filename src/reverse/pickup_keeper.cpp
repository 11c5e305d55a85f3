// The pickups' housekeeping; see pickup_keeper.hpp. One coroutine on its own
// strand, like the queue manager's loop. Its log lines keep the queue's
// prefix: operators and tests know them by it.
#include "reverse/pickup_keeper.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>

#include "config/settings_table.hpp"
#include "delivery/dsn.hpp"
#include "delivery/queue_manager.hpp"
#include "maild/config/limits.hpp"
#include "maild/core/text.hpp"
#include "net/store_calls.hpp"
#include "reverse/pickup_desk.hpp"
#include "smtp/token.hpp"

namespace maild::reverse {
namespace asio = boost::asio;

namespace {

store::UnixTime unix_now() {
  return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

PickupKeeper::PickupKeeper(const config::Settings& settings, store::PickupKeeping& pickups,
                           store::Directory& directory, asio::any_io_executor store_pool,
                           asio::any_io_executor io, std::function<void()> notice_queued)
    : settings_(settings),
      pickups_(pickups),
      directory_(directory),
      store_pool_(std::move(store_pool)),
      notice_queued_(std::move(notice_queued)),
      strand_(asio::make_strand(io)),
      wakeup_(strand_) {}

void PickupKeeper::start() {
  idle_ = false;
  running_ = true;
  asio::co_spawn(strand_, run(), asio::detached);
}

void PickupKeeper::stop() {
  asio::post(strand_, [this] {
    stopping_ = true;
    wakeup_.cancel();
    idle_ = !running_;
  });
}

bool PickupKeeper::idle() const { return idle_; }

asio::awaitable<void> PickupKeeper::run() {
  while (!stopping_) {
    try {
      co_await tend();
    } catch (const std::exception& e) {
      spdlog::warn("queue: store error: {}", e.what());
    }
    if (stopping_) break;
    // Every [reverse] poll_interval, not more often: the purge is a write.
    boost::system::error_code ec;
    wakeup_.expires_after(settings_.reverse.poll_interval);
    co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  running_ = false;
  idle_ = true;
}

// One failure notice per pickup the receiving server never fetched, then the
// content of those done with goes.
asio::awaitable<void> PickupKeeper::tend() {
  auto& reverse = pickups_;
  const auto now = unix_now();
  const auto confirmed_before = now - settings_.reverse.pickup_max_age;
  const auto expired = co_await net::run_blocking(store_pool_, [&reverse, confirmed_before] {
    return reverse.expired_pickups(confirmed_before, limits::expiries_per_round);
  });
  for (const auto& pickup : expired) {
    bool noticed = false;
    const auto expire = [this, &reverse, &pickup, &noticed] {
      const auto text = reverse.pickup_text(pickup.id);
      const auto notice = notice_for(pickup, text ? text->trace + text->content : "");
      noticed = notice.has_value();
      return reverse.expire_pickup(pickup.id, notice);
    };
    const bool done = co_await net::run_blocking(store_pool_, expire);
    if (!done) continue;  // fetched or expired meanwhile (another node)
    spdlog::info("queue: pickup {} ({}) from <{}> never fetched by {}: expired, {}", pickup.id,
                 smtp::shown_token(pickup.token), pickup.reverse_path, pickup.peer,
                 noticed ? "notice sent" : "no notice");
    if (noticed && notice_queued_) notice_queued_();  // it may be queued for another server
  }
  const auto fetched_before = now - settings_.reverse.retain_after_fetch;
  const auto offered_before = now - limits::offered_pickup_max_age;
  const auto purged =
      co_await net::run_blocking(store_pool_, [&reverse, fetched_before, offered_before] {
        return reverse.purge_pickups(fetched_before, offered_before);
      });
  if (purged > 0) spdlog::info("queue: {} purged", counted(purged, "pickup"));
}

// A failure notice for a pickup never fetched within pickup_max_age, for the
// recipients that want one; nothing when none does or it can go nowhere.
std::optional<store::NewMessage> PickupKeeper::notice_for(const store::Pickup& pickup,
                                                          const std::string& original) const {
  // Our own reason, not the peer's reply: no remote host, so the notice says X-maild.
  const std::string reply = "554 5.4.7 not fetched by the receiving server " + pickup.peer +
                            " within " +
                            config::table::format_duration(settings_.reverse.pickup_max_age);
  delivery::NoticeInput in;
  in.reverse_path = pickup.reverse_path;
  in.envid = pickup.envid;
  in.ret = pickup.ret;
  in.arrival = pickup.arrival;
  in.retry_until = in.arrival;  // never retried: only delayed recipients show it
  for (const auto& r : pickup.recipients)
    if (delivery::wants_failure_notice(pickup.reverse_path, r.notify))
      in.recipients.push_back({r.address, r.orcpt, store::RecipientState::failed, reply, ""});
  if (in.recipients.empty()) return std::nullopt;
  in.original = original;
  auto notice =
      delivery::notice_message(in, settings_, directory_, "pickup " + std::to_string(pickup.id));
  if (notice.mailboxes.empty() && notice.outbound.empty()) return std::nullopt;
  return notice;
}

}  // namespace maild::reverse
