// The store conformance suite, SOURCE/GET part: pending retrievals, pickups,
// per-domain policy, counters and the verified mark, written against the
// interfaces only: these are StoreConformance tests, so every backend that
// instantiates the suite runs them (see conformance.hpp).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "conformance.hpp"
#include "maild/core/hash.hpp"

namespace maild::store::testing {
namespace {

using namespace std::chrono_literals;
using Outcome = RetrievalAdded::Outcome;
using config::TlsPolicy;
using config::UnverifiedPolicy;

constexpr const char* token_a = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a";
constexpr const char* token_b = "00112233445566778899aabbccddeeff";
constexpr const char* token_c = "ffeeddccbbaa99887766554433221100";

UnixTime now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

NewRetrieval retrieval(const std::string& token, MailboxId mailbox,
                       const std::string& sender = "alice@Origin.Test") {
  NewRetrieval r;
  r.token = token;
  r.reverse_path = sender;
  r.recipients = {{"bob@example.com", {mailbox}}};
  r.declared_size = 12345;
  r.client_address = "192.0.2.1";
  r.helo = "mx.origin.test";
  r.trace = "Return-Path: <" + sender + ">\r\nReceived: from mx.origin.test\r\n";
  return r;
}

NewPickup pickup(const std::string& token,
                 const std::string& content = "Subject: x\r\n\r\nhi\r\n") {
  NewPickup p;
  p.token = token;
  p.reverse_path = "alice@example.com";
  p.envid = "env-1";
  p.ret = DsnReturn::headers;
  p.arrival = UnixTime{1700000000s};
  p.peer = "mx.dest.test[192.0.2.9]";
  p.recipients = {{"bob@dest.test", "Dest.Test", notify_failure, "rfc822;bob@dest.test"},
                  {"carol@other.test", "other.test", 0, ""}};
  p.outbound_trace = "Received: from submitter by mx.example.com\r\n";
  p.content = content;
  return p;
}

NewMessage fetched(MailboxId mailbox, const std::string& content) {
  NewMessage m;
  m.reverse_path = "alice@origin.test";
  m.mailboxes = {mailbox};
  m.trace = "Authentication-Results: mx.example.com; source-get=pass\r\n";
  m.content = content;
  return m;
}

// ---- pending retrievals ------------------------------------------------------------------

TEST_P(StoreConformance, ReverseARetrievalIsRecordedWithItsEnvelopeAndCounted) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const MailboxId info = add_mailbox("info@example.com");
  NewRetrieval r = retrieval(token_a, bob);
  r.recipients.push_back({"team@example.com", {bob, info}});
  const RetrievalAdded added = store().retrieval_intake().add_retrieval(r, 100, 100);
  EXPECT_EQ(added.outcome, Outcome::added);
  EXPECT_GT(added.id, 0);

  const auto list = store().reverse_admin().list_retrievals(10);
  ASSERT_EQ(list.size(), 1u);
  const PendingRetrieval& p = list[0];
  EXPECT_EQ(p.id, added.id);
  EXPECT_EQ(p.token, token_a);
  EXPECT_EQ(p.reverse_path, "alice@Origin.Test");
  EXPECT_EQ(p.sender_domain, "origin.test");
  EXPECT_EQ(p.recipients, r.recipients);
  EXPECT_EQ(p.declared_size, std::optional<std::uint64_t>(12345));
  EXPECT_EQ(p.client_address, "192.0.2.1");
  EXPECT_EQ(p.helo, "mx.origin.test");
  EXPECT_EQ(p.trace, r.trace);
  EXPECT_EQ(p.state, RetrievalState::pending);
  EXPECT_EQ(p.attempts, 0);
  EXPECT_GT(p.received_at, UnixTime{});
  EXPECT_LE(p.next_attempt, now_seconds());  // due at once
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::source_accepted), 1);
  EXPECT_EQ(store().reverse_admin().stats().retrievals_pending, 1);

  reopen();
  EXPECT_EQ(store().reverse_admin().list_retrievals(10).at(0).recipients, r.recipients);  // durable
}

