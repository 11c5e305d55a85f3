// Policy decisions of SOURCE/GET that need no I/O: which policy applies to
// unverified mail, when a pickup may still be served, and the
// Authentication-Results lines maild adds (SOURCE-GET.md 3-5).
// Trust: pickups and policies come from our store; hostnames from mail.conf.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "maild/config/settings.hpp"
#include "maild/store/types.hpp"

namespace maild::reverse {

// reject over tag over accept: a message for several domains gets the
// strictest of their policies, since one copy cannot be both refused and taken.
config::UnverifiedPolicy stricter(config::UnverifiedPolicy a, config::UnverifiedPolicy b);

// The policy a domain's row gives, else the mail.conf default.
config::UnverifiedPolicy effective(const store::DomainPolicy& row,
                                   const config::ReverseSettings& settings);

// Whether GET may send this pickup now (`now` in unix seconds): offered or
// awaiting within pickup_max_age, transferred within retain_after_fetch.
// Expired and purged pickups never are.
bool servable(const store::Pickup& pickup, std::int64_t now,
              const config::ReverseSettings& settings);

// "Authentication-Results: <hostname>; source-get=none\r\n" for mail that came
// by plain DATA to a domain whose policy is tag (RFC 8601 syntax).
std::string unverified_result(std::string_view hostname);

// "Authentication-Results: <hostname>; source-get=pass smtp.mailfrom=<domain>\r\n"
// for mail fetched by GET from the MX of `sender_domain`.
std::string verified_result(std::string_view hostname, std::string_view sender_domain);

}  // namespace maild::reverse
