// The conformance suite instantiated for SQLite, plus what only SQLite has: the file,
// its pragmas, the query plans of a maildrop listing and of a claim, the factory's errors,
// and failures injected with triggers.
#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "conformance.hpp"
#include "maild/config/settings.hpp"

namespace maild::store::testing {
namespace {

config::Settings sqlite_settings(const std::filesystem::path& file) {
  config::Settings settings;
  settings.store.backend = config::StoreBackend::sqlite;
  settings.store.path = file;
  settings.store.workers = 4;
  return settings;
}

BackendUnderTest sqlite_backend() {
  return {"SQLite", [](const std::filesystem::path& dir) {
            return open_store(sqlite_settings(dir / "mail.db"), OpenMode::create_if_missing);
          }};
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values(sqlite_backend()),
                         backend_name);

// SQL that takes a store back to before a migration, so that `migrate` runs it again
// (newest first: each is undone before the one it came after).
const std::string undo_reverse_migration =
    "DROP TABLE pending_recipients; DROP TABLE pending_retrievals; DROP TABLE pickup_recipients; "
    "DROP TABLE pickups; DROP TABLE domain_policies; DROP TABLE counters; "
    "DROP TRIGGER domains_drop_unverified_policy; ALTER TABLE deliveries DROP COLUMN verified; ";
const std::string undo_queue_migration = "DROP TABLE queue_recipients; DROP TABLE queue_messages; ";

// Direct access to the file, to check what the backend set up.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + file.string());
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Every row's columns joined by '|', rows joined by '\n'.
  std::string query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
    std::string out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      if (!out.empty()) out += "\n";
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (c > 0) out += "|";
        const unsigned char* text = sqlite3_column_text(stmt, c);
        if (text != nullptr) out += reinterpret_cast<const char*>(text);
      }
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Runs SQL on the file from a connection of its own (the store should be closed meanwhile).
void exec_raw(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(db);
    throw std::runtime_error("cannot open " + file.string());
  }
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close_v2(db);
  if (rc != SQLITE_OK) throw std::runtime_error(message + " in: " + sql);
}

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A migrated store in a temp folder with alice@example.com, reopened at will.
class SqliteMaildrop : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(sqlite_settings(file_), OpenMode::create_if_missing);
    store_->migrate();
    store_->admin().add_domain("example.com");
    store_->admin().add_user("alice@example.com", "$y$x");
    alice_ = store_->directory().account("alice@example.com").value().mailbox;
  }
  void TearDown() override {
    if (store_) store_->close();
  }
  void close() {
    store_->close();
    store_.reset();
  }
  void reopen() {
    if (store_) close();
    store_ = open_store(sqlite_settings(file_), OpenMode::existing);
  }
  DeliveryId deliver(const std::string& content) {
    NewMessage message;
    message.mailboxes = {alice_};
    message.trace = "Received: by test\r\n";
    message.content = content;
    return store_->mail().deliver(message).deliveries.at(0);
  }
  DeliveryStatus status_of(DeliveryId id) {
    return store_->admin().get_mail(id).value().summary.status;
  }

  TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "mail.db";
  std::unique_ptr<Store> store_;
  MailboxId alice_ = 0;
};

TEST(SqliteStore, OpeningAMissingStoreForAdministrationFails) {
  TempDir dir;
  const auto file = dir.path() / "nowhere" / "mail.db";
  try {
    open_store(sqlite_settings(file), OpenMode::existing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_EQ(std::string(error.what()),
              "store " + file.string() + " does not exist (run: mailctl db migrate)");
  }
  EXPECT_FALSE(std::filesystem::exists(file.parent_path()));
}

TEST(SqliteStore, CreatesTheFileAndItsFolders) {
  TempDir dir;
  const auto file = dir.path() / "a" / "b" / "mail.db";
  auto store = open_store(sqlite_settings(file), OpenMode::create_if_missing);
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(store->schema_version(), 0);
  store->migrate();
  store->close();
  // Now the administration mode finds it.
  auto again = open_store(sqlite_settings(file), OpenMode::existing);
  EXPECT_EQ(again->schema_version(), again->latest_schema_version());
  EXPECT_EQ(again->admin().status().backend, "sqlite");
  EXPECT_EQ(again->admin().status().location, file.string());
}

TEST(SqliteStore, NotADatabaseIsAStoreError) {
  TempDir dir;
  const auto file = dir.path() / "mail.db";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not an SQLite database, just some text long enough to have a header", f);
    std::fclose(f);
  }
  EXPECT_THROW(open_store(sqlite_settings(file), OpenMode::existing), StoreError);
}

