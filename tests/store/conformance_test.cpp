// The store conformance suite: behaviour every backend must show, written against the
// interfaces only. Backend specifics belong in <backend>_store_test.cpp.
#include "conformance.hpp"

#include <gmock/gmock.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <iostream>
#include <latch>
#include <mutex>
#include <set>
#include <thread>

#include "maild/core/hash.hpp"

namespace maild::store::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "maild-store-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void StoreConformance::SetUp() {
  store_ = open(dir_.path());
  store_->migrate();
  admin().add_domain("example.com");
  admin().add_domain("example.org");
}

void StoreConformance::TearDown() { close_store(); }

void StoreConformance::reopen() {
  close_store();
  store_ = open(dir_.path());
}

void StoreConformance::close_store() {
  if (store_) store_->close();
  store_.reset();
}

MailboxId StoreConformance::add_mailbox(const std::string& address) {
  admin().add_user(address, "$y$j9T$notarealhash");
  auto resolution = directory().resolve(address);
  EXPECT_EQ(resolution.kind, Resolution::Kind::mailboxes);
  return resolution.mailboxes.at(0);
}

namespace {

using Kind = Resolution::Kind;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr const char* trace =
    "Return-Path: <sender@remote.test>\r\n"
    "Received: from remote.test by mx.example.com; Mon, 1 Jan 2024 00:00:00 +0000\r\n";

std::string content_with(const std::string& subject, const std::string& body) {
  return "From: sender@remote.test\r\nSubject: " + subject + "\r\n\r\n" + body + "\r\n";
}

NewMessage message_to(std::vector<MailboxId> mailboxes, std::string content) {
  NewMessage message;
  message.reverse_path = "sender@remote.test";
  message.mailboxes = std::move(mailboxes);
  message.trace = trace;
  message.content = std::move(content);
  return message;
}

// ---- schema -------------------------------------------------------------------------------

TEST_P(StoreConformance, NewStoreIsAtVersionZeroAndMigrates) {
  TempDir other;
  auto fresh = open(other.path());
  EXPECT_EQ(fresh->schema_version(), 0);
  ASSERT_GE(fresh->latest_schema_version(), 1);
  fresh->migrate();
  EXPECT_EQ(fresh->schema_version(), fresh->latest_schema_version());
  fresh->migrate();  // nothing left to do: a no-op, not an error
  EXPECT_EQ(fresh->schema_version(), fresh->latest_schema_version());
  fresh->close();

  auto again = open(other.path());
  EXPECT_EQ(again->schema_version(), again->latest_schema_version());
  again->migrate();
  const StoreStatus status = again->admin().status();
  EXPECT_EQ(status.schema_version, status.latest_schema_version);
  EXPECT_EQ(status.domains, 0);
  EXPECT_FALSE(status.backend.empty());
  EXPECT_FALSE(status.location.empty());
  again->close();
}

TEST_P(StoreConformance, StatusCountsRows) {
  const MailboxId alice = add_mailbox("alice@example.com");
  add_mailbox("bob@example.com");
  admin().add_alias("info@example.com", "alice@example.com");
  mail().deliver(message_to({alice}, content_with("hi", "one")));
  const StoreStatus status = admin().status();
  EXPECT_EQ(status.domains, 2);
  EXPECT_EQ(status.mailboxes, 2);
  EXPECT_EQ(status.aliases, 1);
  EXPECT_EQ(status.messages, 1);
  EXPECT_EQ(status.deliveries, 1);
}

// ---- domains ------------------------------------------------------------------------------

TEST_P(StoreConformance, DomainsAddListDelete) {
  admin().add_domain("Mixed.Example.NET");
  std::vector<std::string> names;
  for (const auto& domain : admin().list_domains()) {
    names.push_back(domain.name);
    EXPECT_GT(domain.created_at, UnixTime{});
  }
  EXPECT_THAT(names, ElementsAre("example.com", "example.org", "mixed.example.net"));
  EXPECT_TRUE(directory().is_local_domain("MIXED.example.net"));

  admin().delete_domain("mixed.EXAMPLE.net");
  EXPECT_FALSE(directory().is_local_domain("mixed.example.net"));
  EXPECT_EQ(admin().list_domains().size(), 2u);
}

TEST_P(StoreConformance, DomainConflicts) {
  EXPECT_THROW(admin().add_domain("example.com"), StoreConflict);
  EXPECT_THROW(admin().add_domain("EXAMPLE.COM"), StoreConflict);
  EXPECT_THROW(admin().add_domain(""), StoreConflict);
  EXPECT_THROW(admin().add_domain("user@example.net"), StoreConflict);
  EXPECT_THROW(admin().delete_domain("unknown.test"), StoreConflict);
  EXPECT_EQ(admin().list_domains().size(), 2u);
}

TEST_P(StoreConformance, DeletingADomainRemovesItsUsersAndAliases) {
  add_mailbox("alice@example.org");
  add_mailbox("carol@example.com");
  admin().add_alias("info@example.org", "alice@example.org");
  admin().add_alias("@example.org", "alice@example.org");
  admin().delete_domain("example.org");
  EXPECT_TRUE(admin().list_aliases(std::nullopt).empty());
  const auto users = admin().list_users(std::nullopt);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].address, "carol@example.com");
  EXPECT_EQ(directory().resolve("alice@example.org").kind, Kind::not_local);
}

// ---- users --------------------------------------------------------------------------------

TEST_P(StoreConformance, UsersAddListDelete) {
  admin().add_user("Alice@EXAMPLE.com", "$y$hash-a");
  admin().add_user("bob@example.com", "$y$hash-b");
  admin().add_user("carol@example.org", "$y$hash-c");

  std::vector<std::string> all;
  for (const auto& user : admin().list_users(std::nullopt)) {
    all.push_back(user.address);
    EXPECT_GT(user.id, 0);
    EXPECT_GT(user.created_at, UnixTime{});
  }
  // The domain is stored lowercase, the local part as given.
  EXPECT_THAT(all,
              UnorderedElementsAre("Alice@example.com", "bob@example.com", "carol@example.org"));

  std::vector<std::string> in_org;
  for (const auto& user : admin().list_users("EXAMPLE.org")) in_org.push_back(user.address);
  EXPECT_THAT(in_org, ElementsAre("carol@example.org"));

  admin().delete_user("ALICE@example.com");
  EXPECT_EQ(admin().list_users("example.com").size(), 1u);
  EXPECT_EQ(directory().resolve("alice@example.com").kind, Kind::unknown_local);
}

