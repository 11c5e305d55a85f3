// The store conformance suite, outbound queue part: acceptance with outbound recipients,
// leases between owners and nodes, results, notices and administration, written against
// the interfaces only (the same StoreConformance fixture, so every backend runs it).
#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "conformance.hpp"
#include "maild/core/hash.hpp"

namespace maild::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using Kind = RecipientResult::Kind;
using std::chrono::seconds;

constexpr const char* local_trace = "Return-Path: <alice@example.com>\r\nReceived: by test\r\n";
constexpr const char* onward_trace = "Received: from client by mx.example.com; date\r\n";

UnixTime now() { return std::chrono::floor<seconds>(std::chrono::system_clock::now()); }

OutboundRecipient to(std::string address, unsigned notify = 0, std::string orcpt = "") {
  return {std::move(address), notify, std::move(orcpt)};
}

// A message from alice@example.com to these outbound recipients (and mailboxes, if any).
NewMessage outbound(std::vector<OutboundRecipient> recipients, std::string content,
                    std::vector<MailboxId> mailboxes = {}) {
  NewMessage message;
  message.reverse_path = "alice@example.com";
  message.mailboxes = std::move(mailboxes);
  message.trace = local_trace;
  message.content = std::move(content);
  message.outbound = std::move(recipients);
  message.outbound_trace = onward_trace;
  return message;
}

std::string body(const std::string& subject) {
  return "From: alice@example.com\r\nSubject: " + subject + "\r\n\r\nbody\r\n";
}

RecipientResult result(QueueRecipientId id, Kind kind, std::string reply = "250 2.0.0 ok",
                       bool notice = false) {
  RecipientResult r;
  r.id = id;
  r.kind = kind;
  r.reply = std::move(reply);
  r.remote_host = "mx.remote.test";
  r.notice = notice;
  return r;
}

RecipientResult deferred(QueueRecipientId id, UnixTime next_attempt) {
  RecipientResult r = result(id, Kind::deferred, "451 4.3.0 try later");
  r.next_attempt = next_attempt;
  return r;
}

std::vector<QueueRecipientId> ids_of(const std::vector<DeliveryJob>& jobs) {
  std::vector<QueueRecipientId> ids;
  for (const DeliveryJob& job : jobs) {
    for (const QueueRecipient& recipient : job.message.recipients) ids.push_back(recipient.id);
  }
  return ids;
}

std::vector<std::string> addresses_of(const std::vector<QueueRecipient>& recipients) {
  std::vector<std::string> addresses;
  for (const QueueRecipient& recipient : recipients) addresses.push_back(recipient.address);
  return addresses;
}

std::vector<QueueId> ids_of(const std::vector<QueuedMessage>& messages) {
  std::vector<QueueId> ids;
  for (const QueuedMessage& message : messages) ids.push_back(message.id);
  return ids;
}

const QueueRecipient& recipient_of(const QueuedMessage& message, const std::string& address) {
  for (const QueueRecipient& recipient : message.recipients) {
    if (recipient.address == address) return recipient;
  }
  throw std::runtime_error("no recipient " + address);
}

// ---- acceptance ---------------------------------------------------------------------------

TEST_P(StoreConformance, DeliverQueuesTheOutboundPartInTheSameCommit) {
  const MailboxId alice = add_mailbox("alice@example.com");
  NewMessage message =
      outbound({to("bob@remote.test", notify_failure | notify_delay, "rfc822;bob@remote.test"),
                to("carol@Other.TEST"), to("BOB@remote.test"), to("bob@REMOTE.test")},
               body("both"), {alice});
  message.envid = "QQ314159";
  message.ret = DsnReturn::headers;
  message.smtputf8 = true;
  message.eight_bit = true;

  const WriterStats before = store().writer_stats();
  const UnixTime start = now();
  const StoredMessage stored = mail().deliver(message);
  const WriterStats after = store().writer_stats();
  EXPECT_EQ(after.jobs - before.jobs, 1u);  // one job: one savepoint, one commit
  EXPECT_EQ(after.transactions - before.transactions, 1u);

  ASSERT_EQ(stored.deliveries.size(), 1u);
  ASSERT_TRUE(stored.queued);
  EXPECT_EQ(stored.content_hash, sha256(message.content).hex());

  const auto queued = queue_admin().get(*stored.queued);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->id, *stored.queued);
  EXPECT_EQ(queued->reverse_path, "alice@example.com");
  EXPECT_EQ(queued->envid, "QQ314159");
  EXPECT_EQ(queued->ret, DsnReturn::headers);
  EXPECT_TRUE(queued->smtputf8);
  EXPECT_TRUE(queued->eight_bit);
  EXPECT_EQ(queued->content_hash, stored.content_hash);
  EXPECT_EQ(queued->size, std::string(onward_trace).size() + message.content.size());
  EXPECT_GE(queued->queued_at, start);
  EXPECT_LE(queued->queued_at, now());

  // Duplicates (in any case) are queued once, with the first spelling; domains lowercase.
  ASSERT_EQ(queued->recipients.size(), 2u);
  const QueueRecipient& bob = queued->recipients[0];
  EXPECT_EQ(bob.address, "bob@remote.test");
  EXPECT_EQ(bob.domain, "remote.test");
  EXPECT_EQ(bob.notify, notify_failure | notify_delay);
  EXPECT_EQ(bob.orcpt, "rfc822;bob@remote.test");
  EXPECT_EQ(bob.state, RecipientState::queued);
  EXPECT_EQ(bob.attempts, 0);
  EXPECT_GE(bob.next_attempt, start);  // due at once
  EXPECT_LE(bob.next_attempt, now());
  EXPECT_EQ(bob.last_reply, "");
  EXPECT_EQ(bob.lease_owner, "");
  EXPECT_FALSE(bob.notice_owed);
  EXPECT_FALSE(bob.delay_warned);
  const QueueRecipient& carol = queued->recipients[1];
  EXPECT_EQ(carol.address, "carol@other.test");
  EXPECT_EQ(carol.domain, "other.test");
  EXPECT_EQ(carol.notify, 0u);
  EXPECT_EQ(carol.orcpt, "");
  EXPECT_NE(bob.id, carol.id);

  // What is sent onward: the outbound trace, then the content; locally the local trace.
  const auto text = delivery_queue().text(*stored.queued);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->trace, onward_trace);
  EXPECT_EQ(text->content, message.content);
  EXPECT_EQ(admin().get_mail(stored.deliveries[0])->trace, local_trace);

  const StoreStatus status = admin().status();
  EXPECT_EQ(status.messages, 1);  // one content row for both parts
  EXPECT_EQ(status.deliveries, 1);
  EXPECT_EQ(status.queued, 2);
}