TEST(SqliteStore, UsesWalAndTheSchemaVersion) {
  TempDir dir;
  const auto file = dir.path() / "mail.db";
  auto store = open_store(sqlite_settings(file), OpenMode::create_if_missing);
  store->migrate();
  store->close();
  RawDb db(file);
  EXPECT_EQ(db.query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(db.query("PRAGMA user_version"), std::to_string(store->latest_schema_version()));
  EXPECT_EQ(db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
            "aliases\ncounters\ndeliveries\ndomain_policies\ndomains\nmailboxes\nmaildrop_locks\n"
            "messages\npending_recipients\npending_retrievals\npickup_recipients\npickups\n"
            "queue_messages\nqueue_recipients");
}

TEST_F(SqliteMaildrop, AMaildropListingIsOneIndexScan) {
  store_->admin().add_user("bob@example.com", "$y$x");
  close();
  // 10,000 deliveries for alice and 10,000 for bob, interleaved, each with 1 KiB of content.
  exec_raw(
      file_,
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
      "INSERT INTO messages (id, content_hash, size, content, created_at) "
      "SELECT i, printf('%064x', i), 1024, zeroblob(1024), 0 FROM n; "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
      "INSERT INTO deliveries (mailbox_id, message_id, uidl, reverse_path, trace, size, status, "
      "received_at) "
      "SELECT (SELECT id FROM mailboxes WHERE address = CASE i % 2 WHEN 0 THEN 'alice@example.com' "
      "ELSE 'bob@example.com' END), i, printf('%064x', i), '', '', 1024, i % 7 = 0, 0 FROM n;");
  {
    RawDb db(file_);
    // The very statement list() runs: a range of the covering index, in its order, so no
    // row of deliveries (and no message) is read and nothing is sorted.
    const std::string plan =
        db.query("EXPLAIN QUERY PLAN " + std::string(sqlite::maildrop_listing_sql));
    EXPECT_NE(
        plan.find("SEARCH deliveries USING COVERING INDEX deliveries_maildrop (mailbox_id=?)"),
        std::string::npos)
        << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
    EXPECT_EQ(plan.find('\n'), std::string::npos) << plan;  // one step: no join, no subquery
  }
  reopen();
  const auto listed = store_->maildrops().list(alice_);
  ASSERT_EQ(listed.size(), 10'000u);
  for (std::size_t i = 1; i < listed.size(); ++i) ASSERT_LT(listed[i - 1].id, listed[i].id);
}

TEST_F(SqliteMaildrop, TheLockRowCarriesOwnerAndExpiry) {
  const std::int64_t before = unix_seconds();
  ASSERT_TRUE(store_->maildrops().lock(alice_, "node-a/7", std::chrono::seconds(600)));
  const std::int64_t after = unix_seconds();
  close();
  RawDb db(file_);
  const std::string row = db.query("SELECT mailbox_id, owner, expires_at FROM maildrop_locks");
  const auto bar = row.rfind('|');
  ASSERT_NE(bar, std::string::npos) << row;
  EXPECT_EQ(row.substr(0, bar), std::to_string(alice_) + "|node-a/7");
  const std::int64_t expires_at = std::stoll(row.substr(bar + 1));
  EXPECT_GE(expires_at, before + 600);
  EXPECT_LE(expires_at, after + 600);
}

TEST_F(SqliteMaildrop, AnExpiredLockIsTakenOverWithoutWaiting) {
  ASSERT_TRUE(store_->maildrops().lock(alice_, "crashed", std::chrono::seconds(600)));
  close();
  // Still held through the second it expires in; expired the second after.
  exec_raw(file_, "UPDATE maildrop_locks SET expires_at = " + std::to_string(unix_seconds() + 100));
  reopen();
  EXPECT_FALSE(store_->maildrops().lock(alice_, "other", std::chrono::seconds(60)));
  close();
  exec_raw(file_, "UPDATE maildrop_locks SET expires_at = " + std::to_string(unix_seconds() - 1));
  reopen();
  EXPECT_TRUE(store_->maildrops().lock(alice_, "other", std::chrono::seconds(60)));
  EXPECT_FALSE(store_->maildrops().lock(alice_, "crashed", std::chrono::seconds(60)));
}

// A failure inside finish()'s transaction, injected with a trigger, leaves everything as it was.
TEST_F(SqliteMaildrop, FinishIsAtomic) {
  std::vector<DeliveryId> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(deliver("Subject: " + std::to_string(i) + "\r\n\r\nbody\r\n"));
  ASSERT_TRUE(store_->maildrops().lock(alice_, "session", std::chrono::seconds(600)));

  const std::vector<std::string> failures = {
      // the last step, releasing the lock, fails after every status was raised
      "CREATE TRIGGER injected BEFORE DELETE ON maildrop_locks BEGIN SELECT RAISE(ABORT, "
      "'injected'); END",
      // the last deletion fails after the retrievals and the first deletion
      "CREATE TRIGGER injected BEFORE UPDATE OF status ON deliveries WHEN NEW.id = " +
          std::to_string(ids[2]) + " BEGIN SELECT RAISE(ABORT, 'injected'); END",
  };
  for (const auto& trigger : failures) {
    close();
    exec_raw(file_, "DROP TRIGGER IF EXISTS injected; " + trigger);
    reopen();
    try {
      store_->maildrops().finish(alice_, "session", {ids[0]}, {ids[1], ids[2]});
      ADD_FAILURE() << "finish did not fail with " << trigger;
    } catch (const StoreError& error) {
      EXPECT_NE(std::string(error.what()).find("injected"), std::string::npos) << error.what();
    }
    for (DeliveryId id : ids) EXPECT_EQ(status_of(id), DeliveryStatus::fresh) << trigger;
    EXPECT_EQ(store_->maildrops().list(alice_).size(), 3u);
    EXPECT_FALSE(store_->maildrops().lock(alice_, "other", std::chrono::seconds(60))) << trigger;
  }

  close();
  exec_raw(file_, "DROP TRIGGER injected");
  reopen();
  store_->maildrops().finish(alice_, "session", {ids[0]}, {ids[1], ids[2]});
  EXPECT_EQ(status_of(ids[0]), DeliveryStatus::retrieved);
  EXPECT_EQ(status_of(ids[1]), DeliveryStatus::deleted);
  EXPECT_EQ(status_of(ids[2]), DeliveryStatus::deleted);
  EXPECT_TRUE(store_->maildrops().lock(alice_, "other", std::chrono::seconds(60)));
}

// A store made before maildrop locks existed (version 1) gains them by `mailctl db migrate`.
TEST_F(SqliteMaildrop, MigratesAVersionOneStore) {
  const DeliveryId id = deliver("Subject: old\r\n\r\nkept\r\n");
  const auto uidl = store_->maildrops().list(alice_).at(0).uidl;
  close();
  // Everything later migrations added goes, so that they can run again.
  exec_raw(file_, undo_reverse_migration + undo_queue_migration +
                      "DROP TABLE maildrop_locks; PRAGMA user_version = 1;");
  reopen();
  EXPECT_EQ(store_->schema_version(), 1);
  EXPECT_GE(store_->latest_schema_version(), 2);
  store_->migrate();
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_TRUE(store_->maildrops().lock(alice_, "session", std::chrono::seconds(60)));
  const auto listed = store_->maildrops().list(alice_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, id);
  EXPECT_EQ(listed[0].uidl, uidl);
}

TEST(SqliteStore, StatusOnlyGrows) {
  TempDir dir;
  const auto file = dir.path() / "mail.db";
  auto store = open_store(sqlite_settings(file), OpenMode::create_if_missing);
  store->migrate();
  store->admin().add_domain("example.com");
  store->admin().add_user("alice@example.com", "$y$x");
  const auto alice = store->directory().resolve("alice@example.com").mailboxes.at(0);
  NewMessage message;
  message.mailboxes = {alice};
  message.content = "Subject: s\r\n\r\nb\r\n";
  const auto id = store->mail().deliver(message).deliveries.at(0);
  store->close();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  const std::string set = "UPDATE deliveries SET status = ";
  const std::string where = " WHERE id = " + std::to_string(id);
  EXPECT_EQ(sqlite3_exec(db, (set + "2" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, (set + "1" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, (set + "3" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

// ---- the outbound queue -------------------------------------------------------------------

NewMessage local_and_outbound(MailboxId mailbox, const std::string& content) {
  NewMessage message;
  message.reverse_path = "alice@example.com";
  message.mailboxes = {mailbox};
  message.trace = "Received: by test\r\n";
  message.content = content;
  message.outbound = {{"bob@remote.test", 0, ""}, {"carol@other.test", 0, ""}};
  message.outbound_trace = "Received: by test\r\n";
  return message;
}

// A failure at the very end of acceptance (the last queued recipient), injected with a
// trigger, leaves neither the local deliveries nor the queue entry nor the content.
TEST_F(SqliteMaildrop, AcceptanceIsAtomicAcrossLocalAndQueuedParts) {
  const std::vector<std::string> failures = {
      "CREATE TRIGGER injected BEFORE INSERT ON queue_recipients WHEN NEW.address = "
      "'carol@other.test' BEGIN SELECT RAISE(ABORT, 'injected'); END",
      "CREATE TRIGGER injected BEFORE INSERT ON queue_messages BEGIN SELECT RAISE(ABORT, "
      "'injected'); END",
  };
  for (const auto& trigger : failures) {
    close();
    exec_raw(file_, "DROP TRIGGER IF EXISTS injected; " + trigger);
    reopen();
    try {
      store_->mail().deliver(local_and_outbound(alice_, "Subject: atomic\r\n\r\nx\r\n"));
      ADD_FAILURE() << "deliver did not fail with " << trigger;
    } catch (const StoreError& error) {
      EXPECT_NE(std::string(error.what()).find("injected"), std::string::npos) << error.what();
    }
    const StoreStatus status = store_->admin().status();
    EXPECT_EQ(status.messages, 0) << trigger;
    EXPECT_EQ(status.deliveries, 0) << trigger;
    EXPECT_EQ(status.queued, 0) << trigger;
    EXPECT_TRUE(store_->queue_admin().list({}).empty()) << trigger;
  }
  close();
  exec_raw(file_, "DROP TRIGGER injected");
  reopen();
  const StoredMessage stored =
      store_->mail().deliver(local_and_outbound(alice_, "Subject: atomic\r\n\r\nx\r\n"));
  EXPECT_EQ(stored.deliveries.size(), 1u);
  EXPECT_EQ(store_->queue_admin().get(stored.queued.value()).value().recipients.size(), 2u);
}

// send_notice is one transaction: when clearing the notice fails, the notice was not accepted.
TEST_F(SqliteMaildrop, SendNoticeIsAtomic) {
  NewMessage message = local_and_outbound(alice_, "Subject: doomed\r\n\r\nx\r\n");
  message.mailboxes.clear();
  const QueueId id = store_->mail().deliver(message).queued.value();
  std::vector<RecipientResult> results;
  for (const DeliveryJob& job :
       store_->delivery_queue().claim("owner", std::chrono::seconds(60), 10)) {
    for (const QueueRecipient& recipient : job.message.recipients) {
      results.push_back(
          {recipient.id, RecipientResult::Kind::failed, UnixTime{}, "550 no", "mx", true, false});
    }
  }
  ASSERT_EQ(store_->delivery_queue().record("owner", results), 2u);
  const auto owed = store_->delivery_queue().notices_owed(10).at(0).recipients;
  close();
  exec_raw(file_,
           "CREATE TRIGGER injected BEFORE UPDATE OF notice_owed ON queue_recipients BEGIN "
           "SELECT RAISE(ABORT, 'injected'); END");
  reopen();
  NewMessage notice;
  notice.mailboxes = {alice_};
  notice.content = "Subject: failure notice\r\n\r\n";
  EXPECT_THROW(store_->delivery_queue().send_notice({owed[0].id, owed[1].id}, notice), StoreError);
  EXPECT_TRUE(store_->maildrops().list(alice_).empty());
  EXPECT_EQ(store_->delivery_queue().notices_owed(10).at(0).recipients.size(), 2u);
  EXPECT_TRUE(store_->queue_admin().get(id));
}

TEST_F(SqliteMaildrop, AClaimIsOneRangeOfTheDueIndex) {
  close();
  // 20,000 recipients: most delivered or failed, many deferred to the future, 100 due.
  exec_raw(
      file_,
      "INSERT INTO messages (id, content_hash, size, content, created_at) "
      "VALUES (1, printf('%064x', 1), 1, 'x', 0); "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
      "INSERT INTO queue_messages (id, message_id, reverse_path, outbound_trace, size, queued_at) "
      "SELECT i, 1, 'a@example.com', '', 1, i FROM n; "
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) "
      "INSERT INTO queue_recipients (queue_id, address, domain, state, next_attempt) "
      "SELECT i / 10 + 1, 'r' || i || '@remote.test', 'remote.test', "
      "CASE WHEN i % 200 = 0 THEN 0 WHEN i % 3 = 0 THEN 0 ELSE 1 + i % 2 END, "
      "CASE WHEN i % 200 = 0 THEN 0 ELSE 4000000000 END FROM n;");
  {
    RawDb db(file_);
    const std::string plan = db.query("EXPLAIN QUERY PLAN " + std::string(sqlite::queue_due_sql));
    EXPECT_NE(plan.find("USING INDEX queue_recipients_due (next_attempt<?)"), std::string::npos)
        << plan;
    EXPECT_EQ(plan.find("SCAN queue_recipients"), std::string::npos) << plan;
  }
  reopen();
  const auto jobs = store_->delivery_queue().claim("owner", std::chrono::seconds(60), 1000);
  std::size_t leased = 0;
  for (const DeliveryJob& job : jobs) leased += job.message.recipients.size();
  EXPECT_EQ(leased, 100u);
  EXPECT_EQ(jobs.size(), 100u);  // one due recipient per message
  for (std::size_t i = 1; i < jobs.size(); ++i)
    ASSERT_LT(jobs[i - 1].message.id, jobs[i].message.id);
}

// A store made before the queue existed (version 2) gains it by `mailctl db migrate`.
TEST_F(SqliteMaildrop, MigratesAVersionTwoStore) {
  const DeliveryId id = deliver("Subject: old\r\n\r\nkept\r\n");
  close();
  exec_raw(file_, undo_reverse_migration + undo_queue_migration + "PRAGMA user_version = 2;");
  reopen();
  EXPECT_EQ(store_->schema_version(), 2);
  store_->migrate();
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_TRUE(store_->admin().get_mail(id));
  const StoredMessage stored =
      store_->mail().deliver(local_and_outbound(alice_, "Subject: new\r\n\r\nqueued\r\n"));
  EXPECT_TRUE(stored.queued);
  EXPECT_EQ(store_->admin().status().queued, 2);
}

TEST(SqliteStore, AQueuedRecipientsStateOnlyGrows) {
  TempDir dir;
  const auto file = dir.path() / "mail.db";
  auto store = open_store(sqlite_settings(file), OpenMode::create_if_missing);
  store->migrate();
  NewMessage message;
  message.content = "Subject: s\r\n\r\nb\r\n";
  message.outbound = {{"bob@remote.test", 0, ""}};
  const QueueId id = store->mail().deliver(message).queued.value();
  store->close();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  const std::string set = "UPDATE queue_recipients SET state = ";
  const std::string where = " WHERE queue_id = " + std::to_string(id);
  EXPECT_EQ(sqlite3_exec(db, (set + "1" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, (set + "0" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, (set + "2" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, (set + "1" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, (set + "3" + where).c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

}  // namespace
}  // namespace maild::store::testing