TEST_P(StoreConformance, UserConflicts) {
  admin().add_user("alice@example.com", "$y$x");
  EXPECT_THROW(admin().add_user("alice@example.com", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().add_user("ALICE@Example.Com", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().add_user("dave@unknown.test", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().add_user("no-at-sign", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().add_user("@example.com", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().delete_user("nobody@example.com"), StoreConflict);
  EXPECT_THROW(admin().set_password("nobody@example.com", "$y$x"), StoreConflict);
  EXPECT_THROW(admin().list_users("unknown.test"), StoreConflict);
  EXPECT_EQ(admin().list_users(std::nullopt).size(), 1u);
}

TEST_P(StoreConformance, PasswordHashLookup) {
  admin().add_user("alice@example.com", "$y$first");
  EXPECT_EQ(directory().password_hash("alice@example.com"), "$y$first");
  EXPECT_EQ(directory().password_hash("ALICE@EXAMPLE.COM"), "$y$first");
  admin().set_password("Alice@example.com", "$6$second");
  EXPECT_EQ(directory().password_hash("alice@example.com"), "$6$second");
  EXPECT_EQ(directory().password_hash("bob@example.com"), std::nullopt);
  EXPECT_EQ(directory().password_hash("alice@unknown.test"), std::nullopt);
  EXPECT_EQ(directory().password_hash("not-an-address"), std::nullopt);
}

// ---- aliases ------------------------------------------------------------------------------

TEST_P(StoreConformance, AliasesAddListDelete) {
  add_mailbox("alice@example.com");
  admin().add_alias("info@example.com", "alice@example.com");
  admin().add_alias("info@example.com", "someone@remote.test");
  admin().add_alias("@example.org", "alice@example.com");

  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& alias : admin().list_aliases(std::nullopt))
    rows.emplace_back(alias.source, alias.target);
  EXPECT_THAT(rows,
              UnorderedElementsAre(
                  std::pair<std::string, std::string>{"info@example.com", "alice@example.com"},
                  std::pair<std::string, std::string>{"info@example.com", "someone@remote.test"},
                  std::pair<std::string, std::string>{"@example.org", "alice@example.com"}));
  EXPECT_EQ(admin().list_aliases("example.org").size(), 1u);
  EXPECT_EQ(admin().list_aliases("example.org")[0].source, "@example.org");

  admin().delete_alias("INFO@example.com", "someone@remote.test");
  admin().delete_alias("@example.org", "alice@example.com");
  ASSERT_EQ(admin().list_aliases(std::nullopt).size(), 1u);
}

TEST_P(StoreConformance, AliasConflicts) {
  add_mailbox("alice@example.com");
  admin().add_alias("info@example.com", "alice@example.com");
  EXPECT_THROW(admin().add_alias("info@example.com", "alice@example.com"), StoreConflict);
  EXPECT_THROW(admin().add_alias("Info@Example.com", "ALICE@example.com"), StoreConflict);
  EXPECT_THROW(admin().add_alias("info@unknown.test", "alice@example.com"), StoreConflict);
  EXPECT_THROW(admin().add_alias("alice@example.com", "bob@remote.test"),
               StoreConflict);  // a mailbox
  EXPECT_THROW(admin().add_alias("self@example.com", "self@example.com"), StoreConflict);
  EXPECT_THROW(admin().add_alias("info@example.com", "not-an-address"), StoreConflict);
  EXPECT_THROW(admin().add_alias("no-domain", "alice@example.com"), StoreConflict);
  EXPECT_THROW(admin().delete_alias("info@example.com", "other@example.com"), StoreConflict);
  EXPECT_THROW(admin().delete_alias("info@unknown.test", "alice@example.com"), StoreConflict);
  EXPECT_THROW(admin().list_aliases("unknown.test"), StoreConflict);
  EXPECT_EQ(admin().list_aliases(std::nullopt).size(), 1u);
}

// ---- resolve ------------------------------------------------------------------------------

TEST_P(StoreConformance, ResolvesAMailbox) {
  const MailboxId alice = add_mailbox("alice@example.com");
  auto r = directory().resolve("alice@example.com");
  EXPECT_EQ(r.kind, Kind::mailboxes);
  EXPECT_THAT(r.mailboxes, ElementsAre(alice));
  EXPECT_TRUE(r.forwards.empty());
}

TEST_P(StoreConformance, ResolveIsCaseInsensitive) {
  const MailboxId alice = add_mailbox("Alice@example.com");
  EXPECT_THAT(directory().resolve("alice@EXAMPLE.COM").mailboxes, ElementsAre(alice));
  EXPECT_THAT(directory().resolve("ALICE@example.com").mailboxes, ElementsAre(alice));
  admin().add_alias("Sales@Example.com", "alice@example.com");
  EXPECT_THAT(directory().resolve("sales@example.COM").mailboxes, ElementsAre(alice));
  EXPECT_TRUE(directory().is_local_domain("Example.Com"));
}

TEST_P(StoreConformance, ResolvesAnAliasToManyMailboxes) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const MailboxId carol = add_mailbox("carol@example.org");
  admin().add_alias("team@example.com", "alice@example.com");
  admin().add_alias("team@example.com", "bob@example.com");
  admin().add_alias("team@example.com", "carol@example.org");
  admin().add_alias("team@example.com", "staff@example.com");  // alice again, by another way
  admin().add_alias("staff@example.com", "ALICE@example.com");
  auto r = directory().resolve("team@example.com");
  EXPECT_EQ(r.kind, Kind::mailboxes);
  EXPECT_THAT(r.mailboxes, UnorderedElementsAre(alice, bob, carol));
  EXPECT_TRUE(r.forwards.empty());
}

TEST_P(StoreConformance, ResolvesAnAliasChain) {
  const MailboxId alice = add_mailbox("alice@example.com");
  admin().add_alias("first@example.com", "second@example.org");
  admin().add_alias("second@example.org", "third@example.com");
  admin().add_alias("third@example.com", "alice@example.com");
  auto r = directory().resolve("first@example.com");
  EXPECT_EQ(r.kind, Kind::mailboxes);
  EXPECT_THAT(r.mailboxes, ElementsAre(alice));
}

TEST_P(StoreConformance, AliasChainsStopAfterEightHops) {
  const MailboxId alice = add_mailbox("alice@example.com");
  // hop0 -> hop1 -> ... -> hop9 -> alice: from hopK, alice is 10 - K hops away.
  for (int k = 0; k < 10; ++k) {
    const std::string next =
        k == 9 ? "alice@example.com" : "hop" + std::to_string(k + 1) + "@example.com";
    admin().add_alias("hop" + std::to_string(k) + "@example.com", next);
  }
  EXPECT_THAT(directory().resolve("hop2@example.com").mailboxes, ElementsAre(alice));  // 8 hops
  EXPECT_EQ(directory().resolve("hop1@example.com").kind, Kind::unknown_local);        // 9 hops
  EXPECT_EQ(directory().resolve("hop0@example.com").kind, Kind::unknown_local);
}

TEST_P(StoreConformance, AliasLoopsEnd) {
  const MailboxId alice = add_mailbox("alice@example.com");
  admin().add_alias("ping@example.com", "pong@example.com");
  admin().add_alias("pong@example.com", "ping@example.com");
  EXPECT_EQ(directory().resolve("ping@example.com").kind, Kind::unknown_local);

  // A loop with a way out delivers to the way out, once.
  admin().add_alias("pong@example.com", "alice@example.com");
  admin().add_alias("ping@example.com", "alice@example.com");
  auto r = directory().resolve("ping@example.com");
  EXPECT_EQ(r.kind, Kind::mailboxes);
  EXPECT_THAT(r.mailboxes, ElementsAre(alice));
}

TEST_P(StoreConformance, ResolvesTheCatchAll) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  admin().add_alias("@example.com", "bob@example.com");
  admin().add_alias("sales@example.com", "alice@example.com");
  EXPECT_THAT(directory().resolve("anything@example.com").mailboxes, ElementsAre(bob));
  // A mailbox or an alias wins over the catch-all.
  EXPECT_THAT(directory().resolve("alice@example.com").mailboxes, ElementsAre(alice));
  EXPECT_THAT(directory().resolve("sales@example.com").mailboxes, ElementsAre(alice));
  // Another domain's catch-all does not apply.
  EXPECT_EQ(directory().resolve("anything@example.org").kind, Kind::unknown_local);
}

TEST_P(StoreConformance, ResolvesForwards) {
  const MailboxId alice = add_mailbox("alice@example.com");
  admin().add_alias("ext@example.com", "Someone@Remote.TEST");
  admin().add_alias("both@example.com", "alice@example.com");
  admin().add_alias("both@example.com", "someone@remote.test");

  auto only = directory().resolve("ext@example.com");
  EXPECT_EQ(only.kind, Kind::mailboxes);
  EXPECT_TRUE(only.mailboxes.empty());
  EXPECT_THAT(only.forwards, ElementsAre("Someone@remote.test"));

  auto both = directory().resolve("both@example.com");
  EXPECT_EQ(both.kind, Kind::mailboxes);
  EXPECT_THAT(both.mailboxes, ElementsAre(alice));
  EXPECT_THAT(both.forwards, ElementsAre("someone@remote.test"));
}

TEST_P(StoreConformance, ResolvesUnknownAndForeignAddresses) {
  add_mailbox("alice@example.com");
  EXPECT_EQ(directory().resolve("nobody@example.com").kind, Kind::unknown_local);
  EXPECT_EQ(directory().resolve("alice@remote.test").kind, Kind::not_local);
  EXPECT_EQ(directory().resolve("not-an-address").kind, Kind::not_local);
  EXPECT_FALSE(directory().is_local_domain("remote.test"));
  EXPECT_TRUE(directory().is_local_domain("example.org"));
}

// ---- delivery -----------------------------------------------------------------------------

TEST_P(StoreConformance, DeliversToSeveralMailboxesStoringTheContentOnce) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const MailboxId carol = add_mailbox("carol@example.org");
  const std::string content = content_with("Team", "Hello all");

  const StoredMessage stored = mail().deliver(message_to({carol, alice, bob}, content));
  EXPECT_EQ(stored.content_hash, sha256(content).hex());
  EXPECT_GT(stored.message_id, 0);
  ASSERT_EQ(stored.deliveries.size(), 3u);
  EXPECT_EQ(std::set<DeliveryId>(stored.deliveries.begin(), stored.deliveries.end()).size(), 3u);

  const StoreStatus status = admin().status();
  EXPECT_EQ(status.messages, 1);
  EXPECT_EQ(status.deliveries, 3);

  // Deliveries come back in the order of the mailboxes.
  EXPECT_EQ(admin().get_mail(stored.deliveries[0])->summary.mailbox, "carol@example.org");
  EXPECT_EQ(admin().get_mail(stored.deliveries[1])->summary.mailbox, "alice@example.com");
  EXPECT_EQ(admin().get_mail(stored.deliveries[2])->summary.mailbox, "bob@example.com");
}

TEST_P(StoreConformance, DuplicateMailboxIdsAreDeliveredOnce) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const StoredMessage stored =
      mail().deliver(message_to({alice, bob, alice, alice}, content_with("x", "y")));
  EXPECT_EQ(stored.deliveries.size(), 2u);
  EXPECT_EQ(admin().status().deliveries, 2);
}