TEST_P(StoreConformance, DeliverWithOnlyOutboundRecipients) {
  const StoredMessage stored = mail().deliver(outbound({to("bob@remote.test")}, body("relay")));
  EXPECT_TRUE(stored.deliveries.empty());
  ASSERT_TRUE(stored.queued);
  EXPECT_GT(stored.message_id, 0);
  EXPECT_EQ(queue_admin().get(*stored.queued).value().recipients.size(), 1u);

  // Local only: nothing queued.
  const MailboxId alice = add_mailbox("alice@example.com");
  NewMessage local = outbound({}, body("local"), {alice});
  EXPECT_FALSE(mail().deliver(local).queued);

  // The null sender may relay too (a notice to a remote sender).
  NewMessage bounce = outbound({to("bob@remote.test")}, body("bounce"));
  bounce.reverse_path = "";
  const StoredMessage notice = mail().deliver(bounce);
  EXPECT_EQ(queue_admin().get(notice.queued.value()).value().reverse_path, "");

  const StoreStatus status = admin().status();
  EXPECT_EQ(status.deliveries, 1);
  EXPECT_EQ(status.queued, 2);
}

TEST_P(StoreConformance, ContentIsSharedBetweenMailboxesAndTheQueue) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const StoredMessage local = mail().deliver(outbound({}, body("same"), {alice}));
  const StoredMessage relayed = mail().deliver(outbound({to("bob@remote.test")}, body("same")));
  EXPECT_EQ(relayed.message_id, local.message_id);
  EXPECT_EQ(relayed.content_hash, local.content_hash);
  EXPECT_EQ(admin().status().messages, 1);
  EXPECT_EQ(delivery_queue().text(relayed.queued.value()).value().content, body("same"));
}

TEST_P(StoreConformance, AFailedAcceptanceLeavesNoTraceOfEitherPart) {
  const MailboxId alice = add_mailbox("alice@example.com");
  // Nobody to deliver to.
  EXPECT_THROW(mail().deliver(outbound({}, body("nobody"))), StoreConflict);
  // A mailbox deleted since RCPT, with outbound recipients.
  EXPECT_THROW(
      mail().deliver(outbound({to("bob@remote.test")}, body("gone"), {alice, alice + 1000})),
      StoreConflict);
  // Outbound addresses that are not local@domain, with a good mailbox.
  for (const char* bad : {"no-at-sign", "@remote.test", "bob@"}) {
    EXPECT_THROW(mail().deliver(outbound({to("carol@remote.test"), to(bad)}, body(bad), {alice})),
                 StoreConflict)
        << bad;
  }
  // The same through the asynchronous path, in a group with a good message.
  std::promise<std::exception_ptr> failed;
  mail().deliver_async(
      outbound({to("bob@remote.test")}, body("async"), {alice + 1000}),
      [&](std::exception_ptr error, const StoredMessage&) { failed.set_value(error); });
  const StoredMessage good = mail().deliver(outbound({to("dave@remote.test")}, body("good")));
  EXPECT_TRUE(failed.get_future().get());

  const StoreStatus status = admin().status();
  EXPECT_EQ(status.deliveries, 0);
  EXPECT_EQ(status.messages, 1);  // the good message's content alone
  EXPECT_EQ(status.queued, 1);
  EXPECT_THAT(ids_of(queue_admin().list({})), ElementsAre(good.queued.value()));
  EXPECT_TRUE(maildrops().list(alice).empty());
}

// ---- leases -------------------------------------------------------------------------------

TEST_P(StoreConformance, ClaimLeasesRecipientsToOneOwnerAtATime) {
  const StoredMessage stored = mail().deliver(
      outbound({to("a@remote.test"), to("b@remote.test"), to("c@remote.test")}, body("lease")));
  const UnixTime start = now();
  const auto first = delivery_queue().claim("node-a/1", seconds(60), 2);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].message.recipients.size(), 2u);  // the limit counts recipients
  for (const QueueRecipient& recipient : first[0].message.recipients) {
    EXPECT_EQ(recipient.lease_owner, "node-a/1");
    EXPECT_GE(recipient.lease_expires, start + seconds{60});
    EXPECT_LE(recipient.lease_expires, now() + seconds{60});
  }
  const auto second = delivery_queue().claim("node-b/1", seconds(60), 10);
  ASSERT_EQ(ids_of(second).size(), 1u);  // only the one left
  EXPECT_EQ(second[0].message.recipients[0].address, "c@remote.test");
  // Everything is leased now: nobody gets anything, not even an owner again.
  EXPECT_TRUE(delivery_queue().claim("node-c/1", seconds(60), 10).empty());
  EXPECT_TRUE(delivery_queue().claim("node-a/1", seconds(60), 10).empty());
  EXPECT_TRUE(delivery_queue().claim("node-a/1", seconds(60), 0).empty());

  // The listing shows the leases.
  const auto queued = queue_admin().get(stored.queued.value()).value();
  EXPECT_EQ(recipient_of(queued, "a@remote.test").lease_owner, "node-a/1");
  EXPECT_EQ(recipient_of(queued, "c@remote.test").lease_owner, "node-b/1");
}

TEST_P(StoreConformance, ClaimRefusesWhatCannotBeALease) {
  mail().deliver(outbound({to("a@remote.test")}, body("refuse")));
  EXPECT_THROW(delivery_queue().claim("", seconds(60), 10), StoreConflict);
  EXPECT_THROW(delivery_queue().claim("owner", seconds(0), 10), StoreConflict);
  EXPECT_THROW(delivery_queue().claim("owner", seconds(-5), 10), StoreConflict);
  EXPECT_EQ(ids_of(delivery_queue().claim("owner", seconds(60), 10)).size(),
            1u);  // none of that took it
}

