// SOURCE/GET policy decisions; see policy.hpp. Pure.
#include "reverse/policy.hpp"

namespace maild::reverse {

namespace {
int rank(config::UnverifiedPolicy policy) {
  switch (policy) {
    case config::UnverifiedPolicy::accept:
      return 0;
    case config::UnverifiedPolicy::tag:
      return 1;
    case config::UnverifiedPolicy::reject:
      return 2;
  }
  return 0;
}
}  // namespace

config::UnverifiedPolicy stricter(config::UnverifiedPolicy a, config::UnverifiedPolicy b) {
  return rank(a) >= rank(b) ? a : b;
}

config::UnverifiedPolicy effective(const store::DomainPolicy& row,
                                   const config::ReverseSettings& settings) {
  return row.unverified.value_or(settings.unverified_policy);
}

bool servable(const store::Pickup& pickup, std::int64_t now,
              const config::ReverseSettings& settings) {
  switch (pickup.state) {
    case store::PickupState::offered:
    case store::PickupState::awaiting: {
      const store::UnixTime since =
          pickup.confirmed_at != store::UnixTime{} ? pickup.confirmed_at : pickup.created_at;
      return now < since.time_since_epoch().count() + settings.pickup_max_age.count();
    }
    case store::PickupState::transferred:
      return now < pickup.first_fetched_at.time_since_epoch().count() +
                       settings.retain_after_fetch.count();
    case store::PickupState::expired:
    case store::PickupState::purged:
      return false;
  }
  return false;
}

std::string unverified_result(std::string_view hostname) {
  return "Authentication-Results: " + std::string(hostname) + "; source-get=none\r\n";
}

std::string verified_result(std::string_view hostname, std::string_view sender_domain) {
  return "Authentication-Results: " + std::string(hostname) +
         "; source-get=pass smtp.mailfrom=" + std::string(sender_domain) + "\r\n";
}

}  // namespace maild::reverse
