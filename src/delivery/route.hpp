// Where mail for a domain goes: a static route from [delivery] routes (exact
// domain, then "*"), else the domain's MX hosts (RFC 5321 5.1: preference
// order, implicit MX, RFC 7505 null MX), each host's addresses looked up when
// its turn comes. Also the smarthost logins of [delivery] route_auth_file.
// Talks to: DNS through dns::Resolver (answers untrusted, already checked
// there); the routes and the login file are the administrator's.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"
#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"
#include "net/session.hpp"
#include "smtp/client.hpp"

namespace maild::delivery {

// What routing decided for a domain before any lookup.
struct Destination {
  std::string domain;
  std::string key;  // what per_destination counts: a route's "host:port", or the domain
  std::optional<Endpoint> next_hop;  // a static route: this host, no MX lookup
};
Destination destination_for(const config::DeliverySettings& delivery, const std::string& domain);

// One host to try, with the port to connect to.
struct Hop {
  std::string host;  // a name, or an IP address (a route's next hop)
  std::uint16_t port = 25;
  bool operator==(const Hop&) const = default;
};

struct Hops {
  enum class Kind { ok, temporary, permanent };
  Kind kind = Kind::temporary;
  std::vector<Hop> hops;  // ok: in the order to try them
  std::string reply;      // otherwise: "556 5.1.10 ...", "550 5.1.2 ...", "451 4.4.3 ..."
};
// The route's next hop, or the domain's MX hosts on [delivery] smtp_port.
boost::asio::awaitable<Hops> find_hops(dns::Resolver& resolver, const Destination& destination,
                                       std::uint16_t smtp_port);

struct HopAddresses {
  std::vector<IpAddress> addresses;  // in the order to try them; empty when the lookup failed
  std::string problem;               // then: "451 4.4.3 ..." (always temporary)
};
// An IP address as is; a name's A and AAAA records (no MX lookup).
boost::asio::awaitable<HopAddresses> addresses_of(dns::Resolver& resolver, const Hop& hop);

// Opens `socket`, binds it to `bind` when there is one ([delivery] bind_address),
// and connects it to address:port within `timeout`. "" when connected, else
// why not ("Connection refused", "timed out", ...). Shared by outbound delivery
// and the GET callbacks, which connect alike.
boost::asio::awaitable<std::string> connect_from(
    boost::asio::ip::tcp::socket& socket, const std::optional<boost::asio::ip::address>& bind,
    const IpAddress& address, std::uint16_t port, Seconds timeout);
// A socket for one outgoing connection, registered with `sessions` so that a
// stop reaches it: until a session's Connection takes the socket over, a stop
// closes it. The registration ends with this object. Shared by outbound
// delivery and the GET callbacks.
class OutgoingSocket {
 public:
  OutgoingSocket(net::SessionRegistry& sessions, boost::asio::any_io_executor executor);
  ~OutgoingSocket();
  OutgoingSocket(const OutgoingSocket&) = delete;
  OutgoingSocket& operator=(const OutgoingSocket&) = delete;

  boost::asio::ip::tcp::socket socket;
  std::shared_ptr<net::SessionControl> control;

 private:
  net::RegisteredSession registration_;
};

// Whether a next hop is this maild itself, so that relaying to it would be a
// loop (RFC 5321 5.1: our own host among the MX hosts). A hop is ourselves
// when its name is [server] hostname, or when its address and port are one of
// our SMTP listeners; a wildcard listener (0.0.0.0, ::) stands for every
// loopback address and every address of this machine's interfaces.
class Ourselves {
 public:
  Ourselves(const config::Settings& settings, std::vector<IpAddress> local_addresses);
  // This machine's interface addresses (getifaddrs); empty when they cannot be read.
  static std::vector<IpAddress> interface_addresses();

  bool named(std::string_view host) const;
  bool reached_at(const IpAddress& address, std::uint16_t port) const;

 private:
  std::string hostname_;  // lower case, without a trailing dot
  std::vector<std::pair<IpAddress, std::uint16_t>> listeners_;
  std::vector<std::uint16_t> wildcard_ports_;
  std::vector<IpAddress> local_addresses_;
};

// [delivery] bind_address as an address; none when it is empty.
std::optional<boost::asio::ip::address> bind_address_of(const config::DeliverySettings& delivery);

// "mx.example.org[127.0.0.2]", with ":port" when the port is not 25.
std::string remote_host_text(const std::string& host, const IpAddress& address, std::uint16_t port);

// [delivery] route_auth_file: lines "HOST:PORT USER PASSWORD" ('#' starts a
// comment line), keyed by the route's next hop as written in routes.
class RouteLogins {
 public:
  RouteLogins() = default;
  // Throws std::runtime_error naming the file, the line and why; never the password.
  static RouteLogins parse(std::string_view text, const std::string& file_name);
  static RouteLogins load(const std::filesystem::path& file);  // empty path: no logins

  const smtp::Credentials* find(const Endpoint& next_hop) const;
  std::size_t size() const { return logins_.size(); }

 private:
  std::map<std::string, smtp::Credentials> logins_;  // by lower-case "host:port"
};

}  // namespace maild::delivery
