// SOURCE and GET in the SMTP server (SOURCE-GET.md 2-5), plugged into the
// session through its extension seam: SOURCE records a pending retrieval
// durably and only then answers 250 (the retrieval worker fetches the
// message later); GET sends a message we offered by SOURCE to an MX host of
// one of its recipient domains; and the checks of mail that came by plain
// DATA against the recipient domains' policy for unverified mail (accept,
// tag with Authentication-Results, or refuse at the end of the content).
// Talks to: the session (smtp/extension.hpp); the store on its worker pool
// (retrievals, pickups, domain policies); the DNS through dns::Resolver for
// GET's authorisation. Trust: the client is untrusted; tokens are secrets,
// shown shortened in every log line and transcript.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "smtp/extension.hpp"

namespace maild::dns {
class Resolver;
}
namespace maild::net {
class AuthThrottle;
}

namespace maild::reverse {

// How long the 550 to an unknown GET token waits: longer with each of the
// client's `failures` within the window, the longest from `max_unknown_tokens`
// ([reverse] max_unknown_tokens) on.
std::chrono::milliseconds unknown_token_delay(unsigned failures, unsigned max_unknown_tokens);

class SourceGet final : public smtp::Extension {
 public:
  // `unknown_tokens` counts GETs of unknown tokens per client address (they
  // slow its 550s down, never refuse a GET for a token that exists);
  // `resolver` may be null (only [reverse] trusted_peers may GET);
  // `retrieval_wakeup` (may be empty) tells the retrieval worker a SOURCE arrived.
  SourceGet(const config::Settings& settings, store::RetrievalIntake& intake,
            store::PickupWindow& pickups, store::DomainPolicies& policies,
            net::AuthThrottle& unknown_tokens, dns::Resolver* resolver,
            std::function<void()> retrieval_wakeup);

  std::vector<smtp::ExtensionVerb> verbs() const override;
  void keywords(const smtp::SessionView& session, std::vector<std::string>& out) const override;
  std::unique_ptr<smtp::ExtensionSession> open(const smtp::SessionView& session) const override;

  const config::Settings& settings() const { return settings_; }
  store::RetrievalIntake& intake() const { return intake_; }
  store::PickupWindow& pickups() const { return pickups_; }
  store::DomainPolicies& policies() const { return policies_; }
  net::AuthThrottle& unknown_tokens() const { return unknown_tokens_; }
  dns::Resolver* resolver() const { return resolver_; }
  void woke_retrievals() const {
    if (retrieval_wakeup_) retrieval_wakeup_();
  }

 private:
  const config::Settings& settings_;
  store::RetrievalIntake& intake_;   // SOURCE
  store::PickupWindow& pickups_;     // GET
  store::DomainPolicies& policies_;  // the policy for unverified mail
  net::AuthThrottle& unknown_tokens_;
  dns::Resolver* resolver_;
  std::function<void()> retrieval_wakeup_;
};

}  // namespace maild::reverse
