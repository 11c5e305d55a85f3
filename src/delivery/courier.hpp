// The courier: delivers parcels (one message for some recipients at one
// domain) to the domain's servers over SMTP and says what became of each
// recipient. It routes (route.hpp), connects, runs the SMTP client
// (smtp/client.hpp) over as few connections as it can, falls back from
// address to address and MX to MX, and limits connections per destination.
// Talks to: DNS, remote SMTP servers (untrusted; see smtp/client.hpp); the
// queue manager above it owns retries, bounces and the store.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/route.hpp"
#include "dns/resolver.hpp"
#include "maild/config/limits.hpp"
#include "maild/config/settings.hpp"
#include "net/session.hpp"
#include "smtp/client.hpp"
#include "smtp/outbound.hpp"
#include "smtp/source_offers.hpp"

namespace maild::delivery {

// A parcel and its outcomes are the SMTP client's own types.
using Parcel = smtp::OutboundMessage;
using Outcome = smtp::RecipientOutcome;

class Courier {
 public:
  // Told each parcel's outcomes (by its index) as soon as they are final, once
  // per parcel, and awaited before the next message goes out: true once they
  // are recorded; false when they could not be, and nothing more is sent.
  using Report =
      std::function<boost::asio::awaitable<bool>(std::size_t parcel, std::vector<Outcome>)>;

  // Reads [delivery] route_auth_file (throws std::runtime_error naming the
  // file and line when it is bad). `settings`, `resolver` and `pickups` must
  // outlive it; destroy it only when no deliver() is running any more (stop()
  // first). With `pickups` and [reverse] use_source, peers that offer SOURCE
  // get a token instead of the content.
  Courier(const config::Settings& settings, dns::Resolver& resolver,
          boost::asio::any_io_executor executor, smtp::SourceOffers* pickups = nullptr);
  ~Courier();
  Courier(const Courier&) = delete;
  Courier& operator=(const Courier&) = delete;

  // Delivers every parcel over as few connections as it can (several messages per
  // connection), never more than [delivery] per_destination connections at once to one
  // destination (route next hop, or the domain), waiting for a free slot within a deadline.
  // One Outcome per recipient of every parcel, in order; `report`, when given, hears
  // of each parcel's as soon as they are final. Never throws for remote trouble.
  boost::asio::awaitable<std::vector<Outcome>> deliver(const std::string& domain,
                                                       std::vector<Parcel>& parcels,
                                                       config::TlsPolicy tls, Report report = {});
  // Shutdown: cancels every connection; what was not finished comes back temporary.
  void stop();

  // Test hooks: shorter waits than RFC 5321's.
  void set_timeouts(const smtp::ClientTimeouts& timeouts) { timeouts_ = timeouts; }
  void set_slot_wait(Seconds wait) { slot_wait_ = wait; }

 private:
  class Slots;
  struct Problem;
  struct Batch;

  boost::asio::awaitable<std::vector<Outcome>> run(const std::string& domain,
                                                   std::vector<Parcel>& parcels,
                                                   config::TlsPolicy tls, const Report& report);
  boost::asio::awaitable<void> try_hops(const Destination& destination, const Hops& hops,
                                        Batch& batch, config::TlsPolicy tls, Problem& problem);
  boost::asio::awaitable<std::optional<smtp::SessionTrouble>> attempt(
      const Destination& destination, const Hop& hop, IpAddress address, Batch& batch,
      config::TlsPolicy tls, bool try_starttls);
  boost::asio::awaitable<bool> finish(Batch& batch, std::size_t parcel);

  const config::Settings& settings_;
  dns::Resolver& resolver_;
  boost::asio::any_io_executor executor_;
  smtp::SourceOffers* pickups_;  // null: always DATA
  RouteLogins logins_;
  Ourselves ourselves_;
  std::optional<boost::asio::ip::address> bind_address_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<Slots> slots_;
  net::SessionRegistry sessions_;
  std::atomic<bool> stopped_{false};
  smtp::ClientTimeouts timeouts_;
  Seconds slot_wait_ = limits::destination_slot_wait;
};

}  // namespace maild::delivery
