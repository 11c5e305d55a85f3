// The retrieval worker (SOURCE-GET.md 3, 4): fetches by GET what SOURCE
// announced. It takes due pending retrievals from the store by lease, groups
// them by sender domain, connects to that domain's MX hosts (one connection
// per group, MX fallback on connection trouble), sends one GET per token and
// stores each message as verified, or defers or fails it. Any number of maild
// nodes on one store run one each; leases keep two from fetching one token.
// Its loop, leases and worker slots are net::LeasedWorker's. Forged SOURCEs
// must not crowd out genuine ones (SOURCE-GET.md 6): groups start in turn
// across domains, no domain and no MX address holds more than [delivery]
// per_destination connections, a GET's content must arrive within [smtp]
// data_timeout, and non-public addresses are never connected to unless the
// administrator named them (fetch_address.hpp).
// Talks to: the store (on the store worker pool), DNS, and the sender
// domain's MX hosts (untrusted: see smtp/client.hpp; their content passes
// DATA's checks). Tokens are secrets: the log shows them shortened.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/route.hpp"
#include "dns/resolver.hpp"
#include "maild/config/limits.hpp"
#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "net/leased_worker.hpp"
#include "net/session.hpp"
#include "smtp/client.hpp"
#include "smtp/extension.hpp"

namespace maild::reverse {

// wake(): a SOURCE was accepted. stop(): connections are closed, what they
// did not finish is deferred (or left to its lease). idle(): every group has
// recorded its outcomes.
class Retriever final : public net::LeasedWorker {
 public:
  // `settings`, `retrievals`, `resolver` and `checks` must outlive it.
  // Concurrent callbacks (connections) are at most [delivery] workers. Every
  // fetched message passes each extension's on_fetched() check before it is
  // stored, as content that came by DATA passes on_content().
  Retriever(const config::Settings& settings, store::RetrievalQueue& retrievals,
            boost::asio::any_io_executor store_pool, dns::Resolver& resolver,
            boost::asio::any_io_executor io, const smtp::SessionExtensions& checks);
  ~Retriever() override;

  // The client's waits for a GET callback: RFC 5321's, but none longer than
  // [smtp] data_timeout, which also bounds a GET's whole content.
  static smtp::ClientTimeouts timeouts_for(const config::Settings& settings);
  // Test hook: shorter waits than RFC 5321's.
  void set_timeouts(const smtp::ClientTimeouts& timeouts) { timeouts_ = timeouts; }

 private:
  struct Group;
  class DomainTurns;
  class AddressShares;

  void on_start() override;
  boost::asio::awaitable<void> round() override;
  boost::asio::awaitable<bool> renew(const std::vector<Id>& ids) override;
  void on_stop() override;
  boost::asio::awaitable<void> claim_work();
  boost::asio::awaitable<void> purge();
  boost::asio::awaitable<void> fetch_group(std::string domain,
                                           std::vector<store::PendingRetrieval> retrievals);

  // On a strand of the group's own: DNS, connections, outcomes.
  boost::asio::awaitable<void> run_group(Group& group);
  boost::asio::awaitable<void> try_address(Group& group, const delivery::Hop& hop,
                                           const IpAddress& address, bool try_starttls);
  boost::asio::awaitable<void> accept(Group& group, std::size_t index, std::string& content,
                                      const std::string& remote_host);
  boost::asio::awaitable<void> permanent(Group& group, std::size_t index,
                                         const std::string& reason);
  boost::asio::awaitable<void> temporary(Group& group, std::size_t index,
                                         const std::string& reason);

  const config::Settings& settings_;
  store::RetrievalQueue& retrievals_;
  boost::asio::any_io_executor store_pool_;
  dns::Resolver& resolver_;
  const smtp::SessionExtensions& checks_;
  boost::asio::any_io_executor io_;
  std::optional<boost::asio::ip::address> bind_address_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  net::SessionRegistry sessions_;
  smtp::ClientTimeouts timeouts_;
  std::atomic<bool> stopped_{false};               // stop() arrived: read by the groups' strands
  std::unique_ptr<DomainTurns> domain_turns_;      // on the strand only
  std::unique_ptr<AddressShares> address_shares_;  // any group's strand

  // On the strand only.
  std::chrono::steady_clock::time_point last_purge_;
};

}  // namespace maild::reverse