TEST_P(StoreConformance, ReverseNoDeclaredSizeIsKeptAsNone) {
  const MailboxId bob = add_mailbox("bob@example.com");
  NewRetrieval r = retrieval(token_a, bob);
  r.declared_size.reset();
  store().retrieval_intake().add_retrieval(r, 100, 100);
  EXPECT_FALSE(store().reverse_admin().list_retrievals(1).at(0).declared_size);
}

TEST_P(StoreConformance, ReverseTheSameSourceAgainIsTheSameRetrievalAndAnotherSenderIsRefused) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto first = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 100, 100);
  const auto again = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 100, 100);
  EXPECT_EQ(again.outcome, Outcome::already_added);
  EXPECT_EQ(again.id, first.id);
  const auto other = store().retrieval_intake().add_retrieval(
      retrieval(token_a, bob, "mallory@evil.test"), 100, 100);
  EXPECT_EQ(other.outcome, Outcome::token_taken);
  EXPECT_EQ(store().reverse_admin().list_retrievals(10).size(), 1u);
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::source_accepted), 1);
}

TEST_P(StoreConformance, ReversePendingRetrievalsPerSenderDomainAreBounded) {
  const MailboxId bob = add_mailbox("bob@example.com");
  EXPECT_EQ(store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 2, 100).outcome,
            Outcome::added);
  EXPECT_EQ(store()
                .retrieval_intake()
                .add_retrieval(retrieval(token_b, bob, "x@ORIGIN.test"), 2, 100)
                .outcome,
            Outcome::added);
  EXPECT_EQ(store().retrieval_intake().add_retrieval(retrieval(token_c, bob), 2, 100).outcome,
            Outcome::domain_full);
  // Another domain has its own allowance.
  EXPECT_EQ(store()
                .retrieval_intake()
                .add_retrieval(retrieval(token_c, bob, "y@elsewhere.test"), 2, 100)
                .outcome,
            Outcome::added);
}

// SOURCE-GET.md 6: one client address cannot fill every domain's allowance with forged SOURCEs.
TEST_P(StoreConformance, ReversePendingRetrievalsPerClientAddressAreBounded) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto add = [this](NewRetrieval r) {
    return store().retrieval_intake().add_retrieval(r, 100, 2).outcome;
  };
  EXPECT_EQ(add(retrieval(token_a, bob, "a@one.test")), Outcome::added);
  EXPECT_EQ(add(retrieval(token_b, bob, "b@two.test")), Outcome::added);
  // At the bound: the third from 192.0.2.1 is refused, whatever its domain.
  EXPECT_EQ(add(retrieval(token_c, bob, "c@three.test")), Outcome::client_full);
  // The same SOURCE again is still the same retrieval, not a new one.
  EXPECT_EQ(add(retrieval(token_a, bob, "a@one.test")), Outcome::already_added);
  // Another address has its own allowance.
  NewRetrieval other = retrieval(token_c, bob, "c@three.test");
  other.client_address = "192.0.2.2";
  EXPECT_EQ(add(other), Outcome::added);
  // A retrieval that ended no longer counts.
  const auto claimed = store().retrievals().claim_retrievals("node", 60s, 10);
  ASSERT_EQ(claimed.size(), 3u);
  for (const auto& r : claimed)
    if (r.client_address == "192.0.2.1" && r.sender_domain == "one.test")
      store().retrievals().fail_retrieval("node", r.id, RetrievalFailure::permanent,
                                          "550 5.1.0 unknown token");
  EXPECT_EQ(add(retrieval("0123456789abcdef0123456789abcdef", bob, "d@four.test")), Outcome::added);
  EXPECT_EQ(add(retrieval("fedcba9876543210fedcba9876543210", bob, "e@five.test")),
            Outcome::client_full);
}

