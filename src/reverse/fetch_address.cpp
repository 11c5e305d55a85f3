// Where the retrieval worker may connect; see fetch_address.hpp.
#include "reverse/fetch_address.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <vector>

namespace maild::reverse {

namespace {

// IANA's special-purpose registries (RFC 6890 and successors): none of these
// is a mail server on the Internet.
constexpr std::array<std::string_view, 24> non_public_networks{
    "0.0.0.0/8",        // "this network", 0.0.0.0 unspecified
    "10.0.0.0/8",       // RFC 1918
    "100.64.0.0/10",    // shared address space (carrier-grade NAT), RFC 6598
    "127.0.0.0/8",      // loopback
    "169.254.0.0/16",   // link-local
    "172.16.0.0/12",    // RFC 1918
    "192.0.0.0/24",     // IETF protocol assignments
    "192.0.2.0/24",     // documentation (TEST-NET-1)
    "192.168.0.0/16",   // RFC 1918
    "198.18.0.0/15",    // benchmarking
    "198.51.100.0/24",  // documentation (TEST-NET-2)
    "203.0.113.0/24",   // documentation (TEST-NET-3)
    "224.0.0.0/4",      // multicast
    "240.0.0.0/4",      // reserved, and 255.255.255.255 broadcast
    "::/128",           // unspecified
    "::1/128",          // loopback
    "100::/64",         // discard-only
    "2001:db8::/32",    // documentation
    "fc00::/7",         // unique-local
    "fe80::/10",        // link-local
    "fec0::/10",        // site-local (deprecated)
    "ff00::/8",         // multicast
    "::/96",            // IPv4-compatible (deprecated)
    "2001:2::/48",      // benchmarking
};

bool same_name(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

bool any_contains(const std::vector<Network>& networks, const IpAddress& address) {
  return std::any_of(networks.begin(), networks.end(),
                     [&address](const Network& network) { return network.contains(address); });
}

}  // namespace

bool is_public_address(const IpAddress& address) {
  static const std::vector<Network> networks = [] {
    std::vector<Network> parsed;
    for (const auto text : non_public_networks) parsed.push_back(*parse_network(text));
    return parsed;
  }();
  return !any_contains(networks, address);
}

std::string refusal_to_fetch_from(const config::Settings& settings, const std::string& host,
                                  const IpAddress& address) {
  if (is_public_address(address) || any_contains(settings.reverse.trusted_peers, address))
    return "";
  for (const auto& route : settings.delivery.routes) {
    const auto& next_hop = route.next_hop.host;
    if (const auto literal = parse_ip(next_hop); literal && *literal == address) return "";
    if (!host.empty() && same_name(next_hop, host)) return "";
  }
  return address.to_string() +
         " is not a public address, and neither [reverse] trusted_peers nor [delivery] routes "
         "name it";
}

}  // namespace maild::reverse
