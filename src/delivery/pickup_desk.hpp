// Pickups for SOURCE (docs/source-get.md): what the SMTP client needs to hand
// a peer a token instead of the content. The desk records the pickup before
// SOURCE is sent (GET is answered from then on) and settles it by the reply.
// Talks to: the store's ReverseStore, on the store worker pool, never on an
// I/O thread. Trust: the store is ours; tokens are secrets and never logged whole.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "delivery/parcel.hpp"
#include "maild/store/store.hpp"

namespace maild::delivery {

// A pickup offered but never confirmed (the reply to SOURCE was lost) is
// purged this long after it was created: the peer either fetched it by then
// or never will, and the queue still owns the message.
inline constexpr std::chrono::seconds offered_pickup_max_age = std::chrono::hours(1);

struct PickupOffer {
  store::PickupId id = 0;
  std::string token;  // a secret: reverse::shown_token() for logs
};

class PickupDesk {
 public:
  virtual ~PickupDesk() = default;
  // Records the pickup of `parcel` for its recipients at `recipients`
  // (indices), offered to `peer`, with a fresh token. Nothing when it cannot
  // be recorded: the message then goes by DATA.
  virtual boost::asio::awaitable<std::optional<PickupOffer>> offer(
      const Parcel& parcel, const std::vector<std::size_t>& recipients,
      const std::string& peer) = 0;
  // The peer answered SOURCE: 250 confirms the pickup (the notice duty moves
  // to it), anything else cancels it. False when a confirmation failed.
  virtual boost::asio::awaitable<bool> settle(const PickupOffer& offer, bool accepted) = 0;
};

// The desk over the store.
class StorePickupDesk final : public PickupDesk {
 public:
  StorePickupDesk(store::ReverseStore& reverse, boost::asio::any_io_executor store_pool);

  boost::asio::awaitable<std::optional<PickupOffer>> offer(
      const Parcel& parcel, const std::vector<std::size_t>& recipients,
      const std::string& peer) override;
  boost::asio::awaitable<bool> settle(const PickupOffer& offer, bool accepted) override;

 private:
  store::ReverseStore& reverse_;
  boost::asio::any_io_executor store_pool_;
};

}  // namespace maild::delivery
