// Endpoints, addresses and networks parsed from config text via inet_pton/inet_ntop.
// Trust: the text may be anything; every parser returns nullopt rather than guess.
#include "maild/core/net_types.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace maild {

namespace {

// IPv4 addresses live in the last 4 bytes of ::ffff:0:0/96.
constexpr std::size_t v4_offset = 12;
constexpr unsigned v4_prefix_offset = 96;
constexpr std::array<std::uint8_t, v4_offset> v4_mapped_prefix{0, 0, 0, 0, 0,    0,
                                                               0, 0, 0, 0, 0xff, 0xff};

std::optional<unsigned> parse_decimal(std::string_view text, unsigned max) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value > max) return std::nullopt;
  return value;
}

// A host name as DNS allows it in practice; addresses with ':' need brackets.
bool is_plain_host(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

IpAddress masked(IpAddress address, unsigned prefix) {
  for (std::size_t i = 0; i < address.bytes.size(); ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8;
    if (first_bit >= prefix) {
      address.bytes[i] = 0;
    } else if (prefix - first_bit < 8) {
      const unsigned kept_bits = prefix - first_bit;
      address.bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - kept_bits));
    }
  }
  return address;
}

}  // namespace

std::string Endpoint::to_string() const {
  const bool needs_brackets = host.find(':') != std::string::npos;
  return (needs_brackets ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const auto port = parse_decimal(text.substr(colon + 1), 65535);
  if (!port || *port == 0) return std::nullopt;

  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    const auto address = parse_ip(host);
    if (!address || address->is_v4()) return std::nullopt;  // brackets are for IPv6 only
  } else if (!is_plain_host(host)) {
    return std::nullopt;
  }
  return Endpoint{std::string(host), static_cast<std::uint16_t>(*port)};
}

bool IpAddress::is_v4() const {
  return std::equal(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), bytes.begin());
}

std::string IpAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  const bool ok = is_v4()
                      ? inet_ntop(AF_INET, bytes.data() + v4_offset, text, sizeof text) != nullptr
                      : inet_ntop(AF_INET6, bytes.data(), text, sizeof text) != nullptr;
  return ok ? std::string(text) : std::string();
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would cut the text short unseen.
  if (text.empty() || text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string c_text(text);
  IpAddress address;
  if (inet_pton(AF_INET, c_text.c_str(), address.bytes.data() + v4_offset) == 1) {
    std::copy(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), address.bytes.begin());
    return address;
  }
  if (inet_pton(AF_INET6, c_text.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

bool Network::contains(const IpAddress& address) const {
  return masked(address, prefix) == masked(base, prefix);
}

std::string Network::to_string() const {
  if (base.is_v4() && prefix >= v4_prefix_offset) {
    return base.to_string() + "/" + std::to_string(prefix - v4_prefix_offset);
  }
  return base.to_string() + "/" + std::to_string(prefix);
}

std::optional<Network> parse_network(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = parse_ip(text.substr(0, slash));
  if (!address) return std::nullopt;
  if (slash == std::string_view::npos) return Network{*address, 128};

  const bool v4 = address->is_v4() && text.substr(0, slash).find(':') == std::string_view::npos;
  const auto prefix = parse_decimal(text.substr(slash + 1), v4 ? 32 : 128);
  if (!prefix) return std::nullopt;
  const unsigned stored_prefix = v4 ? *prefix + v4_prefix_offset : *prefix;
  // Host bits past the prefix are dropped so that equal networks compare equal.
  return Network{masked(*address, stored_prefix), stored_prefix};
}

}  // namespace maild