TEST_P(StoreConformance, ALapsedLeaseGoesToTheNextClaimer) {
  const StoredMessage stored = mail().deliver(outbound({to("a@remote.test")}, body("lapse")));
  const auto start = std::chrono::steady_clock::now();
  const auto crashed = delivery_queue().claim("crashed", seconds(1), 10);
  ASSERT_EQ(ids_of(crashed).size(), 1u);
  const QueueRecipientId id = ids_of(crashed)[0];
  EXPECT_TRUE(delivery_queue().claim("other", seconds(60), 10).empty());

  // The owner never comes back: its lease lapses by itself, after at least its length.
  std::vector<DeliveryJob> taken;
  while (taken.empty() && std::chrono::steady_clock::now() - start < seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    taken = delivery_queue().claim("other", seconds(60), 10);
  }
  ASSERT_EQ(ids_of(taken), std::vector<QueueRecipientId>{id});
  EXPECT_GE(std::chrono::steady_clock::now() - start, seconds(1));
  EXPECT_EQ(taken[0].message.recipients[0].attempts, 0);

  // The old owner's late result is skipped; the new owner's counts.
  EXPECT_FALSE(delivery_queue().renew("crashed", {id}, seconds(60)));
  EXPECT_EQ(delivery_queue().record("crashed", {result(id, Kind::delivered)}), 0u);
  EXPECT_EQ(queue_admin().get(stored.queued.value()).value().recipients[0].state,
            RecipientState::queued);
  EXPECT_EQ(delivery_queue().record("other", {result(id, Kind::delivered)}), 1u);
  EXPECT_FALSE(queue_admin().get(stored.queued.value()));
}

TEST_P(StoreConformance, RenewExtendsOnlyTheOwnersLeases) {
  mail().deliver(outbound({to("a@remote.test"), to("b@remote.test")}, body("renew")));
  const auto jobs = delivery_queue().claim("owner", seconds(60), 1);
  const auto mine = ids_of(jobs);
  ASSERT_EQ(mine.size(), 1u);
  const auto theirs = ids_of(delivery_queue().claim("other", seconds(60), 1));
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_TRUE(delivery_queue().renew("owner", mine, seconds(3600)));
  EXPECT_FALSE(delivery_queue().renew("owner", {mine[0], theirs[0]}, seconds(3600)));
  EXPECT_FALSE(delivery_queue().renew("owner", {mine[0] + theirs[0] + 1000}, seconds(3600)));
  EXPECT_TRUE(delivery_queue().renew("owner", {}, seconds(3600)));

  const auto queued = queue_admin().list({}).at(0);
  for (const QueueRecipient& recipient : queued.recipients) {
    if (recipient.id == mine[0]) {
      EXPECT_GE(recipient.lease_expires, now() + seconds{3000});
    } else {
      EXPECT_EQ(recipient.lease_owner, "other");
      EXPECT_LE(recipient.lease_expires, now() + seconds{60});
    }
  }
}

TEST_P(StoreConformance, ClaimGroupsPerMessageAndDomainOldestFirst) {
  const QueueId first =
      mail()
          .deliver(outbound({to("a@x.test"), to("b@y.test"), to("c@X.Test"), to("d@z.test")},
                            body("first")))
          .queued.value();
  const QueueId second = mail().deliver(outbound({to("e@x.test")}, body("second"))).queued.value();
  const auto jobs = delivery_queue().claim("owner", seconds(60), 100);
  ASSERT_EQ(jobs.size(), 4u);
  std::vector<std::pair<QueueId, std::string>> keys;
  for (const DeliveryJob& job : jobs) {
    keys.emplace_back(job.message.id, job.domain);
    for (const QueueRecipient& recipient : job.message.recipients) {
      EXPECT_EQ(recipient.domain, job.domain);
      EXPECT_EQ(recipient.lease_owner, "owner");
    }
    EXPECT_EQ(job.message.reverse_path, "alice@example.com");
    EXPECT_EQ(job.message.content_hash,
              sha256(body(job.message.id == first ? "first" : "second")).hex());
  }
  EXPECT_EQ(keys[0].first, first);  // the older message's jobs come first
  EXPECT_THAT(keys, UnorderedElementsAre(std::make_pair(first, std::string("x.test")),
                                         std::make_pair(first, std::string("y.test")),
                                         std::make_pair(first, std::string("z.test")),
                                         std::make_pair(second, std::string("x.test"))));
  EXPECT_EQ(keys[3].first, second);
  for (const DeliveryJob& job : jobs) {
    if (job.message.id == first && job.domain == "x.test") {
      EXPECT_THAT(addresses_of(job.message.recipients), ElementsAre("a@x.test", "c@x.test"));
    }
  }

  // A limit that splits a message: its first recipients now, the rest on the next claim.
  const QueueId third =
      mail()
          .deliver(outbound({to("f@x.test"), to("g@x.test"), to("h@x.test")}, body("third")))
          .queued.value();
  const auto part = delivery_queue().claim("owner", seconds(60), 2);
  ASSERT_EQ(part.size(), 1u);
  EXPECT_EQ(part[0].message.id, third);
  EXPECT_THAT(addresses_of(part[0].message.recipients), ElementsAre("f@x.test", "g@x.test"));
  const auto rest = delivery_queue().claim("owner", seconds(60), 2);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_THAT(addresses_of(rest[0].message.recipients), ElementsAre("h@x.test"));
}

// ---- results ------------------------------------------------------------------------------