TEST_P(StoreConformance, SameContentToTheSameMailboxIsIdempotent) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const std::string content = content_with("Retry", "lost 250");

  const StoredMessage first = mail().deliver(message_to({alice}, content));
  NewMessage retry = message_to({alice}, content);
  retry.trace = "Received: from another.hop\r\n";  // a retry may come with other trace lines
  const StoredMessage second = mail().deliver(retry);
  EXPECT_EQ(second.deliveries, first.deliveries);
  EXPECT_EQ(second.message_id, first.message_id);

  // The same content for another mailbox is a new delivery of the same message.
  const StoredMessage third = mail().deliver(message_to({bob, alice}, content));
  ASSERT_EQ(third.deliveries.size(), 2u);
  EXPECT_NE(third.deliveries[0], first.deliveries[0]);
  EXPECT_EQ(third.deliveries[1], first.deliveries[0]);
  EXPECT_EQ(third.message_id, first.message_id);

  const StoreStatus status = admin().status();
  EXPECT_EQ(status.messages, 1);
  EXPECT_EQ(status.deliveries, 2);
}

TEST_P(StoreConformance, StoresSizeAndUidl) {
  const MailboxId alice = add_mailbox("Alice@Example.com");
  const std::string content = content_with("Sizes", std::string(5000, 'z'));
  const StoredMessage stored = mail().deliver(message_to({alice}, content));
  auto detail = admin().get_mail(stored.deliveries.at(0));
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->summary.size, std::string(trace).size() + content.size());
  EXPECT_EQ(detail->content_hash, sha256(content).hex());
  // UIDL = hex SHA-256(lowercased address + "\n" + content hash): the same on every node.
  EXPECT_EQ(detail->summary.uidl, sha256("alice@example.com\n" + sha256(content).hex()).hex());
  EXPECT_EQ(detail->summary.status, DeliveryStatus::fresh);
  EXPECT_EQ(detail->summary.reverse_path, "sender@remote.test");
  EXPECT_GT(detail->summary.received_at, UnixTime{});
}