TEST_P(StoreConformance, ReverseMalformedRetrievalsAreRefused) {
  const MailboxId bob = add_mailbox("bob@example.com");
  EXPECT_THROW(store().retrieval_intake().add_retrieval(
                   retrieval("5F0C2E8A9B1D4C7E8F6A3B2C1D0E9F8A", bob), 9, 9),
               StoreConflict);  // uppercase
  EXPECT_THROW(store().retrieval_intake().add_retrieval(retrieval("5f0c2e8a", bob), 9, 9),
               StoreConflict);
  EXPECT_THROW(store().retrieval_intake().add_retrieval(retrieval(token_a, bob, ""), 9, 9),
               StoreConflict);
  NewRetrieval none = retrieval(token_a, bob);
  none.recipients.clear();
  EXPECT_THROW(store().retrieval_intake().add_retrieval(none, 9, 9), StoreConflict);
  NewRetrieval empty = retrieval(token_a, bob);
  empty.recipients[0].mailboxes.clear();
  EXPECT_THROW(store().retrieval_intake().add_retrieval(empty, 9, 9), StoreConflict);
  EXPECT_TRUE(store().reverse_admin().list_retrievals(10).empty());
}

TEST_P(StoreConformance, ReverseClaimLeasesDueRetrievalsOnceGroupedBySenderDomain) {
  const MailboxId bob = add_mailbox("bob@example.com");
  store().retrieval_intake().add_retrieval(retrieval(token_a, bob, "a@zeta.test"), 9, 9);
  store().retrieval_intake().add_retrieval(retrieval(token_b, bob, "b@alpha.test"), 9, 9);
  store().retrieval_intake().add_retrieval(retrieval(token_c, bob, "c@zeta.test"), 9, 9);

  const auto claimed = store().retrievals().claim_retrievals("node1/worker", 60s, 10);
  ASSERT_EQ(claimed.size(), 3u);
  EXPECT_EQ(claimed[0].sender_domain, "alpha.test");
  EXPECT_EQ(claimed[1].sender_domain, "zeta.test");
  EXPECT_EQ(claimed[2].sender_domain, "zeta.test");
  for (const auto& r : claimed) {
    EXPECT_EQ(r.lease_owner, "node1/worker");
    EXPECT_GE(r.lease_expires, now_seconds() + 59s);
    EXPECT_EQ(r.recipients.size(), 1u);
  }
  // Under a live lease nobody else gets them, the owner neither.
  EXPECT_TRUE(store().retrievals().claim_retrievals("node2/worker", 60s, 10).empty());
  EXPECT_TRUE(store().retrievals().claim_retrievals("node1/worker", 60s, 10).empty());
  EXPECT_TRUE(
      store().retrievals().renew_retrievals("node1/worker", {claimed[0].id, claimed[1].id}, 120s));
  EXPECT_FALSE(store().retrievals().renew_retrievals("node2/worker", {claimed[0].id}, 120s));
  EXPECT_THROW(store().retrievals().claim_retrievals("", 60s, 10), StoreConflict);
}

TEST_P(StoreConformance, ReverseClaimHonoursTheLimit) {
  const MailboxId bob = add_mailbox("bob@example.com");
  store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  store().retrieval_intake().add_retrieval(retrieval(token_b, bob), 9, 9);
  EXPECT_EQ(store().retrievals().claim_retrievals("w", 60s, 1).size(), 1u);
  EXPECT_EQ(store().retrievals().claim_retrievals("w", 60s, 1).size(), 1u);
  EXPECT_TRUE(store().retrievals().claim_retrievals("w", 60s, 1).empty());
}

TEST_P(StoreConformance, ReverseAnExpiredLeaseCanBeClaimedByAnotherNode) {
  const MailboxId bob = add_mailbox("bob@example.com");
  store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  ASSERT_EQ(store().retrievals().claim_retrievals("dead-node", 0s, 10).size(), 1u);
  std::this_thread::sleep_for(1100ms);  // a lease holds through its whole second
  const auto taken = store().retrievals().claim_retrievals("live-node", 60s, 10);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].lease_owner, "live-node");
  // The dead node's late result is refused.
  EXPECT_FALSE(
      store().retrievals().defer_retrieval("dead-node", taken[0].id, now_seconds(), "late"));
}