TEST_P(StoreConformance, RecordAppliesEachKindOfResult) {
  const QueueId id =
      mail()
          .deliver(outbound({to("ok@remote.test"), to("bad@remote.test"), to("slow@remote.test")},
                            body("kinds")))
          .queued.value();
  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(jobs.size(), 1u);
  const auto& leased = jobs[0].message.recipients;
  ASSERT_EQ(leased.size(), 3u);
  const UnixTime later = now() + seconds{600};
  RecipientResult slow = deferred(leased[2].id, later);
  slow.notice = true;
  slow.delay_warned = true;
  EXPECT_EQ(
      delivery_queue().record(
          "owner", {result(leased[0].id, Kind::delivered),
                    result(leased[1].id, Kind::failed, "550 5.1.1 no such user", true), slow}),
      3u);

  const auto queued = queue_admin().get(id).value();
  const QueueRecipient& ok = recipient_of(queued, "ok@remote.test");
  EXPECT_EQ(ok.state, RecipientState::delivered);
  EXPECT_EQ(ok.attempts, 1);
  EXPECT_EQ(ok.last_reply, "250 2.0.0 ok");
  EXPECT_EQ(ok.remote_host, "mx.remote.test");
  EXPECT_EQ(ok.lease_owner, "");
  EXPECT_FALSE(ok.notice_owed);
  const QueueRecipient& bad = recipient_of(queued, "bad@remote.test");
  EXPECT_EQ(bad.state, RecipientState::failed);
  EXPECT_EQ(bad.attempts, 1);
  EXPECT_EQ(bad.last_reply, "550 5.1.1 no such user");
  EXPECT_EQ(bad.lease_owner, "");
  EXPECT_TRUE(bad.notice_owed);
  EXPECT_FALSE(bad.delay_warned);
  const QueueRecipient& late = recipient_of(queued, "slow@remote.test");
  EXPECT_EQ(late.state, RecipientState::queued);
  EXPECT_EQ(late.attempts, 1);
  EXPECT_EQ(late.next_attempt, later);
  EXPECT_EQ(late.last_reply, "451 4.3.0 try later");
  EXPECT_EQ(late.lease_owner, "");
  EXPECT_TRUE(late.notice_owed);
  EXPECT_TRUE(late.delay_warned);
  EXPECT_EQ(admin().status().queued, 1);

  // Deferred again: attempts count up, the flags stay set (they are only ever raised here).
  EXPECT_TRUE(delivery_queue().claim("owner", seconds(60), 10).empty());  // not due
  queue_admin().retry(id);
  const auto again = ids_of(delivery_queue().claim("owner", seconds(60), 10));
  ASSERT_EQ(again, std::vector<QueueRecipientId>{late.id});
  EXPECT_EQ(delivery_queue().record("owner", {deferred(late.id, later + seconds{600})}), 1u);
  const QueueRecipient after = recipient_of(queue_admin().get(id).value(), "slow@remote.test");
  EXPECT_EQ(after.attempts, 2);
  EXPECT_EQ(after.next_attempt, later + seconds{600});
  EXPECT_TRUE(after.notice_owed);
  EXPECT_TRUE(after.delay_warned);
}

TEST_P(StoreConformance, RecordSkipsWhatTheOwnerDoesNotHold) {
  const QueueId id =
      mail()
          .deliver(outbound({to("a@remote.test"), to("b@remote.test")}, body("owners")))
          .queued.value();
  const auto a = ids_of(delivery_queue().claim("owner", seconds(60), 1));
  ASSERT_EQ(a.size(), 1u);
  const auto all = queue_admin().get(id).value().recipients;
  const QueueRecipientId unleased = all[0].id == a[0] ? all[1].id : all[0].id;

  EXPECT_EQ(delivery_queue().record("intruder", {result(a[0], Kind::failed)}), 0u);
  EXPECT_EQ(delivery_queue().record("owner", {result(unleased, Kind::delivered)}),
            0u);  // never leased
  EXPECT_EQ(delivery_queue().record("owner", {result(a[0] + unleased + 1000, Kind::delivered)}),
            0u);
  auto queued = queue_admin().get(id).value();
  for (const QueueRecipient& recipient : queued.recipients) {
    EXPECT_EQ(recipient.state, RecipientState::queued);
    EXPECT_EQ(recipient.attempts, 0);
  }
  for (const QueueRecipient& recipient : queued.recipients) {
    EXPECT_EQ(recipient.lease_owner, recipient.id == a[0] ? "owner" : "");
  }

  // The owner's own result counts once: its lease is gone afterwards.
  EXPECT_EQ(delivery_queue().record("owner", {result(a[0], Kind::failed, "550 5.1.1 no", true),
                                              result(unleased, Kind::delivered)}),
            1u);
  EXPECT_EQ(delivery_queue().record("owner", {result(a[0], Kind::delivered)}), 0u);
  EXPECT_EQ(delivery_queue().record("owner", {}), 0u);
}

TEST_P(StoreConformance, AMessageLeavesTheQueueWhenNothingIsLeftToDo) {
  const QueueId done =
      mail()
          .deliver(outbound({to("a@remote.test"), to("b@other.test")}, body("done")))
          .queued.value();
  const QueueId owed =
      mail().deliver(outbound({to("c@remote.test", notify_success)}, body("owed"))).queued.value();
  const QueueRecipientId c = queue_admin().get(owed).value().recipients.at(0).id;
  const auto ids = ids_of(delivery_queue().claim("owner", seconds(60), 10));
  ASSERT_EQ(ids.size(), 3u);
  std::vector<RecipientResult> results;
  for (const QueueRecipientId id : ids) {
    // c asked for a success notice: the delivery engine says so with `notice`.
    results.push_back(result(id, Kind::delivered, "250 ok", id == c));
  }
  EXPECT_EQ(delivery_queue().record("owner", results), 3u);
  EXPECT_FALSE(queue_admin().get(done));
  EXPECT_FALSE(delivery_queue().text(done));
  ASSERT_TRUE(queue_admin().get(owed));  // its success notice is still to be sent
  EXPECT_THAT(ids_of(queue_admin().list({})), ElementsAre(owed));
  EXPECT_EQ(admin().status().queued, 0);
  EXPECT_FALSE(delivery_queue().next_due());
}

// ---- notices ------------------------------------------------------------------------------

