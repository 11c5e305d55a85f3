// What the SOURCE/GET tables hold in the same form on every backend: tokens, the words of the
// per-domain policies, the counter names, and the checks of a new retrieval or pickup.
// Trust: what is checked here comes from the SMTP session, the courier or mailctl; a mistake is a
// StoreConflict whose text never contains the token.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "maild/store/types.hpp"

namespace maild::store {

// Every counter mailctl stats shows, 0 until counted.
inline constexpr std::array<const char*, 6> reverse_counter_names{
    counter::source_accepted, counter::get_fetched,    counter::get_failed,
    counter::get_expired,     counter::pickups_served, counter::pickups_expired};

// 32 lowercase hex characters.
bool valid_token(std::string_view token);

// The lowercased sender domain of a retrieval fit to record; StoreConflict for a bad token, an
// empty or domainless reverse-path, no recipient, or a recipient without a mailbox.
std::string checked_retrieval(const NewRetrieval& retrieval);
// StoreConflict for a bad token or no recipient.
void check_pickup(const NewPickup& pickup);

// The words the policy columns hold (what mailctl policy takes); nothing for NULL ("").
const char* policy_word(config::UnverifiedPolicy policy);
const char* policy_word(config::TlsPolicy policy);
std::optional<config::UnverifiedPolicy> unverified_policy_from(std::string_view word);
std::optional<config::TlsPolicy> tls_policy_from(std::string_view word);

}  // namespace maild::store