TEST_P(StoreConformance, ReverseFinishDeliversVerifiedInOneCommit) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto added = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  const auto claimed = store().retrievals().claim_retrievals("w", 60s, 10);
  ASSERT_EQ(claimed.size(), 1u);

  EXPECT_THROW(
      store().retrievals().finish_retrieval("other", added.id, fetched(bob, "Subject: a\r\n\r\n")),
      StoreConflict);
  EXPECT_TRUE(admin().list_mail(0, std::nullopt).empty());

  const std::string content = "Subject: fetched\r\n\r\nby GET\r\n";
  const StoredMessage stored =
      store().retrievals().finish_retrieval("w", added.id, fetched(bob, content));
  ASSERT_EQ(stored.deliveries.size(), 1u);
  const auto mail = admin().get_mail(stored.deliveries[0]);
  ASSERT_TRUE(mail);
  EXPECT_TRUE(mail->summary.verified);
  EXPECT_EQ(mail->content, content);
  EXPECT_TRUE(admin().list_mail(0, std::nullopt).at(0).verified);

  const auto after = store().reverse_admin().list_retrievals(1).at(0);
  EXPECT_EQ(after.state, RetrievalState::fetched);
  EXPECT_EQ(after.attempts, 1);
  EXPECT_EQ(after.lease_owner, "");
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::get_fetched), 1);
  EXPECT_EQ(store().reverse_admin().stats().retrievals_pending, 0);
  // Finished is finished: no second delivery.
  EXPECT_THROW(store().retrievals().finish_retrieval("w", added.id, fetched(bob, content)),
               StoreConflict);
  EXPECT_TRUE(store().retrievals().claim_retrievals("w", 60s, 10).empty());
}

TEST_P(StoreConformance, ReverseAFailedDeliveryLeavesTheRetrievalPending) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto added = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  store().retrievals().claim_retrievals("w", 60s, 10);
  NewMessage bad = fetched(bob, "Subject: x\r\n\r\n");
  bad.mailboxes = {bob + 1000};  // no such mailbox: the delivery fails, and with it the finish
  EXPECT_ANY_THROW(store().retrievals().finish_retrieval("w", added.id, bad));
  const auto r = store().reverse_admin().list_retrievals(1).at(0);
  EXPECT_EQ(r.state, RetrievalState::pending);
  EXPECT_EQ(r.lease_owner, "w");
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::get_fetched), 0);
}

TEST_P(StoreConformance, ReverseDeferMakesARetrievalDueLater) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto added = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  store().retrievals().claim_retrievals("w", 60s, 10);
  const UnixTime later = now_seconds() + 3600s;
  EXPECT_TRUE(store().retrievals().defer_retrieval("w", added.id, later, "450 4.3.0 try later"));
  EXPECT_FALSE(
      store().retrievals().defer_retrieval("w", added.id, later, "twice"));  // lease released
  const auto r = store().reverse_admin().list_retrievals(1).at(0);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.next_attempt, later);
  EXPECT_EQ(r.last_error, "450 4.3.0 try later");
  EXPECT_EQ(r.lease_owner, "");
  EXPECT_EQ(store().retrievals().next_retrieval_due(), std::optional<UnixTime>(later));
  EXPECT_TRUE(store().retrievals().claim_retrievals("w", 60s, 10).empty());  // not due yet
}