TEST_P(StoreConformance, AFailureNoticeIsSentOnceAndTheMessageLeaves) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const QueueId id = mail()
                         .deliver(outbound({to("bob@remote.test"), to("carol@remote.test"),
                                            to("dave@remote.test")},
                                           body("doomed")))
                         .queued.value();
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  const auto leased = delivery_queue().claim("owner", seconds(60), 10).at(0).message.recipients;
  ASSERT_EQ(leased.size(), 3u);
  ASSERT_EQ(delivery_queue().record("owner",
                                    {result(leased[0].id, Kind::failed, "550 5.1.1 bob?", true),
                                     result(leased[1].id, Kind::failed, "550 5.1.1 carol?", true),
                                     result(leased[2].id, Kind::delivered)}),
            3u);

  const auto owed = delivery_queue().notices_owed(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].id, id);
  EXPECT_EQ(owed[0].reverse_path, "alice@example.com");
  EXPECT_THAT(addresses_of(owed[0].recipients),
              ElementsAre("bob@remote.test", "carol@remote.test"));
  EXPECT_EQ(owed[0].recipients[0].last_reply, "550 5.1.1 bob?");
  EXPECT_TRUE(delivery_queue().notices_owed(0).empty());

  NewMessage notice;
  notice.reverse_path = "";  // notices come from the null sender
  notice.mailboxes = {alice};
  notice.trace = "Return-Path: <>\r\n";
  notice.content = "Subject: Undelivered Mail Returned to Sender\r\n\r\nbob, carol\r\n";
  const StoredMessage stored =
      delivery_queue().send_notice({owed[0].recipients[0].id, owed[0].recipients[1].id}, notice);
  ASSERT_EQ(stored.deliveries.size(), 1u);
  EXPECT_FALSE(stored.queued);

  const auto drop = maildrops().list(alice);
  ASSERT_EQ(drop.size(), 1u);
  EXPECT_EQ(maildrops().text(alice, drop[0].id).value().content, notice.content);
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  EXPECT_FALSE(queue_admin().get(id));  // nothing queued and nothing owed: it left the queue
  EXPECT_TRUE(queue_admin().list({}).empty());
}

TEST_P(StoreConformance, LocalRecipientsOweOneSuccessNoticeFromAcceptance) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const MailboxId carol = add_mailbox("carol@example.com");
  NewMessage message = outbound({to("dave@remote.test")}, body("delivered here"), {bob, carol});
  message.envid = "env-1";
  message.ret = DsnReturn::headers;
  message.delivered = {to("bob@example.com", notify_success, "rfc822;Bob@example.com"),
                       to("carol@example.com", notify_success | notify_failure),
                       to("BOB@example.com", notify_success),    // the same one once
                       to("dave@remote.test", notify_success)};  // already outbound
  const StoredMessage stored = mail().deliver(message);
  EXPECT_EQ(stored.deliveries.size(), 2u);
  const QueueId id = stored.queued.value();

  // The outbound recipient is leased: the notice waits for its round.
  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(ids_of(jobs).size(), 1u);  // delivered recipients are never claimed
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  ASSERT_EQ(delivery_queue().record("owner", {result(ids_of(jobs)[0], Kind::delivered)}), 1u);

  const auto owed = delivery_queue().notices_owed(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].id, id);
  EXPECT_EQ(owed[0].envid, "env-1");
  EXPECT_EQ(owed[0].ret, DsnReturn::headers);
  ASSERT_THAT(addresses_of(owed[0].recipients),
              ElementsAre("bob@example.com", "carol@example.com"));
  const QueueRecipient& b = owed[0].recipients[0];
  EXPECT_EQ(b.state, RecipientState::delivered);
  EXPECT_EQ(b.notify, notify_success);
  EXPECT_EQ(b.orcpt, "rfc822;Bob@example.com");
  EXPECT_EQ(b.last_reply, local_delivery_reply);
  EXPECT_EQ(b.remote_host, "");
  EXPECT_EQ(b.domain, "example.com");
  EXPECT_EQ(delivery_queue().text(id).value().content, body("delivered here"));

  NewMessage notice;
  notice.mailboxes = {alice};
  notice.trace = "Return-Path: <>\r\n";
  notice.content = "Subject: Successful Mail Delivery Report\r\n\r\nbob, carol\r\n";
  delivery_queue().send_notice({owed[0].recipients[0].id, owed[0].recipients[1].id}, notice);
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  EXPECT_FALSE(queue_admin().get(id));
  EXPECT_EQ(maildrops().list(alice).size(), 1u);
}

TEST_P(StoreConformance, ALocalOnlyMessageIsQueuedOnlyForItsSuccessNotice) {
  const MailboxId bob = add_mailbox("bob@example.com");
  NewMessage message = outbound({}, body("local only"), {bob});
  message.outbound_trace = onward_trace;
  message.delivered = {to("bob@example.com", notify_success)};
  const QueueId id = mail().deliver(message).queued.value();
  EXPECT_EQ(delivery_queue().next_due(), std::nullopt);  // nothing to deliver
  const auto owed = delivery_queue().notices_owed(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].id, id);
  EXPECT_THAT(addresses_of(owed[0].recipients), ElementsAre("bob@example.com"));

  // The null sender is never owed a notice: no queue entry at all.
  NewMessage bounce = outbound({}, body("from nobody"), {bob});
  bounce.reverse_path = "";
  bounce.delivered = {to("bob@example.com", notify_success)};
  EXPECT_FALSE(mail().deliver(bounce).queued);
  EXPECT_EQ(delivery_queue().notices_owed(10).size(), 1u);
}

TEST_P(StoreConformance, ANoticeWaitsWhileASiblingRecipientIsLeased) {
  const QueueId id =
      mail().deliver(outbound({to("a@x.test"), to("b@y.test")}, body("siblings"))).queued.value();
  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(jobs.size(), 2u);  // two domains: two jobs, both leased
  const QueueRecipientId a = jobs[0].message.recipients.at(0).id;
  const QueueRecipientId b = jobs[1].message.recipients.at(0).id;

  ASSERT_EQ(delivery_queue().record("owner", {result(a, Kind::failed, "550 5.1.1 no", true)}), 1u);
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());  // b's attempt is still running

  ASSERT_EQ(delivery_queue().record("owner", {deferred(b, now() + seconds{3600})}), 1u);
  const auto owed = delivery_queue().notices_owed(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].id, id);
  ASSERT_EQ(owed[0].recipients.size(), 1u);
  EXPECT_EQ(owed[0].recipients[0].id, a);

  // The notice is sent; b is still queued, so the message stays.
  NewMessage notice = outbound({to("alice@remote.test")}, "Subject: failure\r\n\r\na\r\n");
  notice.reverse_path = "";
  const StoredMessage stored = delivery_queue().send_notice({a}, notice);
  ASSERT_TRUE(stored.queued);  // a notice to a remote sender is queued like any message
  EXPECT_EQ(queue_admin().get(*stored.queued).value().reverse_path, "");
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  const auto queued = queue_admin().get(id).value();
  EXPECT_FALSE(recipient_of(queued, "a@x.test").notice_owed);
  EXPECT_EQ(recipient_of(queued, "b@y.test").state, RecipientState::queued);
}

