// Pickups for SOURCE over the store; see pickup_desk.hpp.
#include "delivery/pickup_desk.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/store_calls.hpp"
#include "reverse/token.hpp"

namespace maild::delivery {
namespace asio = boost::asio;

StorePickupDesk::StorePickupDesk(store::ReverseStore& reverse, asio::any_io_executor store_pool)
    : reverse_(reverse), store_pool_(std::move(store_pool)) {}

asio::awaitable<std::optional<PickupOffer>> StorePickupDesk::offer(
    const Parcel& parcel, const std::vector<std::size_t>& recipients, const std::string& peer) {
  store::NewPickup pickup;
  pickup.token = reverse::new_token();
  pickup.reverse_path = parcel.reverse_path;
  pickup.envid = parcel.envid;
  pickup.ret = parcel.ret;
  pickup.smtputf8 = parcel.smtputf8;
  pickup.arrival = store::UnixTime{std::chrono::seconds{parcel.arrival}};
  pickup.peer = peer;
  for (const auto i : recipients) {
    const auto& r = parcel.recipients[i];
    pickup.recipients.push_back({r.address, r.domain, r.notify, r.orcpt});
  }
  const auto trace_size = std::min(parcel.trace_size, parcel.text.size());
  pickup.outbound_trace = parcel.text.substr(0, trace_size);
  pickup.content = parcel.text.substr(trace_size);
  auto& reverse = reverse_;
  try {
    const auto id = co_await net::run_blocking(
        store_pool_, [&reverse, &pickup] { return reverse.create_pickup(pickup); });
    co_return PickupOffer{id, std::move(pickup.token)};
  } catch (const std::exception& e) {
    spdlog::warn("pickup for message {} not recorded, sending it with DATA: {}", parcel.queue_id,
                 e.what());
  }
  co_return std::nullopt;
}

asio::awaitable<bool> StorePickupDesk::settle(const PickupOffer& offer, bool accepted) {
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
    spdlog::warn("pickup {} ({}): {} failed: {}", id, reverse::shown_token(offer.token),
                 accepted ? "confirming" : "cancelling", e.what());
  }
  co_return false;
}

}  // namespace maild::delivery