TEST_P(StoreConformance, GetMailIsByteExact) {
  const MailboxId alice = add_mailbox("alice@example.com");
  std::string content = "Subject: caf\xc3\xa9 \xff\xfe\r\n\r\n";
  for (int b = 1; b < 256; ++b) content.push_back(static_cast<char>(b));  // every byte but NUL
  content += "\r\n" + std::string(100'000, 'L') + "\r\n";                 // one very long line
  content += "bare\rCR and bare\nLF\r\n..dot\r\n.\r\n";
  NewMessage message = message_to({alice}, content);
  message.trace = "Received: from h\xe9llo (8-bit)\r\n";
  message.reverse_path = "";  // the null sender

  const StoredMessage stored = mail().deliver(message);
  auto detail = admin().get_mail(stored.deliveries.at(0));
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->content, content);
  EXPECT_EQ(detail->trace, message.trace);
  EXPECT_EQ(detail->trace + detail->content, message.trace + content);
  EXPECT_EQ(detail->summary.size, message.trace.size() + content.size());
  EXPECT_EQ(detail->summary.reverse_path, "");
  EXPECT_EQ(detail->summary.subject, "caf\xc3\xa9 \xff\xfe");

  EXPECT_FALSE(admin().get_mail(stored.deliveries.at(0) + 1000));
}

TEST_P(StoreConformance, EmptyContentAndEmptyTrace) {
  const MailboxId alice = add_mailbox("alice@example.com");
  NewMessage message = message_to({alice}, "");
  message.trace = "";
  const StoredMessage stored = mail().deliver(message);
  auto detail = admin().get_mail(stored.deliveries.at(0));
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail->content, "");
  EXPECT_EQ(detail->trace, "");
  EXPECT_EQ(detail->summary.size, 0u);
  EXPECT_EQ(detail->summary.subject, "");
}

TEST_P(StoreConformance, DeliveryConflicts) {
  const MailboxId alice = add_mailbox("alice@example.com");
  EXPECT_THROW(mail().deliver(message_to({}, "x")), StoreConflict);
  EXPECT_THROW(mail().deliver(message_to({alice, alice + 100000}, "x")), StoreConflict);
  // The failed delivery left nothing behind, not even the content.
  const StoreStatus status = admin().status();
  EXPECT_EQ(status.messages, 0);
  EXPECT_EQ(status.deliveries, 0);
}

// ---- listing ------------------------------------------------------------------------------

TEST_P(StoreConformance, ListMailNewestFirstWithFiltersAndLimit) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  std::vector<DeliveryId> to_alice;
  for (int i = 0; i < 5; ++i) {
    to_alice.push_back(mail()
                           .deliver(message_to({alice}, content_with("a" + std::to_string(i), "x")))
                           .deliveries[0]);
  }
  const DeliveryId to_bob = mail().deliver(message_to({bob}, content_with("b", "x"))).deliveries[0];
  // A folded Subject is unfolded; a message without one lists an empty subject.
  mail().deliver(message_to({bob}, "Subject: one\r\n two\r\n\tthree  \r\nTo: x\r\n\r\nbody\r\n"));
  mail().deliver(message_to({bob}, "From: x\r\n\r\nSubject: in the body\r\n"));

  auto all = admin().list_mail(0, std::nullopt);
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all[0].subject, "");
  EXPECT_EQ(all[1].subject, "one two\tthree");
  EXPECT_EQ(all[2].id, to_bob);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i - 1].id, all[i].id);

  auto last3 = admin().list_mail(3, std::nullopt);
  ASSERT_EQ(last3.size(), 3u);
  EXPECT_EQ(last3[2].id, to_bob);

  auto alices = admin().list_mail(2, "ALICE@example.com");
  ASSERT_EQ(alices.size(), 2u);
  EXPECT_EQ(alices[0].id, to_alice[4]);
  EXPECT_EQ(alices[0].subject, "a4");
  EXPECT_EQ(alices[0].mailbox, "alice@example.com");
  EXPECT_EQ(alices[1].id, to_alice[3]);
  EXPECT_EQ(admin().list_mail(100, "alice@example.com").size(), 5u);

  EXPECT_THROW(admin().list_mail(10, "carol@example.com"), StoreConflict);
}

// ---- concurrency and group commit ---------------------------------------------------------

