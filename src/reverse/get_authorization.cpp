// GET authorisation by DNS; see get_authorization.hpp.
#include "reverse/get_authorization.hpp"

#include <algorithm>

#include "dns/resolver.hpp"

namespace maild::reverse {

boost::asio::awaitable<Authorization> authorize_get(dns::Resolver* resolver,
                                                    const std::vector<Network>& trusted_peers,
                                                    const std::vector<std::string>& domains,
                                                    const IpAddress& client) {
  const bool trusted = std::any_of(trusted_peers.begin(), trusted_peers.end(),
                                   [&](const Network& n) { return n.contains(client); });
  if (trusted) co_return Authorization{Authorization::Verdict::granted, "trusted peer", ""};
  if (resolver == nullptr)
    co_return Authorization{Authorization::Verdict::unknown, "no resolver for the MX check", ""};

  std::vector<std::string> distinct;
  for (const auto& domain : domains) {
    if (std::find(distinct.begin(), distinct.end(), domain) == distinct.end())
      distinct.push_back(domain);
  }
  if (distinct.size() > authorization_max_domains) distinct.resize(authorization_max_domains);

  std::size_t lookups = 0;
  std::string temporary;  // the first temporary failure, if any
  for (const auto& domain : distinct) {
    if (++lookups > authorization_max_lookups) break;
    const dns::MxResult mx = co_await resolver->mx(domain);
    if (mx.outcome == dns::Outcome::temporary) {
      if (temporary.empty()) temporary = "MX of " + domain + ": " + mx.detail;
      continue;
    }
    if (mx.outcome != dns::Outcome::ok) continue;  // no such domain, no data, null MX
    std::size_t hosts = 0;
    for (const auto& host : mx.hosts) {
      if (++hosts > authorization_max_hosts || ++lookups > authorization_max_lookups) break;
      const dns::AddressResult found = co_await resolver->addresses(host.host);
      if (found.outcome == dns::Outcome::temporary) {
        if (temporary.empty()) temporary = "address of " + host.host + ": " + found.detail;
        continue;
      }
      if (std::find(found.addresses.begin(), found.addresses.end(), client) !=
          found.addresses.end())
        co_return Authorization{Authorization::Verdict::granted,
                                "MX " + host.host + " of " + domain, domain};
    }
  }
  if (!temporary.empty())
    co_return Authorization{Authorization::Verdict::unknown, "DNS failed: " + temporary, ""};
  co_return Authorization{Authorization::Verdict::refused,
                          "not an MX host of the recipient domains", ""};
}

}  // namespace maild::reverse
