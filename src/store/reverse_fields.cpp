// The SOURCE/GET values every backend stores alike (see reverse_fields.hpp).
// Trust: tokens and envelopes come from the session, the courier or mailctl and are checked here.
#include "store/reverse_fields.hpp"

#include <algorithm>

#include "store/addressing.hpp"

namespace maild::store {

bool valid_token(std::string_view token) {
  return token.size() == 32 && std::all_of(token.begin(), token.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

namespace {

void require_token(std::string_view token) {
  if (!valid_token(token)) throw StoreConflict("a token is 32 lowercase hex characters");
}

}  // namespace

std::string checked_retrieval(const NewRetrieval& retrieval) {
  require_token(retrieval.token);
  const auto split = split_address(retrieval.reverse_path);
  if (!split || split->local.empty())
    throw StoreConflict("a retrieval needs a reverse-path (local@domain)");
  if (retrieval.recipients.empty()) throw StoreConflict("a retrieval needs a recipient");
  for (const auto& recipient : retrieval.recipients) {
    if (recipient.mailboxes.empty()) throw StoreConflict("a retrieval recipient needs a mailbox");
  }
  return split->domain;
}

void check_pickup(const NewPickup& pickup) {
  require_token(pickup.token);
  if (pickup.recipients.empty()) throw StoreConflict("a pickup needs a recipient");
}

const char* policy_word(config::UnverifiedPolicy policy) {
  switch (policy) {
    case config::UnverifiedPolicy::accept:
      return "accept";
    case config::UnverifiedPolicy::tag:
      return "tag";
    case config::UnverifiedPolicy::reject:
      return "reject";
  }
  return "accept";
}

const char* policy_word(config::TlsPolicy policy) {
  return policy == config::TlsPolicy::encrypt ? "encrypt" : "may";
}

std::optional<config::UnverifiedPolicy> unverified_policy_from(std::string_view word) {
  if (word == "accept") return config::UnverifiedPolicy::accept;
  if (word == "tag") return config::UnverifiedPolicy::tag;
  if (word == "reject") return config::UnverifiedPolicy::reject;
  return std::nullopt;
}

std::optional<config::TlsPolicy> tls_policy_from(std::string_view word) {
  if (word == "may") return config::TlsPolicy::may;
  if (word == "encrypt") return config::TlsPolicy::encrypt;
  return std::nullopt;
}

}  // namespace maild::store