TEST_P(StoreConformance, ConcurrentCommitsAreDurableAndGrouped) {
  constexpr int threads = 50, per_thread = 4;
  std::vector<MailboxId> boxes;
  for (int i = 0; i < 5; ++i)
    boxes.push_back(add_mailbox("user" + std::to_string(i) + "@example.com"));

  const WriterStats before = store().writer_stats();
  std::latch start(threads);
  std::mutex mutex;
  std::set<DeliveryId> ids;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();  // all threads deliver at once, as sessions under load do
      for (int i = 0; i < per_thread; ++i) {
        try {
          const auto box = boxes[static_cast<std::size_t>(t) % boxes.size()];
          auto stored = mail().deliver(message_to(
              {box}, content_with("t" + std::to_string(t) + "-" + std::to_string(i), "body")));
          std::lock_guard lock(mutex);
          ids.insert(stored.deliveries.at(0));
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const WriterStats after = store().writer_stats();
  const auto transactions = after.transactions - before.transactions;
  const auto jobs = after.jobs - before.jobs;
  std::cout << "[ stats    ] " << threads * per_thread << " concurrent deliveries: " << jobs
            << " writer jobs in " << transactions << " transactions\n";
  RecordProperty("writer_jobs", static_cast<int>(jobs));
  RecordProperty("writer_transactions", static_cast<int>(transactions));

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(threads * per_thread));
  EXPECT_EQ(jobs, static_cast<std::uint64_t>(threads * per_thread));
  if (GetParam().group_commit) {
    EXPECT_LT(transactions, jobs);  // group commit: many deliveries share a transaction
  } else {
    EXPECT_EQ(transactions, jobs);
  }

  reopen();  // what was acknowledged is in the store, not in a cache
  EXPECT_EQ(admin().status().deliveries, threads * per_thread);
  EXPECT_EQ(admin().status().messages, threads * per_thread);
  for (DeliveryId id : ids) ASSERT_TRUE(admin().get_mail(id)) << id;
}

TEST_P(StoreConformance, ReadsRunConcurrentlyWithWrites) {
  const MailboxId alice = add_mailbox("alice@example.com");
  admin().add_alias("team@example.com", "alice@example.com");
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        try {
          auto res = directory().resolve("team@example.com");
          if (res.mailboxes != std::vector<MailboxId>{alice}) ++wrong;
          if (!directory().password_hash("alice@example.com")) ++wrong;
        } catch (...) {
          ++wrong;
        }
      }
    });
  }
  for (int i = 0; i < 20; ++i)
    mail().deliver(message_to({alice}, content_with("r", std::to_string(i))));
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(admin().status().deliveries, 20);
}

TEST_P(StoreConformance, DeliverAsyncCompletesEachJobExactlyOnce) {
  const MailboxId alice = add_mailbox("alice@example.com");
  constexpr int count = 100;
  std::vector<std::atomic<int>> calls(count);
  std::atomic<int> done{0}, failed{0};
  std::mutex mutex;
  std::condition_variable all_done;
  for (int i = 0; i < count; ++i) {
    mail().deliver_async(message_to({alice}, content_with("async", std::to_string(i))),
                         [&, i](std::exception_ptr error, StoredMessage stored) {
                           ++calls[static_cast<std::size_t>(i)];
                           if (error || stored.deliveries.size() != 1) ++failed;
                           std::lock_guard lock(mutex);
                           ++done;
                           all_done.notify_all();
                         });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(60), [&] { return done == count; }));
  }
  close_store();  // nothing more may arrive after the writer stopped
  for (auto& c : calls) EXPECT_EQ(c.load(), 1);
  EXPECT_EQ(failed.load(), 0);
  store_ = open(dir_.path());
  EXPECT_EQ(admin().status().deliveries, count);
}

TEST_P(StoreConformance, CloseRunsWhatIsQueued) {
  const MailboxId alice = add_mailbox("alice@example.com");
  constexpr int count = 60;
  std::atomic<int> ok{0}, calls{0};
  for (int i = 0; i < count; ++i) {
    mail().deliver_async(message_to({alice}, content_with("queued", std::to_string(i))),
                         [&](std::exception_ptr error, const StoredMessage&) {
                           ++calls;
                           if (!error) ++ok;
                         });
  }
  close_store();
  EXPECT_EQ(calls.load(), count);
  EXPECT_EQ(ok.load(), count);
  store_ = open(dir_.path());
  EXPECT_EQ(admin().status().deliveries, count);
}

TEST_P(StoreConformance, AFailingJobDoesNotFailItsGroup) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId missing = alice + 100000;

  // Hold the writer in the first job's completion until the others are queued, so that
  // they are all in the next group together.
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> ok{0}, conflicts{0}, other{0}, completed{0};
  auto count_result = [&](std::exception_ptr error, const StoredMessage&) {
    if (!error)
      ++ok;
    else {
      try {
        std::rethrow_exception(error);
      } catch (const StoreConflict&) {
        ++conflicts;
      } catch (...) {
        ++other;
      }
    }
    ++completed;
  };
  mail().deliver_async(message_to({alice}, content_with("gate", "g")),
                       [&, gate](std::exception_ptr error, const StoredMessage& stored) {
                         gate.wait();
                         count_result(error, stored);
                       });
  constexpr int group = 20;
  for (int i = 0; i < group; ++i) {
    const MailboxId to = i % 4 == 1 ? missing : alice;  // every fourth job fails
    mail().deliver_async(message_to({to}, content_with("group", std::to_string(i))), count_result);
  }
  release.set_value();
  close_store();  // drains the queue

  EXPECT_EQ(completed.load(), group + 1);
  EXPECT_EQ(conflicts.load(), group / 4);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), group + 1 - group / 4);

  store_ = open(dir_.path());
  const WriterStats fresh = store_->writer_stats();
  EXPECT_EQ(fresh.jobs, 0u);  // counters are per opened store
  EXPECT_EQ(admin().status().deliveries, group + 1 - group / 4);
}

