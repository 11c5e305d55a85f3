// Who may fetch a pickup by GET (SOURCE-GET.md 3): only an MX host (or
// implicit MX) of one of the pickup's recipient domains, checked by DNS when
// the GET arrives, or a peer listed in [reverse] trusted_peers.
// Talks to: the DNS through dns::Resolver. Trust: DNS answers are untrusted
// input; they can only grant what the recipient domains' own records say, and
// a failed lookup never grants anything.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "maild/core/net_types.hpp"

namespace maild::dns {
class Resolver;
}

namespace maild::reverse {

// Bounds on the work one GET can cause: domains checked, MX hosts per domain,
// and lookups in all (each lookup is bounded by [dns] timeout).
inline constexpr std::size_t authorization_max_domains = 10;
inline constexpr std::size_t authorization_max_hosts = 10;
inline constexpr std::size_t authorization_max_lookups = 24;

struct Authorization {
  enum class Verdict {
    granted,  // a trusted peer, or an address of an MX host of a recipient domain
    refused,  // every check answered, none matched: 550 5.7.1
    unknown,  // a lookup failed temporarily (or no resolver) and none matched: 450 4.3.0
  };
  Verdict verdict = Verdict::unknown;
  std::string detail;  // for the log: which MX matched, or why not
  std::string domain;  // granted by DNS: the recipient domain whose MX the client is
};

// `domains`: the pickup's recipient domains (lower case, duplicates allowed).
// `resolver` may be null (no DNS configured): then only trusted peers pass.
boost::asio::awaitable<Authorization> authorize_get(dns::Resolver* resolver,
                                                    const std::vector<Network>& trusted_peers,
                                                    const std::vector<std::string>& domains,
                                                    const IpAddress& client);

}  // namespace maild::reverse
