// Pickups for SOURCE over the store; see pickup_desk.hpp.
#include "reverse/pickup_desk.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/store_calls.hpp"
#include "reverse/token.hpp"
#include "smtp/token.hpp"

namespace maild::reverse {
namespace asio = boost::asio;

StorePickupDesk::StorePickupDesk(store::PickupOffers& pickups, asio::any_io_executor store_pool)
    : reverse_(pickups), store_pool_(std::move(store_pool)) {}

asio::awaitable<std::optional<smtp::SourceOffer>> StorePickupDesk::offer(
    const smtp::OutboundMessage& message, const std::vector<std::size_t>& recipients,
    const std::string& peer) {
  store::NewPickup pickup;
  pickup.token = new_token();
  pickup.reverse_path = message.reverse_path;
  pickup.envid = message.envid;
  pickup.ret = message.ret;
  pickup.smtputf8 = message.smtputf8;
  pickup.arrival = message.arrival;
  pickup.peer = peer;
  for (const auto i : recipients) {
    const auto& r = message.recipients[i];
    pickup.recipients.push_back({r.address, r.domain, r.notify, r.orcpt});
  }
  const auto trace_size = std::min(message.trace_size, message.text.size());
  pickup.outbound_trace = message.text.substr(0, trace_size);
  pickup.content = message.text.substr(trace_size);
  auto& reverse = reverse_;
  try {
    const auto id = co_await net::run_blocking(
        store_pool_, [&reverse, &pickup] { return reverse.create_pickup(pickup); });
    co_return smtp::SourceOffer{id, std::move(pickup.token)};
  } catch (const std::exception& e) {
    spdlog::warn("pickup for message {} not recorded, sending it with DATA: {}", message.queue_id,
                 e.what());
  }
  co_return std::nullopt;
}

asio::awaitable<bool> StorePickupDesk::settle(const smtp::SourceOffer& offer, bool accepted) {
  auto& reverse = reverse_;
  const auto id = offer.id;
  try {
    if (accepted) {
      // A quick peer may have fetched it before the 250 reached us: that is delivered too.
      const auto& token = offer.token;
      const auto confirm = [&reverse, id, &token] {
        if (reverse.confirm_pickup(id)) return true;
        const auto pickup = reverse.find_pickup(token);
        return pickup && pickup->state == store::PickupState::transferred;
      };
      const bool confirmed = co_await net::run_blocking(store_pool_, confirm);
      if (!confirmed) spdlog::warn("pickup {} was no longer offered when SOURCE was accepted", id);
      co_return confirmed;
    }
    // Not offered any more only when another node purged it: nothing to undo.
    const bool cancelled = co_await net::run_blocking(
        store_pool_, [&reverse, id] { return reverse.cancel_pickup(id); });
    (void)cancelled;
    co_return true;
  } catch (const std::exception& e) {
    spdlog::warn("pickup {} ({}): {} failed: {}", id, smtp::shown_token(offer.token),
                 accepted ? "confirming" : "cancelling", e.what());
  }
  co_return false;
}

}  // namespace maild::reverse