TEST_P(StoreConformance, ReverseFailuresAreCountedByKindAndPurgedLater) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto forged = store().retrieval_intake().add_retrieval(retrieval(token_a, bob), 9, 9);
  const auto stale = store().retrieval_intake().add_retrieval(retrieval(token_b, bob), 9, 9);
  store().retrievals().claim_retrievals("w", 60s, 10);
  EXPECT_TRUE(store().retrievals().fail_retrieval("w", forged.id, RetrievalFailure::permanent,
                                                  "550 5.1.0 unknown token"));
  EXPECT_TRUE(store().retrievals().fail_retrieval("w", stale.id, RetrievalFailure::expired,
                                                  "older than 48h"));
  EXPECT_FALSE(
      store().retrievals().fail_retrieval("w", stale.id, RetrievalFailure::expired, "again"));
  const auto stats = store().reverse_admin().stats();
  EXPECT_EQ(stats.counters.at(counter::get_failed), 1);
  EXPECT_EQ(stats.counters.at(counter::get_expired), 1);
  EXPECT_EQ(stats.retrievals_pending, 0);
  EXPECT_FALSE(store().retrievals().next_retrieval_due());
  for (const auto& r : store().reverse_admin().list_retrievals(10))
    EXPECT_EQ(r.state, RetrievalState::failed);

  EXPECT_EQ(store().retrievals().purge_retrievals(now_seconds() - 60s), 0u);  // too recent
  EXPECT_EQ(store().retrievals().purge_retrievals(now_seconds() + 60s), 2u);
  EXPECT_TRUE(store().reverse_admin().list_retrievals(10).empty());
}

TEST_P(StoreConformance, ReverseDeletingAMailboxDropsItFromPendingRetrievals) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const MailboxId carol = add_mailbox("carol@example.com");
  NewRetrieval r = retrieval(token_a, bob);
  r.recipients.push_back({"carol@example.com", {carol}});
  store().retrieval_intake().add_retrieval(r, 9, 9);
  admin().delete_user("bob@example.com");
  const auto left = store().reverse_admin().list_retrievals(1).at(0).recipients;
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].address, "carol@example.com");
}

// ---- pickups -----------------------------------------------------------------------------

TEST_P(StoreConformance, ReverseAPickupIsOfferedWithItsEnvelopeAndText) {
  const NewPickup p = pickup(token_a);
  const PickupId id = store().pickup_offers().create_pickup(p);
  const auto found = store().pickup_window().find_pickup(token_a);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, id);
  EXPECT_EQ(found->token, token_a);
  EXPECT_EQ(found->state, PickupState::offered);
  EXPECT_EQ(found->reverse_path, "alice@example.com");
  EXPECT_EQ(found->envid, "env-1");
  EXPECT_EQ(found->ret, DsnReturn::headers);
  EXPECT_EQ(found->arrival, UnixTime{1700000000s});
  EXPECT_EQ(found->peer, "mx.dest.test[192.0.2.9]");
  ASSERT_EQ(found->recipients.size(), 2u);
  EXPECT_EQ(found->recipients[0], (PickupRecipient{"bob@dest.test", "dest.test", notify_failure,
                                                   "rfc822;bob@dest.test"}));
  EXPECT_EQ(found->recipients[1].domain, "other.test");
  EXPECT_EQ(found->content_hash, sha256(p.content).hex());
  EXPECT_EQ(found->size, p.outbound_trace.size() + p.content.size());
  EXPECT_GT(found->created_at, UnixTime{});
  EXPECT_EQ(found->confirmed_at, UnixTime{});
  EXPECT_EQ(found->first_fetched_at, UnixTime{});
  EXPECT_EQ(store().reverse_admin().stats().pickups_waiting, 1);

  const auto text = store().pickup_window().pickup_text(id);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->trace, p.outbound_trace);
  EXPECT_EQ(text->content, p.content);

  EXPECT_FALSE(store().pickup_window().find_pickup(token_b));
  EXPECT_FALSE(store().pickup_window().find_pickup("not a token"));
  EXPECT_THROW(store().pickup_offers().create_pickup(pickup(token_a)), StoreConflict);
  EXPECT_THROW(store().pickup_offers().create_pickup(pickup("XYZ")), StoreConflict);
}