TEST_P(StoreConformance, GroupedJobsShareOneTransaction) {
  if (!GetParam().group_commit) GTEST_SKIP() << "this backend commits each write alone";
  const MailboxId alice = add_mailbox("alice@example.com");
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> completed{0};
  const WriterStats before = store().writer_stats();
  mail().deliver_async(message_to({alice}, content_with("gate", "g")),
                       [&, gate](std::exception_ptr, const StoredMessage&) {
                         gate.wait();
                         ++completed;
                       });
  for (int i = 0; i < 30; ++i) {
    mail().deliver_async(message_to({alice}, content_with("g", std::to_string(i))),
                         [&](std::exception_ptr, const StoredMessage&) { ++completed; });
  }
  release.set_value();
  while (completed.load() < 31) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const WriterStats after = store().writer_stats();
  EXPECT_EQ(after.jobs - before.jobs, 31u);
  // The gate's group, then all the rest (or everything at once if the writer was slow to start).
  EXPECT_LE(after.transactions - before.transactions, 2u);
}

// ---- logins and maildrops (POP3) ----------------------------------------------------------

TEST_P(StoreConformance, AccountLookupIsCaseInsensitive) {
  const MailboxId alice = add_mailbox("Alice@example.com");
  admin().set_password("alice@example.com", "$y$alice");
  for (const char* login : {"Alice@example.com", "alice@example.com", "ALICE@EXAMPLE.COM"}) {
    auto account = directory().account(login);
    ASSERT_TRUE(account) << login;
    EXPECT_EQ(account->mailbox, alice);
    EXPECT_EQ(account->address, "Alice@example.com");  // as stored
    EXPECT_EQ(account->password_hash, "$y$alice");
  }
  EXPECT_FALSE(directory().account("bob@example.com"));
  EXPECT_FALSE(directory().account("alice@unknown.test"));
  EXPECT_FALSE(directory().account("not-an-address"));
  EXPECT_FALSE(directory().account(""));
}

TEST_P(StoreConformance, AMaildropLockIsTakenOnceAndExtendedByItsOwner) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  EXPECT_TRUE(maildrops().lock(alice, "node-a/1", std::chrono::seconds(60)));   // free
  EXPECT_TRUE(maildrops().lock(alice, "node-a/1", std::chrono::seconds(60)));   // ours: extended
  EXPECT_FALSE(maildrops().lock(alice, "node-a/2", std::chrono::seconds(60)));  // another session
  EXPECT_FALSE(maildrops().lock(alice, "node-b/1", std::chrono::seconds(60)));  // another node
  EXPECT_TRUE(
      maildrops().lock(bob, "node-a/2", std::chrono::seconds(60)));  // one lock per maildrop
  EXPECT_TRUE(maildrops().lock(alice, "node-a/1", std::chrono::seconds(60)));  // still ours
}

TEST_P(StoreConformance, UnlockByAnotherOwnerIsIgnored) {
  const MailboxId alice = add_mailbox("alice@example.com");
  ASSERT_TRUE(maildrops().lock(alice, "first", std::chrono::seconds(60)));
  maildrops().unlock(alice, "second");
  EXPECT_FALSE(maildrops().lock(alice, "second", std::chrono::seconds(60)));
  maildrops().unlock(alice, "first");
  EXPECT_TRUE(maildrops().lock(alice, "second", std::chrono::seconds(60)));
  maildrops().unlock(alice + 1000, "second");  // nothing to unlock: not an error
}

TEST_P(StoreConformance, AnExpiredLockIsFreeAndAnExtendedOneIsNot) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  const auto start = std::chrono::steady_clock::now();
  // bob's first lock is taken before alice's, so without its extension it would lapse first.
  ASSERT_TRUE(maildrops().lock(bob, "crashed", std::chrono::seconds(1)));
  ASSERT_TRUE(maildrops().lock(alice, "crashed", std::chrono::seconds(1)));
  ASSERT_TRUE(maildrops().lock(bob, "crashed", std::chrono::seconds(60)));
  EXPECT_FALSE(maildrops().lock(alice, "other", std::chrono::seconds(60)));

  // The owner never comes back: the lock lapses by itself, after at least its ttl.
  bool taken = false;
  while (!taken && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    taken = maildrops().lock(alice, "other", std::chrono::seconds(60));
  }
  ASSERT_TRUE(taken);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_FALSE(maildrops().lock(alice, "crashed", std::chrono::seconds(60)));  // now it is other's
  EXPECT_FALSE(maildrops().lock(bob, "other", std::chrono::seconds(60)));      // extended to 60 s
}