TEST_P(StoreConformance, ANoticeForNobodyIsDroppedAndMarkedSent) {
  const QueueId id =
      mail().deliver(outbound({to("bob@remote.test")}, body("no sender left"))).queued.value();
  const auto leased = ids_of(delivery_queue().claim("owner", seconds(60), 10));
  ASSERT_EQ(delivery_queue().record("owner", {result(leased.at(0), Kind::failed, "550 no", true)}),
            1u);
  ASSERT_EQ(delivery_queue().notices_owed(10).size(), 1u);

  NewMessage nobody;  // the sender's mailbox is gone: no mailbox, no outbound recipient
  nobody.content = "Subject: notice\r\n\r\n";
  const StoredMessage stored = delivery_queue().send_notice(leased, nobody);
  EXPECT_TRUE(stored.deliveries.empty());
  EXPECT_FALSE(stored.queued);
  EXPECT_TRUE(delivery_queue().notices_owed(10).empty());
  EXPECT_FALSE(queue_admin().get(id));      // finished: it left the queue
  EXPECT_EQ(admin().status().messages, 1);  // only the original's content, no notice stored
}

TEST_P(StoreConformance, AFailedNoticeMarksNothingSent) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const QueueId id =
      mail().deliver(outbound({to("bob@remote.test")}, body("retry notice"))).queued.value();
  const auto leased = ids_of(delivery_queue().claim("owner", seconds(60), 10));
  ASSERT_EQ(delivery_queue().record("owner", {result(leased.at(0), Kind::failed, "550 no", true)}),
            1u);

  NewMessage nowhere;
  nowhere.content = "Subject: notice\r\n\r\n";
  nowhere.mailboxes = {alice + 1000};
  EXPECT_THROW(delivery_queue().send_notice(leased, nowhere),
               StoreConflict);  // a mailbox that is gone
  nowhere.mailboxes = {alice};
  nowhere.outbound = {to("not an address")};
  EXPECT_THROW(delivery_queue().send_notice(leased, nowhere), StoreConflict);

  const auto owed = delivery_queue().notices_owed(10);
  ASSERT_EQ(owed.size(), 1u);
  EXPECT_EQ(owed[0].id, id);
  EXPECT_TRUE(maildrops().list(alice).empty());
  EXPECT_EQ(admin().status().messages, 1);

  // Ids that owe nothing are ignored; the notice is still accepted.
  nowhere.outbound.clear();
  EXPECT_EQ(delivery_queue().send_notice({leased[0] + 1000}, nowhere).deliveries.size(), 1u);
  EXPECT_EQ(delivery_queue().notices_owed(10).size(), 1u);
}

// ---- administration -----------------------------------------------------------------------

TEST_P(StoreConformance, RetryMakesQueuedRecipientsDueNow) {
  const QueueId first =
      mail()
          .deliver(outbound({to("a@remote.test"), to("b@remote.test")}, body("r1")))
          .queued.value();
  const QueueId second = mail().deliver(outbound({to("c@remote.test")}, body("r2"))).queued.value();
  const auto leased = delivery_queue().claim("owner", seconds(60), 10);
  const UnixTime later = now() + seconds{3600};
  std::vector<RecipientResult> results;
  for (const QueueRecipientId id : ids_of(leased)) results.push_back(deferred(id, later));
  ASSERT_EQ(delivery_queue().record("owner", results), 3u);
  EXPECT_TRUE(delivery_queue().claim("owner", seconds(60), 10).empty());
  EXPECT_EQ(delivery_queue().next_due(), later);

  EXPECT_EQ(queue_admin().retry(first), 2u);
  const auto due = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].message.id, first);
  for (const QueueRecipient& recipient : due[0].message.recipients) {
    EXPECT_LE(recipient.next_attempt, now());
    EXPECT_EQ(recipient.attempts, 1);  // a retry is not an attempt
  }

  EXPECT_EQ(queue_admin().retry(std::nullopt), 3u);  // every queued recipient, leased or not
  const auto rest = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].message.id, second);
  EXPECT_EQ(queue_admin().retry(second + first + 1000), 0u);
}

TEST_P(StoreConformance, RemoveTakesAMessageOutOfTheQueue) {
  const QueueId id = mail()
                         .deliver(outbound({to("a@remote.test"), to("b@remote.test")}, body("rm")))
                         .queued.value();
  const QueueId kept = mail().deliver(outbound({to("c@remote.test")}, body("kept"))).queued.value();
  const auto leased = ids_of(delivery_queue().claim("owner", seconds(60), 2));
  ASSERT_EQ(leased.size(), 2u);
  EXPECT_TRUE(queue_admin().remove(id));
  EXPECT_FALSE(queue_admin().remove(id));
  EXPECT_FALSE(queue_admin().get(id));
  EXPECT_FALSE(delivery_queue().text(id));
  EXPECT_EQ(delivery_queue().record("owner", {result(leased[0], Kind::delivered)}), 0u);  // gone
  EXPECT_THAT(ids_of(queue_admin().list({})), ElementsAre(kept));
  EXPECT_EQ(admin().status().queued, 1);
  EXPECT_EQ(delivery_queue().claim("owner", seconds(60), 10).at(0).message.id, kept);
}