TEST_P(StoreConformance, ReversePickupContentIsStoredOnceWithDeliveries) {
  const MailboxId bob = add_mailbox("bob@example.com");
  const std::string content = "Subject: shared\r\n\r\nonce\r\n";
  NewMessage local;
  local.reverse_path = "alice@example.com";
  local.mailboxes = {bob};
  local.trace = "Return-Path: <alice@example.com>\r\n";
  local.content = content;
  mail().deliver(local);
  store().pickup_offers().create_pickup(pickup(token_a, content));
  store().pickup_offers().create_pickup(pickup(token_b, content));
  EXPECT_EQ(admin().status().messages, 1);
}

TEST_P(StoreConformance, ReverseConfirmTransferAndRetention) {
  const PickupId id = store().pickup_offers().create_pickup(pickup(token_a));
  EXPECT_TRUE(store().pickup_offers().confirm_pickup(id));
  EXPECT_FALSE(store().pickup_offers().confirm_pickup(id));  // only once
  auto p = store().pickup_window().find_pickup(token_a);
  EXPECT_EQ(p->state, PickupState::awaiting);
  EXPECT_GT(p->confirmed_at, UnixTime{});
  EXPECT_FALSE(store().pickup_offers().cancel_pickup(id));  // too late to cancel

  EXPECT_TRUE(store().pickup_window().mark_transferred(id));
  p = store().pickup_window().find_pickup(token_a);
  EXPECT_EQ(p->state, PickupState::transferred);
  const UnixTime first = p->first_fetched_at;
  EXPECT_GT(first, UnixTime{});
  EXPECT_EQ(p->fetch_count, 1);
  // Fetched again within the retention (D crashed before its commit): still served.
  EXPECT_TRUE(store().pickup_window().pickup_text(id));
  EXPECT_TRUE(store().pickup_window().mark_transferred(id));
  p = store().pickup_window().find_pickup(token_a);
  EXPECT_EQ(p->fetch_count, 2);
  EXPECT_EQ(p->first_fetched_at, first);
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::pickups_served), 2);
  EXPECT_EQ(store().reverse_admin().stats().pickups_waiting, 0);
  // A transferred pickup never expires.
  EXPECT_TRUE(store().pickup_keeping().expired_pickups(now_seconds() + 3600s, 10).empty());
  EXPECT_FALSE(store().pickup_keeping().expire_pickup(id, std::nullopt));

  EXPECT_EQ(store().pickup_keeping().purge_pickups(first - 1s, UnixTime{}),
            0u);  // retention not over
  EXPECT_EQ(store().pickup_keeping().purge_pickups(first + 1s, UnixTime{}), 1u);
  p = store().pickup_window().find_pickup(token_a);
  EXPECT_EQ(p->state, PickupState::purged);
  EXPECT_EQ(p->content_hash, "");
  EXPECT_FALSE(store().pickup_window().pickup_text(id));
  EXPECT_FALSE(store().pickup_window().mark_transferred(id));
}

TEST_P(StoreConformance, ReverseAFetchBeforeTheConfirmationStillCounts) {
  // D may GET as soon as it answered SOURCE, before our confirmation commits.
  const PickupId id = store().pickup_offers().create_pickup(pickup(token_a));
  EXPECT_TRUE(store().pickup_window().mark_transferred(id));
  EXPECT_FALSE(store().pickup_offers().confirm_pickup(id));
  EXPECT_EQ(store().pickup_window().find_pickup(token_a)->state, PickupState::transferred);
}

TEST_P(StoreConformance, ReverseARefusedSourceCancelsThePickup) {
  const PickupId id = store().pickup_offers().create_pickup(pickup(token_a));
  EXPECT_TRUE(store().pickup_offers().cancel_pickup(id));
  EXPECT_EQ(store().pickup_window().find_pickup(token_a)->state, PickupState::purged);
  EXPECT_FALSE(store().pickup_window().pickup_text(id));
  EXPECT_FALSE(store().pickup_offers().confirm_pickup(id));
  EXPECT_FALSE(store().pickup_window().mark_transferred(id));
}

