// DNS lookups for outbound delivery and SOURCE/GET callbacks: MX (RFC 5321
// 5.1 order, implicit MX, RFC 7505 null MX), A/AAAA and PTR, through c-ares
// driven by the Asio loop (its sockets watched by the reactor, its timeouts by
// a timer, all on one strand); no thread ever blocks on DNS.
// Talks to: the servers in [dns] servers (or /etc/resolv.conf), over UDP and
// TCP. Trust: answers are untrusted input. Names are checked (LDH/underscore
// labels, at most 253 octets, lower-cased) and dropped when bad; each answer
// yields at most max_mx_hosts / max_addresses / max_names entries; every
// lookup ends by [dns] timeout whatever the servers do.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"

namespace maild::dns {

// ok: the answer holds what was asked. no_such_domain (NXDOMAIN, or a name
// that is not a valid domain), no_data and null_mx are permanent; temporary
// covers SERVFAIL, REFUSED, timeouts, unreachable servers, malformed answers
// and a resolver shut down under the lookup.
enum class Outcome { ok, no_such_domain, no_data, null_mx, temporary };
const char* to_string(Outcome outcome);

struct MxHost {
  std::uint16_t preference = 0;
  std::string host;  // lower case, no trailing dot
  bool operator==(const MxHost&) const = default;
};

struct MxResult {
  Outcome outcome = Outcome::temporary;
  std::vector<MxHost> hosts;  // only with ok: by preference, equal ones shuffled
  std::string detail;         // c-ares' reason when not ok, for the log
};

struct AddressResult {
  Outcome outcome = Outcome::temporary;
  std::vector<IpAddress> addresses;  // only with ok: A first, then AAAA, in answer order
  std::string detail;
};

struct NamesResult {
  Outcome outcome = Outcome::temporary;
  std::vector<std::string> names;  // only with ok: lower case, no trailing dot
  std::string detail;
};

inline constexpr std::size_t max_mx_hosts = 32;
inline constexpr std::size_t max_addresses = 64;
inline constexpr std::size_t max_names = 16;

class Channel;  // c-ares stays out of this header

// One c-ares channel on a strand of `executor`. The awaitables may be used
// from any coroutine on any executor and resume on the caller's executor.
// [dns] timeout bounds each whole call (mx() with its implicit-MX fallback
// included); within it c-ares makes two rounds over the servers, the first
// try getting a third of the budget and the retry twice that.
// Destroying the Resolver cancels what is in flight: those lookups complete
// as temporary. Destroy it before its io_context; with servers that are not
// IP addresses the constructor throws std::invalid_argument.
class Resolver {
 public:
  Resolver(const config::DnsSettings& settings, const boost::asio::any_io_executor& executor);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The hosts to try for mail to `domain`. No MX but an A or AAAA record is
  // the implicit MX {0, domain}; a lone "." target is null_mx.
  boost::asio::awaitable<MxResult> mx(const std::string& domain);
  // A and AAAA records of `host` (asked at the same time).
  boost::asio::awaitable<AddressResult> addresses(const std::string& host);
  // PTR names of `address`, e.g. for FCrDNS.
  boost::asio::awaitable<NamesResult> ptr(const IpAddress& address);

 private:
  std::shared_ptr<Channel> channel_;
};

}  // namespace maild::dns