TEST_P(StoreConformance, BounceFailsQueuedRecipientsAndOwesWhatTheSenderAskedFor) {
  const QueueId id =
      mail()
          .deliver(outbound(
              {to("plain@remote.test"), to("failure@remote.test", notify_failure),
               to("never@remote.test", notify_never),
               to("success@remote.test", notify_success | notify_delay), to("done@remote.test")},
              body("bounce")))
          .queued.value();
  // done@ is delivered first; a bounce leaves it alone.
  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  std::vector<RecipientResult> results;
  for (const QueueRecipientId rid : ids_of(jobs)) {
    const bool done = rid == recipient_of(queue_admin().get(id).value(), "done@remote.test").id;
    results.push_back(done ? result(rid, Kind::delivered) : deferred(rid, now() + seconds{3600}));
  }
  ASSERT_EQ(delivery_queue().record("owner", results), 5u);
  queue_admin().retry(id);
  ASSERT_EQ(ids_of(delivery_queue().claim("owner", seconds(60), 1)).size(),
            1u);  // one attempt in flight

  EXPECT_EQ(queue_admin().bounce(id, "5.0.0 bounced by the administrator"), 4u);
  const auto queued = queue_admin().get(id).value();
  for (const char* address :
       {"plain@remote.test", "failure@remote.test", "never@remote.test", "success@remote.test"}) {
    const QueueRecipient& recipient = recipient_of(queued, address);
    EXPECT_EQ(recipient.state, RecipientState::failed) << address;
    EXPECT_EQ(recipient.last_reply, "5.0.0 bounced by the administrator") << address;
    EXPECT_EQ(recipient.lease_owner, "") << address;  // the attempt in flight lost its lease
  }
  EXPECT_TRUE(recipient_of(queued, "plain@remote.test").notice_owed);
  EXPECT_TRUE(recipient_of(queued, "failure@remote.test").notice_owed);
  EXPECT_FALSE(recipient_of(queued, "never@remote.test").notice_owed);
  EXPECT_FALSE(recipient_of(queued, "success@remote.test").notice_owed);
  EXPECT_EQ(recipient_of(queued, "done@remote.test").state, RecipientState::delivered);
  EXPECT_EQ(recipient_of(queued, "done@remote.test").last_reply, "250 2.0.0 ok");
  EXPECT_THAT(addresses_of(delivery_queue().notices_owed(10).at(0).recipients),
              ElementsAre("plain@remote.test", "failure@remote.test"));
  EXPECT_EQ(queue_admin().bounce(id, "again"), 0u);
  EXPECT_EQ(queue_admin().bounce(id + 1000, "unknown"), 0u);
  EXPECT_EQ(admin().status().queued, 0);

  // The null sender is never owed a notice: its bounced message leaves the queue at once.
  NewMessage from_null = outbound({to("x@remote.test")}, body("null"));
  from_null.reverse_path = "";
  const QueueId null_id = mail().deliver(from_null).queued.value();
  EXPECT_EQ(queue_admin().bounce(null_id, "5.0.0 bounced by the administrator"), 1u);
  EXPECT_FALSE(queue_admin().get(null_id));
}

TEST_P(StoreConformance, ListFiltersByDomainStateAndAge) {
  const QueueId first =
      mail().deliver(outbound({to("a@x.test"), to("b@y.test")}, body("l1"))).queued.value();
  const QueueId second = mail().deliver(outbound({to("c@y.test")}, body("l2"))).queued.value();
  const QueueId third = mail().deliver(outbound({to("d@z.test")}, body("l3"))).queued.value();
  // a@x.test delivered, c@y.test failed (with a notice, so its message stays).
  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  std::vector<RecipientResult> results;
  for (const DeliveryJob& job : jobs) {
    for (const QueueRecipient& recipient : job.message.recipients) {
      if (recipient.address == "a@x.test") results.push_back(result(recipient.id, Kind::delivered));
      if (recipient.address == "c@y.test")
        results.push_back(result(recipient.id, Kind::failed, "550 no", true));
      if (recipient.address == "b@y.test" || recipient.address == "d@z.test")
        results.push_back(deferred(recipient.id, now() + seconds{600}));
    }
  }
  ASSERT_EQ(delivery_queue().record("owner", results), 4u);

  const auto all = queue_admin().list({});
  EXPECT_THAT(ids_of(all), ElementsAre(first, second, third));  // oldest first
  EXPECT_THAT(addresses_of(all[0].recipients), ElementsAre("a@x.test", "b@y.test"));  // all of them

  QueueFilter filter;
  filter.domain = "Y.TEST";
  EXPECT_THAT(ids_of(queue_admin().list(filter)), ElementsAre(first, second));
  filter.state = RecipientState::queued;  // a recipient at y.test that is still queued
  const auto queued_at_y = queue_admin().list(filter);
  EXPECT_THAT(ids_of(queued_at_y), ElementsAre(first));
  EXPECT_EQ(queued_at_y[0].recipients.size(), 2u);
  filter.domain = "x.test";
  EXPECT_TRUE(queue_admin().list(filter).empty());  // a@x.test is delivered: both must hold for one

  QueueFilter by_state;
  by_state.state = RecipientState::failed;
  EXPECT_THAT(ids_of(queue_admin().list(by_state)), ElementsAre(second));
  by_state.state = RecipientState::delivered;
  EXPECT_THAT(ids_of(queue_admin().list(by_state)), ElementsAre(first));

  QueueFilter limited;
  limited.limit = 2;
  EXPECT_THAT(ids_of(queue_admin().list(limited)), ElementsAre(first, second));
  limited.limit = 0;  // no limit
  EXPECT_EQ(queue_admin().list(limited).size(), 3u);

  QueueFilter old;
  old.queued_before = all[0].queued_at;  // strictly before: none
  EXPECT_TRUE(queue_admin().list(old).empty());
  old.queued_before = now() + seconds{10};
  EXPECT_EQ(queue_admin().list(old).size(), 3u);

  EXPECT_EQ(queue_admin().get(second).value().recipients.at(0).last_reply, "550 no");
  EXPECT_FALSE(queue_admin().get(third + 1000));
}