TEST_P(StoreConformance, ReverseAnUnfetchedPickupExpiresWithOneNotice) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const PickupId id = store().pickup_offers().create_pickup(pickup(token_a));
  store().pickup_offers().create_pickup(pickup(token_b));  // offered only: the queue still owns it
  store().pickup_offers().confirm_pickup(id);
  const UnixTime confirmed = store().pickup_window().find_pickup(token_a)->confirmed_at;
  EXPECT_TRUE(store().pickup_keeping().expired_pickups(confirmed, 10).empty());
  const auto due = store().pickup_keeping().expired_pickups(confirmed + 1s, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, id);
  EXPECT_EQ(due[0].recipients.size(), 2u);

  NewMessage notice;
  notice.mailboxes = {alice};
  notice.trace = "Return-Path: <>\r\n";
  notice.content = "Subject: Undelivered Mail\r\n\r\nnever fetched\r\n";
  EXPECT_TRUE(store().pickup_keeping().expire_pickup(id, notice));
  EXPECT_FALSE(store().pickup_keeping().expire_pickup(id, notice));  // one notice only
  EXPECT_EQ(admin().list_mail(0, std::nullopt).size(), 1u);
  EXPECT_EQ(store().pickup_window().find_pickup(token_a)->state, PickupState::expired);
  EXPECT_FALSE(store().pickup_window().pickup_text(id));  // an expired token is unknown to GET
  EXPECT_FALSE(store().pickup_window().mark_transferred(id));
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::pickups_expired), 1);

  // Purging takes the expired one and, past their age, the never confirmed ones.
  EXPECT_EQ(store().pickup_keeping().purge_pickups(UnixTime{}, UnixTime{}), 1u);
  EXPECT_EQ(store().pickup_keeping().purge_pickups(UnixTime{}, now_seconds() + 1s), 1u);
  EXPECT_EQ(store().pickup_window().find_pickup(token_b)->state, PickupState::purged);
}

TEST_P(StoreConformance, ReverseAFailingNoticeLeavesThePickupAwaiting) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const PickupId id = store().pickup_offers().create_pickup(pickup(token_a));
  store().pickup_offers().confirm_pickup(id);
  NewMessage notice;
  notice.mailboxes = {alice + 1000};  // no such mailbox
  notice.content = "x\r\n";
  EXPECT_ANY_THROW(store().pickup_keeping().expire_pickup(id, notice));
  EXPECT_EQ(store().pickup_window().find_pickup(token_a)->state, PickupState::awaiting);
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::pickups_expired), 0);
  EXPECT_TRUE(
      store().pickup_keeping().expire_pickup(id, std::nullopt));  // the null sender gets none
}

TEST_P(StoreConformance, ReverseListPickupsNewestFirst) {
  store().pickup_offers().create_pickup(pickup(token_a));
  store().pickup_offers().create_pickup(pickup(token_b, "other\r\n"));
  const auto list = store().reverse_admin().list_pickups(10);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].token, token_b);
  EXPECT_EQ(list[1].token, token_a);
  EXPECT_EQ(list[0].recipients.size(), 2u);
  EXPECT_EQ(store().reverse_admin().list_pickups(1).size(), 1u);
}

// ---- per-domain policy -------------------------------------------------------------------

