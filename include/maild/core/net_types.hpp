// Listen endpoints and client networks as they appear in mail.conf.
// Trust: value types; parsing never touches a socket.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace maild {

// "host:port", "[v6]:port". The host is kept as written (an address or a name).
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};
std::optional<Endpoint> parse_endpoint(std::string_view text);

// An IPv4 or IPv6 address in network byte order; IPv4 is kept as v4-mapped IPv6.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool operator==(const IpAddress&) const = default;
  bool is_v4() const;
  std::string to_string() const;
};
std::optional<IpAddress> parse_ip(std::string_view text);

// "127.0.0.0/8", "::1/128", or a bare address (a host route).
struct Network {
  IpAddress base;
  unsigned prefix = 128;  // in IPv6 terms: an IPv4 /8 is stored as /104

  bool contains(const IpAddress& address) const;
  std::string to_string() const;
  bool operator==(const Network&) const = default;
};
std::optional<Network> parse_network(std::string_view text);

}  // namespace maild