TEST_P(StoreConformance, ARecipientsStateNeverGoesBack) {
  const QueueId id =
      mail()
          .deliver(outbound({to("a@remote.test"), to("b@remote.test")}, body("grow")))
          .queued.value();
  const auto leased = ids_of(delivery_queue().claim("owner", seconds(60), 10));
  ASSERT_EQ(leased.size(), 2u);
  RecipientResult failed = result(leased[1], Kind::failed, "550 no", true);
  ASSERT_EQ(delivery_queue().record("owner", {result(leased[0], Kind::delivered), failed}), 2u);

  // Nothing brings a delivered or failed recipient back to queued, or moves it along.
  EXPECT_EQ(queue_admin().retry(id), 0u);
  EXPECT_TRUE(delivery_queue().claim("owner", seconds(60), 10).empty());
  EXPECT_EQ(queue_admin().bounce(id, "late bounce"), 0u);
  EXPECT_EQ(delivery_queue().record(
                "owner", {deferred(leased[0], now()), result(leased[1], Kind::delivered)}),
            0u);
  const auto queued = queue_admin().get(id).value();
  EXPECT_EQ(recipient_of(queued, "a@remote.test").state, RecipientState::delivered);
  EXPECT_EQ(recipient_of(queued, "a@remote.test").last_reply, "250 2.0.0 ok");
  EXPECT_EQ(recipient_of(queued, "b@remote.test").state, RecipientState::failed);
  EXPECT_EQ(recipient_of(queued, "b@remote.test").attempts, 1);
}

TEST_P(StoreConformance, NextDueIsTheEarliestQueuedAttempt) {
  EXPECT_FALSE(delivery_queue().next_due());
  const UnixTime start = now();
  mail().deliver(outbound({to("a@remote.test"), to("b@other.test")}, body("due")));
  const auto due = delivery_queue().next_due();
  ASSERT_TRUE(due);
  EXPECT_GE(*due, start);
  EXPECT_LE(*due, now());

  const auto jobs = delivery_queue().claim("owner", seconds(60), 10);
  ASSERT_EQ(jobs.size(), 2u);
  const UnixTime soon = now() + seconds{300}, late = now() + seconds{900};
  ASSERT_EQ(delivery_queue().record("owner", {deferred(jobs[0].message.recipients[0].id, late),
                                              deferred(jobs[1].message.recipients[0].id, soon)}),
            2u);
  EXPECT_EQ(delivery_queue().next_due(), soon);
  ASSERT_EQ(queue_admin().bounce(jobs[0].message.id, "gone"), 2u);
  EXPECT_FALSE(delivery_queue().next_due());  // failed recipients are never due
}

TEST_P(StoreConformance, TheQueueSurvivesReopening) {
  const StoredMessage stored = mail().deliver(
      outbound({to("a@remote.test", notify_failure, "rfc822;a@remote.test")}, body("durable")));
  const auto before = queue_admin().get(stored.queued.value()).value();
  reopen();
  const auto after = queue_admin().get(stored.queued.value());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->recipients.at(0).orcpt, "rfc822;a@remote.test");
  EXPECT_EQ(after->queued_at, before.queued_at);
  EXPECT_EQ(after->size, before.size);
  EXPECT_EQ(ids_of(delivery_queue().claim("owner", seconds(60), 10)).size(), 1u);
}

// ---- two nodes ----------------------------------------------------------------------------

TEST_P(StoreConformance, TwoNodesClaimingAtOnceNeverShareARecipient) {
  constexpr int messages = 30, per_message = 10;  // 300 recipients over 5 domains
  for (int m = 0; m < messages; ++m) {
    std::vector<OutboundRecipient> recipients;
    for (int r = 0; r < per_message; ++r) {
      recipients.push_back(
          to("r" + std::to_string(r) + "@d" + std::to_string((m + r) % 5) + ".test"));
    }
    mail().deliver(outbound(std::move(recipients), body("stress " + std::to_string(m))));
  }
  auto other_node = open(dir_.path());
  std::vector<Store*> nodes = {&store(), other_node.get()};

  constexpr int threads_per_node = 3;
  std::latch start(2 * threads_per_node);
  std::mutex mutex;
  std::map<QueueRecipientId, std::string> claimed_by;
  std::atomic<int> shared{0}, errors{0}, wrong_owner{0};
  std::atomic<std::size_t> recorded{0};
  std::vector<std::thread> workers;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int n = 0; n < 2; ++n) {
    for (int t = 0; t < threads_per_node; ++t) {
      workers.emplace_back([&, n, t] {
        const std::string owner = "node-" + std::to_string(n) + "/" + std::to_string(t);
        DeliveryQueue& queue = nodes[static_cast<std::size_t>(n)]->delivery_queue();
        start.arrive_and_wait();
        try {
          while (std::chrono::steady_clock::now() < deadline) {
            const auto jobs = queue.claim(owner, seconds(300), 7);
            if (jobs.empty()) break;  // everything is delivered or leased by someone else
            std::vector<RecipientResult> results;
            for (const DeliveryJob& job : jobs) {
              for (const QueueRecipient& recipient : job.message.recipients) {
                if (recipient.lease_owner != owner) ++wrong_owner;
                {
                  std::lock_guard lock(mutex);
                  if (!claimed_by.emplace(recipient.id, owner).second) ++shared;
                }
                results.push_back(result(recipient.id, Kind::delivered));
              }
            }
            recorded += queue.record(owner, results);
          }
        } catch (const std::exception& error) {
          ADD_FAILURE() << owner << ": " << error.what();
          ++errors;
        }
      });
    }
  }
  for (auto& worker : workers) worker.join();
  other_node->close();

  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(shared.load(), 0);
  EXPECT_EQ(wrong_owner.load(), 0);
  EXPECT_EQ(claimed_by.size(), static_cast<std::size_t>(messages * per_message));
  EXPECT_EQ(recorded.load(), static_cast<std::size_t>(messages * per_message));
  std::map<std::string, int> per_node;
  for (const auto& [id, owner] : claimed_by) ++per_node[owner.substr(0, owner.find('/'))];
  std::cout << "[ stats    ] recipients claimed per node:";
  for (const auto& [node, count] : per_node) std::cout << " " << node << "=" << count;
  std::cout << "\n";
  EXPECT_TRUE(queue_admin().list({}).empty());  // everything delivered: the queue is empty
  EXPECT_EQ(admin().status().queued, 0);
}

}  // namespace
}  // namespace maild::store::testing
