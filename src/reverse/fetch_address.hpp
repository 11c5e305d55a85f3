// Where the retrieval worker may connect (SOURCE-GET.md 6). The MX of a
// sender domain is whatever the domain's DNS says, and anyone can make up a
// domain: without this check a forged SOURCE would make maild connect to
// its own host or its private network. Only public addresses are fetched
// from, unless the administrator named the peer ([reverse] trusted_peers) or
// a route to it ([delivery] routes).
// Talks to: nothing. Trust: the address and host name come from DNS answers
// (untrusted); the settings are the administrator's.
#pragma once

#include <string>

#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"

namespace maild::reverse {

// False for loopback, unspecified, RFC 1918 private, CGNAT (100.64/10),
// link-local, unique-local (fc00::/7), multicast, documentation, benchmarking
// and other reserved ranges, of IPv4 (plain or v4-mapped) and IPv6.
bool is_public_address(const IpAddress& address);

// "" when the worker may connect to `address` (of MX `host`): a public
// address, one in [reverse] trusted_peers, or the next hop of a [delivery]
// routes entry (by address, or by host name as written there). Otherwise why
// not, for the log and the retrieval's outcome.
std::string refusal_to_fetch_from(const config::Settings& settings, const std::string& host,
                                  const IpAddress& address);

}  // namespace maild::reverse