TEST_P(StoreConformance, ConcurrentLockersGetTheMaildropOnce) {
  const MailboxId alice = add_mailbox("alice@example.com");
  constexpr int sessions = 16;
  std::latch start(sessions);
  std::atomic<int> winners{0}, errors{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < sessions; ++s) {
    threads.emplace_back([&, s] {
      start.arrive_and_wait();
      try {
        if (maildrops().lock(alice, "session-" + std::to_string(s), std::chrono::seconds(60)))
          ++winners;
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(errors.load(), 0);
}

TEST_P(StoreConformance, TheLockHoldsBetweenTwoNodesOnOneStore) {
  const MailboxId alice = add_mailbox("alice@example.com");
  auto other_node = open(dir_.path());
  ASSERT_TRUE(maildrops().lock(alice, "node-a/1", std::chrono::seconds(60)));
  EXPECT_FALSE(other_node->maildrops().lock(alice, "node-b/1", std::chrono::seconds(60)));
  maildrops().finish(alice, "node-a/1", {}, {});
  EXPECT_TRUE(other_node->maildrops().lock(alice, "node-b/1", std::chrono::seconds(60)));
  EXPECT_FALSE(maildrops().lock(alice, "node-a/1", std::chrono::seconds(60)));
  other_node->close();
}

TEST_P(StoreConformance, LockRefusesWhatCannotBeAMaildropLock) {
  const MailboxId alice = add_mailbox("alice@example.com");
  EXPECT_THROW(maildrops().lock(alice + 1000, "owner", std::chrono::seconds(60)), StoreConflict);
  EXPECT_THROW(maildrops().lock(alice, "", std::chrono::seconds(60)), StoreConflict);
  EXPECT_THROW(maildrops().lock(alice, "owner", std::chrono::seconds(0)), StoreConflict);
  EXPECT_THROW(maildrops().lock(alice, "owner", std::chrono::seconds(-5)), StoreConflict);
  EXPECT_TRUE(maildrops().lock(alice, "owner", std::chrono::seconds(60)));  // none of that took it
}

TEST_P(StoreConformance, DeletingAMailboxDropsItsLock) {
  const MailboxId alice = add_mailbox("alice@example.com");
  ASSERT_TRUE(maildrops().lock(alice, "session", std::chrono::seconds(60)));
  admin().delete_user("alice@example.com");
  EXPECT_THROW(maildrops().lock(alice, "session", std::chrono::seconds(60)), StoreConflict);
  const MailboxId again = add_mailbox("alice@example.com");
  EXPECT_TRUE(maildrops().lock(again, "other", std::chrono::seconds(60)));
}

TEST_P(StoreConformance, FinishReleasesOnlyItsOwnersLock) {
  const MailboxId alice = add_mailbox("alice@example.com");
  ASSERT_TRUE(maildrops().lock(alice, "first", std::chrono::seconds(60)));
  maildrops().finish(alice, "second", {}, {});
  EXPECT_FALSE(maildrops().lock(alice, "second", std::chrono::seconds(60)));
  maildrops().finish(alice, "first", {}, {});
  EXPECT_TRUE(maildrops().lock(alice, "second", std::chrono::seconds(60)));
}

TEST_P(StoreConformance, AMaildropListsSizesAndUidlsInOrderWithoutDeleted) {
  const MailboxId alice = add_mailbox("Alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  EXPECT_TRUE(maildrops().list(alice).empty());
  std::vector<std::string> contents;
  std::vector<DeliveryId> ids;
  for (int i = 0; i < 4; ++i) {
    contents.push_back(
        content_with("m" + std::to_string(i), std::string(static_cast<std::size_t>(i) * 100, 'x')));
    ids.push_back(mail().deliver(message_to({alice, bob}, contents.back())).deliveries.at(0));
  }
  NewMessage untraced = message_to({alice}, "Subject: bare\r\n\r\n");
  untraced.trace = "";
  ids.push_back(mail().deliver(untraced).deliveries.at(0));
  contents.push_back(untraced.content);

  auto listed = maildrops().list(alice);
  ASSERT_EQ(listed.size(), 5u);
  for (std::size_t i = 0; i < listed.size(); ++i) {
    EXPECT_EQ(listed[i].id, ids[i]);
    const std::size_t trace_size = i < 4 ? std::string(trace).size() : 0;
    EXPECT_EQ(listed[i].size, trace_size + contents[i].size());
    EXPECT_EQ(listed[i].uidl, sha256("alice@example.com\n" + sha256(contents[i]).hex()).hex());
  }
  EXPECT_EQ(maildrops().list(bob).size(), 4u);
  EXPECT_NE(maildrops().list(bob)[0].uidl, listed[0].uidl);  // the UIDL depends on the mailbox

  maildrops().finish(alice, "session", {ids[0], ids[1]}, {ids[1], ids[3]});
  listed = maildrops().list(alice);
  std::vector<DeliveryId> left;
  for (const auto& entry : listed) left.push_back(entry.id);
  EXPECT_THAT(left, ElementsAre(ids[0], ids[2], ids[4]));  // retrieved stays listed
  EXPECT_EQ(maildrops().list(bob).size(), 4u);
  EXPECT_TRUE(maildrops().list(bob + alice + 1000).empty());
}

TEST_P(StoreConformance, AMaildropOfTenThousandMessagesListsInFull) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  constexpr int count = 10'000;
  std::atomic<int> done{0}, failed{0};
  std::mutex mutex;
  std::condition_variable all_done;
  auto completion = [&](std::exception_ptr error, const StoredMessage&) {
    if (error) ++failed;
    std::lock_guard lock(mutex);
    ++done;
    all_done.notify_all();
  };
  for (int i = 0; i < count; ++i) {
    mail().deliver_async(message_to({alice}, content_with("bulk", std::to_string(i))), completion);
    if (i % 100 == 0)
      mail().deliver_async(message_to({bob}, content_with("other", std::to_string(i))), completion);
  }
  const int expected = count + count / 100;
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(all_done.wait_for(lock, std::chrono::minutes(5), [&] { return done == expected; }));
  }
  ASSERT_EQ(failed.load(), 0);

  const auto listed = maildrops().list(alice);
  ASSERT_EQ(listed.size(), static_cast<std::size_t>(count));
  // Deliveries running in parallel may commit out of order: compare the sizes as a whole.
  std::multiset<std::uint64_t> sizes, expected_sizes;
  for (std::size_t i = 0; i < listed.size(); ++i) {
    if (i > 0) {
      ASSERT_LT(listed[i - 1].id, listed[i].id);
    }
    sizes.insert(listed[i].size);
    expected_sizes.insert(std::string(trace).size() +
                          content_with("bulk", std::to_string(i)).size());
    ASSERT_EQ(listed[i].uidl.size(), 64u);
  }
  EXPECT_EQ(sizes, expected_sizes);
  EXPECT_EQ(maildrops().list(bob).size(), static_cast<std::size_t>(count / 100));
}

TEST_P(StoreConformance, TextIsByteExactAndOnlyForItsMailbox) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  std::string content = "Subject: bytes\r\n\r\n";
  for (int b = 0; b < 256; ++b) content.push_back(static_cast<char>(b));  // NUL included
  content += "\r\n" + std::string(100'000, 'L') + "\r\nbare\rCR and bare\nLF\r\n..dot\r\n.\r\n";
  NewMessage message = message_to({alice}, content);
  message.trace = "Received: from h\xe9llo (8-bit)\r\n";
  const DeliveryId id = mail().deliver(message).deliveries.at(0);
  const DeliveryId bobs =
      mail().deliver(message_to({bob}, content_with("b", "b"))).deliveries.at(0);

  auto text = maildrops().text(alice, id);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->trace, message.trace);
  EXPECT_EQ(text->content, content);
  EXPECT_EQ(text->trace.size() + text->content.size(), maildrops().list(alice).at(0).size);

  EXPECT_FALSE(maildrops().text(alice, bobs));  // another mailbox's message
  EXPECT_FALSE(maildrops().text(bob, id));
  EXPECT_FALSE(maildrops().text(alice, id + bobs + 1000));
  EXPECT_TRUE(maildrops().text(bob, bobs));

  maildrops().finish(alice, "session", {id}, {});
  EXPECT_TRUE(maildrops().text(alice, id));  // retrieved: still there
  maildrops().finish(alice, "session", {}, {id});
  EXPECT_FALSE(maildrops().text(alice, id));  // deleted: gone
}

TEST_P(StoreConformance, FinishOnlyRaisesStatuses) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const MailboxId bob = add_mailbox("bob@example.com");
  std::vector<DeliveryId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(
        mail().deliver(message_to({alice}, content_with("s", std::to_string(i)))).deliveries.at(0));
  }
  const DeliveryId bobs =
      mail().deliver(message_to({bob}, content_with("b", "b"))).deliveries.at(0);
  auto status_of = [&](DeliveryId id) { return admin().get_mail(id).value().summary.status; };

  ASSERT_TRUE(maildrops().lock(alice, "session", std::chrono::seconds(60)));
  // Another mailbox's id and an unknown one are ignored, not an error.
  maildrops().finish(alice, "session", {ids[0], ids[1], bobs},
                     {ids[2], bobs, ids[4] + bobs + 1000});
  EXPECT_EQ(status_of(ids[0]), DeliveryStatus::retrieved);
  EXPECT_EQ(status_of(ids[1]), DeliveryStatus::retrieved);
  EXPECT_EQ(status_of(ids[2]), DeliveryStatus::deleted);
  EXPECT_EQ(status_of(ids[3]), DeliveryStatus::fresh);
  EXPECT_EQ(status_of(ids[4]), DeliveryStatus::fresh);
  EXPECT_EQ(status_of(bobs), DeliveryStatus::fresh);

  // Listed as retrieved again: deleted stays deleted, retrieved stays retrieved.
  maildrops().finish(alice, "session", {ids[2], ids[0]}, {});
  EXPECT_EQ(status_of(ids[2]), DeliveryStatus::deleted);
  EXPECT_EQ(status_of(ids[0]), DeliveryStatus::retrieved);

  // In both lists (RETR, then DELE): deleted, whatever the order.
  maildrops().finish(alice, "session", {ids[3]}, {ids[3]});
  EXPECT_EQ(status_of(ids[3]), DeliveryStatus::deleted);
  maildrops().finish(alice, "session", {ids[1]}, {ids[1]});
  EXPECT_EQ(status_of(ids[1]), DeliveryStatus::deleted);
  EXPECT_EQ(status_of(ids[4]), DeliveryStatus::fresh);
}