TEST_P(StoreConformance, ReversePoliciesSetShowListAndReset) {
  EXPECT_EQ(store().policies().policy("example.com"), (DomainPolicy{"example.com", {}, {}}));
  store().reverse_admin().set_policy({"Example.COM", UnverifiedPolicy::reject, {}});
  store().reverse_admin().set_policy({"remote.test", {}, TlsPolicy::encrypt});
  store().reverse_admin().set_policy({"example.org", UnverifiedPolicy::tag, TlsPolicy::may});
  EXPECT_EQ(store().policies().policy("EXAMPLE.com"),
            (DomainPolicy{"example.com", UnverifiedPolicy::reject, {}}));
  EXPECT_EQ(store().policies().policy("remote.test").tls, TlsPolicy::encrypt);
  const auto list = store().reverse_admin().list_policies();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].domain, "example.com");
  EXPECT_EQ(list[1], (DomainPolicy{"example.org", UnverifiedPolicy::tag, TlsPolicy::may}));
  EXPECT_EQ(list[2].domain, "remote.test");

  store().reverse_admin().set_policy({"example.org", {}, TlsPolicy::may});  // unset one field
  EXPECT_EQ(store().policies().policy("example.org"),
            (DomainPolicy{"example.org", {}, TlsPolicy::may}));
  store().reverse_admin().set_policy({"example.org", {}, {}});  // both unset: the row goes
  EXPECT_EQ(store().reverse_admin().list_policies().size(), 2u);
}

TEST_P(StoreConformance, ReverseAnUnverifiedPolicyIsForOurDomainsOnly) {
  EXPECT_THROW(store().reverse_admin().set_policy({"remote.test", UnverifiedPolicy::reject, {}}),
               StoreConflict);
  EXPECT_THROW(store().reverse_admin().set_policy({"", {}, TlsPolicy::may}), StoreConflict);
  EXPECT_TRUE(store().reverse_admin().list_policies().empty());
}

TEST_P(StoreConformance, ReverseDeletingADomainDropsItsUnverifiedPolicy) {
  store().reverse_admin().set_policy({"example.org", UnverifiedPolicy::reject, TlsPolicy::encrypt});
  store().reverse_admin().set_policy({"example.com", UnverifiedPolicy::tag, {}});
  admin().delete_domain("example.org");
  admin().delete_domain("example.com");
  EXPECT_EQ(store().policies().policy("example.org"),
            (DomainPolicy{"example.org", {}, TlsPolicy::encrypt}));
  EXPECT_EQ(store().reverse_admin().list_policies().size(), 1u);
}

// ---- counters ----------------------------------------------------------------------------

TEST_P(StoreConformance, ReverseCountersStartAtZeroAndAddUp) {
  const auto fresh = store().reverse_admin().stats();
  for (const char* name : {counter::source_accepted, counter::get_fetched, counter::get_failed,
                           counter::get_expired, counter::pickups_served, counter::pickups_expired})
    EXPECT_EQ(fresh.counters.at(name), 0) << name;
  store().reverse_admin().add_counter(counter::get_failed, 2);
  store().reverse_admin().add_counter(counter::get_failed, 3);
  store().reverse_admin().add_counter("something_else", 1);
  const auto stats = store().reverse_admin().stats();
  EXPECT_EQ(stats.counters.at(counter::get_failed), 5);
  EXPECT_EQ(stats.counters.at("something_else"), 1);
  EXPECT_THROW(store().reverse_admin().add_counter("", 1), StoreConflict);
}

TEST_P(StoreConformance, ReverseCountersAddUpAcrossTwoHandlesOnOneStore) {
  // Two maild nodes share the store: their counts add up.
  auto second = open(dir_.path());
  store().reverse_admin().add_counter(counter::pickups_served, 1);
  second->reverse_admin().add_counter(counter::pickups_served, 1);
  second->close();
  EXPECT_EQ(store().reverse_admin().stats().counters.at(counter::pickups_served), 2);
}

TEST_P(StoreConformance, ReversePlainDeliveriesAreNotVerified) {
  const MailboxId bob = add_mailbox("bob@example.com");
  NewMessage m = fetched(bob, "Subject: plain\r\n\r\n");
  const auto stored = mail().deliver(m);
  EXPECT_FALSE(admin().get_mail(stored.deliveries.at(0))->summary.verified);
}

}  // namespace
}  // namespace maild::store::testing
