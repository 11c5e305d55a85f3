// Where the SMTP client gets a token to send instead of the content (SOURCE,
// docs/source-get.md): the offer is recorded before SOURCE is sent (GET is
// answered from then on) and settled by the reply. The client sees only this
// interface; reverse/pickup_desk.hpp keeps the pickups in the store.
// Trust: the implementation is ours; tokens are secrets and never logged whole.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "maild/store/types.hpp"
#include "smtp/outbound.hpp"

namespace maild::smtp {

struct SourceOffer {
  store::PickupId id = 0;
  std::string token;  // a secret: shown_token() for logs
};

class SourceOffers {
 public:
  virtual ~SourceOffers() = default;
  // Records the pickup of `message` for its recipients at `recipients`
  // (indices), offered to `peer`, with a fresh token. Nothing when it cannot
  // be recorded: the message then goes by DATA.
  virtual boost::asio::awaitable<std::optional<SourceOffer>> offer(
      const OutboundMessage& message, const std::vector<std::size_t>& recipients,
      const std::string& peer) = 0;
  // The peer answered SOURCE: 250 confirms the pickup (the notice duty moves
  // to it), anything else cancels it. False when a confirmation failed.
  virtual boost::asio::awaitable<bool> settle(const SourceOffer& offer, bool accepted) = 0;
};

}  // namespace maild::smtp
