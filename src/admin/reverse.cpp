// mailctl policy, stats and pickup: SOURCE/GET as an administrator sees it.
// Talks to the store's ReverseAdmin, DomainPolicies and PickupOffers; mail.conf gives the
// defaults that unset policies fall back to. Trust: domain names and addresses are checked here
// first.
#include <chrono>
#include <iostream>
#include <iterator>

#include "address.hpp"
#include "command.hpp"
#include "message_format.hpp"
#include "output.hpp"

namespace maild::admin {

namespace {

using config::TlsPolicy;
using config::UnverifiedPolicy;

std::string word(UnverifiedPolicy policy) {
  switch (policy) {
    case UnverifiedPolicy::accept:
      return "accept";
    case UnverifiedPolicy::tag:
      return "tag";
    case UnverifiedPolicy::reject:
      return "reject";
  }
  return "accept";
}

std::string word(TlsPolicy policy) { return policy == TlsPolicy::encrypt ? "encrypt" : "may"; }

// What an option asks for: nothing (keep), default (unset), or a value.
template <class Policy>
struct Change {
  bool given = false;
  std::optional<Policy> value;
};

Change<UnverifiedPolicy> unverified_change(const std::string& text) {
  if (text.empty()) return {};
  if (text == "default") return {true, std::nullopt};
  for (const auto policy :
       {UnverifiedPolicy::accept, UnverifiedPolicy::tag, UnverifiedPolicy::reject})
    if (text == word(policy)) return {true, policy};
  throw UsageError("--unverified is accept, tag, reject or default, not '" + text + "'");
}

Change<TlsPolicy> tls_change(const std::string& text) {
  if (text.empty()) return {};
  if (text == "default") return {true, std::nullopt};
  for (const auto policy : {TlsPolicy::may, TlsPolicy::encrypt})
    if (text == word(policy)) return {true, policy};
  throw UsageError("--tls is may, encrypt or default, not '" + text + "'");
}

// "reject", or "default (accept)" when mail.conf decides.
template <class Policy>
std::string shown(const std::optional<Policy>& own, Policy fallback) {
  return own ? word(*own) : "default (" + word(fallback) + ")";
}

Record policy_record(const store::DomainPolicy& policy, const config::Settings& settings) {
  return {{"domain", "domain", policy.domain},
          {"unverified", "", shown(policy.unverified, settings.reverse.unverified_policy)},
          {"", "unverified", policy.unverified ? word(*policy.unverified) : "default"},
          {"", "unverified_effective",
           word(policy.unverified.value_or(settings.reverse.unverified_policy))},
          {"tls", "", shown(policy.tls, settings.delivery.tls)},
          {"", "tls", policy.tls ? word(*policy.tls) : "default"},
          {"", "tls_effective", word(policy.tls.value_or(settings.delivery.tls))}};
}

// The counters in a fixed order with their human labels; others after them.
struct CounterLabel {
  const char* name;
  const char* label;
};
constexpr CounterLabel counter_labels[] = {
    {store::counter::source_accepted, "SOURCE accepted"},
    {store::counter::get_fetched, "GET fetched"},
    {store::counter::get_failed, "GET failed (forgery signals)"},
    {store::counter::get_expired, "GET given up (too old)"},
    {store::counter::pickups_served, "pickups served"},
    {store::counter::pickups_expired, "pickups expired"},
};

}  // namespace

void policy_set(Request& request) {
  const std::string domain = domain_name(request.args[0]);
  const auto unverified = unverified_change(request.option("unverified"));
  const auto tls = tls_change(request.option("tls"));
  if (!unverified.given && !tls.given)
    throw UsageError("policy set needs --unverified or --tls (see mailctl policy set --help)");
  store::DomainPolicy policy = request.store->policies().policy(domain);
  if (unverified.given) policy.unverified = unverified.value;
  if (tls.given) policy.tls = tls.value;
  request.store->reverse_admin().set_policy(policy);
  const auto& settings = *request.settings;
  if (request.out.json()) {
    request.out.record(policy_record(policy, settings));
  } else {
    request.out.confirm("policy for " + domain + ": unverified " +
                        shown(policy.unverified, settings.reverse.unverified_policy) + ", tls " +
                        shown(policy.tls, settings.delivery.tls));
  }
}

void policy_list(Request& request) {
  const auto& settings = *request.settings;
  Table table{{{"DOMAIN", "domain"}, {"UNVERIFIED", "unverified"}, {"TLS", "tls"}}, {}};
  for (const auto& policy : request.store->reverse_admin().list_policies()) {
    if (request.out.json()) {
      table.rows.push_back({policy.domain, policy.unverified ? word(*policy.unverified) : "default",
                            policy.tls ? word(*policy.tls) : "default"});
    } else {
      table.rows.push_back({policy.domain,
                            shown(policy.unverified, settings.reverse.unverified_policy),
                            shown(policy.tls, settings.delivery.tls)});
    }
  }
  request.out.table(table);
}

void policy_show(Request& request) {
  const std::string domain = domain_name(request.args[0]);
  request.out.record(policy_record(request.store->policies().policy(domain), *request.settings));
}

void stats(Request& request) {
  const store::ReverseStats stats = request.store->reverse_admin().stats();
  Record record;
  for (const auto& [name, label] : counter_labels)
    record.push_back({label, name, stats.counters.count(name) ? stats.counters.at(name) : 0});
  for (const auto& [name, value] : stats.counters) {
    const bool known = std::any_of(std::begin(counter_labels), std::end(counter_labels),
                                   [&](const CounterLabel& c) { return name == c.name; });
    if (!known) record.push_back({name, name, value});
  }
  record.push_back({"retrievals pending", "retrievals_pending", stats.retrievals_pending});
  record.push_back({"pickups waiting", "pickups_waiting", stats.pickups_waiting});
  request.out.record(record);
}

// Newest first. The token is a secret: shown by its first 8 characters, as in the log.
void retrieval_list(Request& request) {
  const auto limit = positive_number(request.option("limit"));
  if (!limit)
    throw UsageError("--limit wants a positive number, not '" + request.option("limit") + "'");
  Table table{{{"ID", "id", true},
               {"RECEIVED", "received_at"},
               {"TOKEN", "token"},
               {"FROM", "from"},
               {"CLIENT", "client_address"},
               {"STATE", "state"},
               {"ATTEMPTS", "attempts", true},
               {"LAST PROBLEM", "last_error"}},
              {}};
  const auto retrievals =
      request.store->reverse_admin().list_retrievals(static_cast<std::size_t>(*limit));
  for (const store::PendingRetrieval& r : retrievals) {
    const char* state = r.state == store::RetrievalState::pending   ? "pending"
                        : r.state == store::RetrievalState::fetched ? "fetched"
                                                                    : "failed";
    table.rows.push_back({static_cast<std::int64_t>(r.id), iso_time(r.received_at),
                          r.token.substr(0, 8) + "...", r.reverse_path, r.client_address,
                          std::string(state), static_cast<std::int64_t>(r.attempts),
                          r.last_error.empty() && !request.out.json() ? "-" : r.last_error});
  }
  request.out.table(table);
}

void pickup_inject(Request& request) {
  if (request.option("from").empty()) throw UsageError("pickup inject needs --from SENDER");
  if (request.option("to").empty()) throw UsageError("pickup inject needs --to ADDRESS");
  store::NewPickup pickup;
  pickup.token = request.args[0];
  pickup.reverse_path = mailbox_address(request.option("from"));
  std::string_view to = request.option("to");
  for (;;) {
    const auto comma = to.find(',');
    const std::string address = mailbox_address(to.substr(0, comma));
    pickup.recipients.push_back({address, std::string(domain_of(address)), 0, ""});
    if (comma == std::string_view::npos) break;
    to.remove_prefix(comma + 1);
  }
  std::cin >> std::noskipws;
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  if (input.empty()) throw RequestError("no message on standard input");
  pickup.content = to_crlf(input);
  pickup.arrival = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  auto& offers = request.store->pickup_offers();
  const store::PickupId id = offers.create_pickup(pickup);
  offers.confirm_pickup(id);  // as if the receiver had accepted SOURCE
  if (request.out.json()) {
    request.out.record({{"", "id", id}});
  } else {
    request.out.confirm("offered pickup " + std::to_string(id) + " for GET");
  }
}

}  // namespace maild::admin
