// Pickups for SOURCE (docs/source-get.md): the SMTP client's source offers
// (smtp/source_offers.hpp) kept in the store. The desk records the pickup
// before SOURCE is sent (GET is answered from then on) and settles it by the reply.
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

#include "maild/config/limits.hpp"
#include "maild/store/store.hpp"
#include "smtp/outbound.hpp"
#include "smtp/source_offers.hpp"

namespace maild::reverse {

// The desk over the store.
class StorePickupDesk final : public smtp::SourceOffers {
 public:
  StorePickupDesk(store::PickupOffers& pickups, boost::asio::any_io_executor store_pool);

  boost::asio::awaitable<std::optional<smtp::SourceOffer>> offer(
      const smtp::OutboundMessage& message, const std::vector<std::size_t>& recipients,
      const std::string& peer) override;
  boost::asio::awaitable<bool> settle(const smtp::SourceOffer& offer, bool accepted) override;

 private:
  store::PickupOffers& reverse_;
  boost::asio::any_io_executor store_pool_;
};

}  // namespace maild::reverse