TEST_P(StoreConformance, FinishOnAClosedStoreFailsAndChangesNothing) {
  const MailboxId alice = add_mailbox("alice@example.com");
  const DeliveryId id =
      mail().deliver(message_to({alice}, content_with("c", "c"))).deliveries.at(0);
  ASSERT_TRUE(maildrops().lock(alice, "session", std::chrono::seconds(60)));
  store().close();
  EXPECT_THROW(maildrops().finish(alice, "session", {id}, {id}), StoreError);
  EXPECT_THROW(maildrops().lock(alice, "session", std::chrono::seconds(60)), StoreError);
  EXPECT_THROW(maildrops().unlock(alice, "session"), StoreError);
  EXPECT_THROW(maildrops().list(alice), StoreError);
  EXPECT_THROW(maildrops().text(alice, id), StoreError);

  reopen();
  EXPECT_EQ(admin().get_mail(id).value().summary.status, DeliveryStatus::fresh);
  EXPECT_EQ(maildrops().list(alice).size(), 1u);
  EXPECT_FALSE(maildrops().lock(alice, "other", std::chrono::seconds(60)));  // still held
}

TEST_P(StoreConformance, UidlsAndSizesAreTheSameAfterReopening) {
  const MailboxId alice = add_mailbox("alice@example.com");
  for (int i = 0; i < 20; ++i)
    mail().deliver(message_to({alice}, content_with("u", std::to_string(i))));
  const auto before = maildrops().list(alice);
  ASSERT_EQ(before.size(), 20u);
  reopen();
  const auto after = maildrops().list(alice);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].size, before[i].size);
    EXPECT_EQ(after[i].uidl, before[i].uidl);
  }
}

// ---- crash --------------------------------------------------------------------------------

// Reads one "id\n" line from fd within the deadline; nothing when the pipe closes or time runs out.
std::optional<DeliveryId> read_id(int fd, std::string& buffer,
                                  std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      const DeliveryId id = std::stoll(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
      return id;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char chunk[256];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

TEST_P(StoreConformance, AnAcknowledgedDeliverySurvivesSigkill) {
  const MailboxId alice = add_mailbox("alice@example.com");
  close_store();  // the child opens its own; no connection crosses the fork

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child never returns into GoogleTest: every path ends in _exit.
    close(fds[0]);
    try {
      auto store = open(dir_.path());
      for (int i = 0;; ++i) {
        auto stored =
            store->mail().deliver(message_to({alice}, content_with("crash", std::to_string(i))));
        const std::string line = std::to_string(stored.deliveries.at(0)) + "\n";
        if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
        if (i >= 3) pause();  // acknowledged; now wait for the kill with the store open
      }
    } catch (...) {
      _exit(2);
    }
    _exit(4);
  }
  close(fds[1]);
  std::vector<DeliveryId> acknowledged;
  std::string buffer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  // Kill as soon as the first id arrives: the child is then mid-way through the next delivery.
  if (auto id = read_id(fds[0], buffer, deadline)) acknowledged.push_back(*id);
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  while (auto id =
             read_id(fds[0], buffer, std::chrono::steady_clock::now() + std::chrono::seconds(5)))
    acknowledged.push_back(*id);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  ASSERT_FALSE(acknowledged.empty());

  store_ = open(dir_.path());
  for (std::size_t i = 0; i < acknowledged.size(); ++i) {
    auto detail = admin().get_mail(acknowledged[i]);
    ASSERT_TRUE(detail) << "acknowledged delivery " << acknowledged[i] << " was lost";
    EXPECT_EQ(detail->content, content_with("crash", std::to_string(i)));
  }
}

}  // namespace
}  // namespace maild::store::testing
