// The conformance suite instantiated for MySQL (on a private MariaDB server, a database per
// test), plus what only this backend has: the database and its engine, the query plan of a
// maildrop listing, ASCII-only case folding, the primary's checks, endpoint roles, lost
// connections, and failures injected with triggers.
#include "store/mysql/mysql_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "conformance.hpp"
#include "maild/config/settings.hpp"
#include "maild/store/replication.hpp"
#include "mysql_server.hpp"
#include "store/mysql/endpoints.hpp"

namespace maild::store::testing {
namespace {

using namespace std::chrono_literals;

// The database that lives in `dir`: named in a file there the first time, so that the same folder
// opens the same database again (also from a forked child).
std::string database_for(const std::filesystem::path& dir) {
  const auto file = dir / "mysql-database";
  std::string name;
  if (std::ifstream in(file); in && std::getline(in, name) && !name.empty()) return name;
  name = fresh_database();
  std::ofstream(file) << name << "\n";
  return name;
}

BackendUnderTest mysql_backend() {
  BackendUnderTest backend{"MariaDB", [](const std::filesystem::path& dir) {
                             return open_store(mysql_settings(database_for(dir)),
                                               OpenMode::create_if_missing);
                           }};
  backend.group_commit = false;
  return backend;
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values(mysql_backend()),
                         backend_name);

std::string query_text(mysql::Connection& db, const std::string& sql) {
  return db.query_text(sql).value_or("");
}

// Every row's columns joined by '|', rows joined by '\n'.
std::string query_rows(mysql::Connection& db, const std::string& sql) {
  std::string out;
  for (const auto& row : db.query_rows(sql)) {
    if (!out.empty()) out += "\n";
    for (std::size_t c = 0; c < row.size(); ++c) out += (c ? "|" : "") + row[c];
  }
  return out;
}

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A migrated store in a database of its own with alice@example.com, and a second connection to
// that database for what the test does behind the store's back.
class MysqlStore : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store(mysql_settings(database_), OpenMode::create_if_missing);
    store_->migrate();
    store_->admin().add_domain("example.com");
    store_->admin().add_user("alice@example.com", "$y$x");
    alice_ = store_->directory().account("alice@example.com").value().mailbox;
    raw_ = admin_connection(database_);
    raw_->exec("SET SESSION max_recursive_iterations = 100000");  // for WITH RECURSIVE
  }
  void TearDown() override {
    if (store_) store_->close();
  }
  void reopen() {
    if (store_) store_->close();
    store_ = open_store(mysql_settings(database_), OpenMode::existing);
  }
  NewMessage message_for(const std::string& content) const {
    NewMessage message;
    message.mailboxes = {alice_};
    message.trace = "Received: by test\r\n";
    message.content = content;
    return message;
  }
  DeliveryId deliver(const std::string& content) {
    return store_->mail().deliver(message_for(content)).deliveries.at(0);
  }
  DeliveryStatus status_of(DeliveryId id) {
    return store_->admin().get_mail(id).value().summary.status;
  }
  // KILL for every connection the store has open to its database, from another one.
  int kill_store_connections() {
    int killed = 0;
    const auto own = std::to_string(raw_->id());
    for (const auto& row :
         raw_->query_rows("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '" + database_ +
                          "' AND ID <> " + own)) {
      raw_->exec("KILL CONNECTION " + row.at(0));
      ++killed;
    }
    return killed;
  }

  std::string database_ = fresh_database();
  std::unique_ptr<Store> store_;
  std::unique_ptr<mysql::Connection> raw_;  // made after the store created the database
  MailboxId alice_ = 0;
};

// ---- opening, the database, the schema ----------------------------------------------------

TEST(MysqlStoreOpen, OpeningAMissingDatabaseForAdministrationFails) {
  const std::string name = fresh_database();
  try {
    open_store(mysql_settings(name), OpenMode::existing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    const MariadbServer& server = mariadb();
    EXPECT_EQ(std::string(error.what()), "mysql database " + name + " on " + server.host + ":" +
                                             std::to_string(server.port) +
                                             " does not exist (run: mailctl db migrate)");
  }
  auto db = admin_connection();
  EXPECT_EQ(query_text(*db,
                       "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                       "SCHEMA_NAME = '" +
                           name + "'"),
            "0");
}

TEST(MysqlStoreOpen, CreatesTheDatabaseThenMigrates) {
  const std::string name = fresh_database();
  auto store = open_store(mysql_settings(name), OpenMode::create_if_missing);
  EXPECT_EQ(store->schema_version(), 0);
  store->migrate();
  store->close();
  auto again = open_store(mysql_settings(name), OpenMode::existing);
  EXPECT_EQ(again->schema_version(), again->latest_schema_version());
  const StoreStatus status = again->admin().status();
  EXPECT_EQ(status.backend, "mysql");
  EXPECT_EQ(status.location, mariadb().host + ":" + std::to_string(mariadb().port) + "/" + name);
  again->close();

  auto db = admin_connection(name);
  EXPECT_EQ(query_text(*db,
                       "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                       "WHERE SCHEMA_NAME = DATABASE()"),
            "utf8mb4");
  EXPECT_EQ(query_rows(*db,
                       "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM "
                       "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                       "ORDER BY BINARY TABLE_NAME"),
            "aliases|InnoDB|utf8mb4_bin\n"
            "counters|InnoDB|utf8mb4_bin\n"
            "deliveries|InnoDB|utf8mb4_bin\n"
            "domain_policies|InnoDB|utf8mb4_bin\n"
            "domains|InnoDB|utf8mb4_bin\n"
            "mailboxes|InnoDB|utf8mb4_bin\n"
            "maildrop_locks|InnoDB|utf8mb4_bin\n"
            "messages|InnoDB|utf8mb4_bin\n"
            "pending_recipients|InnoDB|utf8mb4_bin\n"
            "pending_retrievals|InnoDB|utf8mb4_bin\n"
            "pickup_recipients|InnoDB|utf8mb4_bin\n"
            "pickups|InnoDB|utf8mb4_bin\n"
            "queue_messages|InnoDB|utf8mb4_bin\n"
            "queue_recipients|InnoDB|utf8mb4_bin\n"
            "schema_migrations|InnoDB|utf8mb4_bin");
  EXPECT_EQ(query_rows(*db, "SELECT version, name FROM schema_migrations ORDER BY version"),
            "1|initial\n2|maildrop_locks\n3|queue\n4|reverse\n5|pending_by_client");
  EXPECT_EQ(query_rows(*db,
                       "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE "
                       "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'messages' AND "
                       "COLUMN_NAME = 'content'"),
            "longblob");
}

TEST(MysqlStoreOpen, AStoreWithATableOfAnotherEngineIsRefused) {
  const std::string name = fresh_database();
  open_store(mysql_settings(name), OpenMode::create_if_missing)->migrate();
  admin_connection(name)->exec("CREATE TABLE notes (id INT PRIMARY KEY) ENGINE=MyISAM");
  try {
    open_store(mysql_settings(name), OpenMode::existing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("tables that are not InnoDB (notes)"),
              std::string::npos)
        << error.what();
  }
}

TEST(MysqlStoreOpen, MigrationsRunConcurrentlyFromManyProcessesOnce) {
  const std::string name = fresh_database();
  open_store(mysql_settings(name), OpenMode::create_if_missing)->close();
  std::vector<std::future<void>> migrators;
  for (int i = 0; i < 4; ++i) {
    migrators.push_back(std::async(std::launch::async, [&] {
      auto store = open_store(mysql_settings(name), OpenMode::existing);
      store->migrate();
      store->close();
    }));
  }
  for (auto& migrator : migrators) EXPECT_NO_THROW(migrator.get());
  EXPECT_EQ(query_text(*admin_connection(name), "SELECT COUNT(*) FROM schema_migrations"),
            std::to_string(mysql::latest_schema_version()));
}

// Takes a store back to schema version 3: what migration 4 (SOURCE/GET) added is gone.
void drop_version_four(mysql::Connection& raw) {
  raw.exec(
      "DROP TABLE pending_recipients, pending_retrievals, pickup_recipients, pickups, "
      "domain_policies, counters");
  raw.exec("DROP TRIGGER domains_drop_unverified_policy");
  raw.exec("ALTER TABLE deliveries DROP COLUMN verified");
  raw.exec("DELETE FROM schema_migrations WHERE version >= 4");
}

// A store made before maildrop locks existed (version 1) gains them by `mailctl db migrate`.
TEST_F(MysqlStore, MigratesAVersionOneStore) {
  const DeliveryId id = deliver("Subject: old\r\n\r\nkept\r\n");
  const auto uidl = store_->maildrops().list(alice_).at(0).uidl;
  store_->close();
  drop_version_four(*raw_);
  raw_->exec("DROP TABLE queue_recipients, queue_messages, maildrop_locks");
  raw_->exec("DELETE FROM schema_migrations WHERE version >= 2");
  reopen();
  EXPECT_EQ(store_->schema_version(), 1);
  store_->migrate();
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_TRUE(store_->maildrops().lock(alice_, "session", 60s));
  const auto listed = store_->maildrops().list(alice_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, id);
  EXPECT_EQ(listed[0].uidl, uidl);
}

// DDL cannot roll back in MySQL: a migration that stopped half-way is finished by the next run.
TEST_F(MysqlStore, AHalfAppliedMigrationCompletesWhenRunAgain) {
  store_->mail().deliver(message_for("Subject: kept\r\n\r\nb\r\n"));
  raw_->exec("UPDATE deliveries SET verified = 1");
  raw_->exec("DROP TRIGGER deliveries_status_only_grows");
  raw_->exec("DROP TRIGGER domains_drop_unverified_policy");
  raw_->exec("DROP TABLE queue_recipients, queue_messages, maildrop_locks, counters");
  raw_->exec("DELETE FROM schema_migrations");  // as if migration 1 failed at its last statement
  EXPECT_EQ(store_->schema_version(), 0);
  store_->migrate();  // every statement again, those that had taken effect included
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_EQ(query_rows(*raw_,
                       "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                       "TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME"),
            "deliveries_status_only_grows\ndomains_drop_unverified_policy\n"
            "pending_retrievals_state_only_grows\npickups_state_only_grows\n"
            "queue_recipients_state_only_grows");
  EXPECT_TRUE(store_->directory().account("alice@example.com"));  // nothing was lost
  EXPECT_TRUE(store_->admin().list_mail(0, std::nullopt).at(0).verified);
  store_->reverse_admin().add_counter(counter::get_fetched, 1);
  EXPECT_EQ(store_->reverse_admin().stats().counters.at(counter::get_fetched), 1);
}

TEST_F(MysqlStore, ANewerSchemaIsRefused) {
  raw_->exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  try {
    store_->migrate();
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("schema version 999, newer than this build's"),
              std::string::npos)
        << error.what();
  }
}

TEST(MysqlMigrations, SplitsLikeTheMysqlClient) {
  const auto statements = mysql::split_statements(
      "-- a comment; with a semicolon\n"
      "CREATE TABLE t (a VARCHAR(10) DEFAULT 'x;y', b INT); # another; comment\n"
      "/* a block; comment */ INSERT INTO t VALUES ('it''s; \\' here', 1);\n"
      "DELIMITER //\n"
      "CREATE TRIGGER g BEFORE UPDATE ON t FOR EACH ROW BEGIN\n"
      "  IF NEW.b < OLD.b THEN SIGNAL SQLSTATE '45000'; END IF;\n"
      "END//\n"
      "delimiter ;\n"
      "SELECT `odd;name` FROM t;\n"
      "  \n");
  ASSERT_EQ(statements.size(), 4u);
  EXPECT_EQ(statements[0], "CREATE TABLE t (a VARCHAR(10) DEFAULT 'x;y', b INT)");
  EXPECT_EQ(statements[1], "INSERT INTO t VALUES ('it''s; \\' here', 1)");
  EXPECT_EQ(statements[2],
            "CREATE TRIGGER g BEFORE UPDATE ON t FOR EACH ROW BEGIN\n"
            "  IF NEW.b < OLD.b THEN SIGNAL SQLSTATE '45000'; END IF;\n"
            "END");
  EXPECT_EQ(statements[3], "SELECT `odd;name` FROM t");
  EXPECT_TRUE(mysql::split_statements("  -- nothing\n").empty());
}

// ---- addresses ------------------------------------------------------------------------------

// Only ASCII letters fold, as on SQLite: é and É are different, and neither is e.
TEST_F(MysqlStore, AddressesFoldAsciiOnly) {
  store_->admin().add_user("jos\xc3\xa9@example.com", "$y$x");
  store_->admin().add_user("jose@example.com", "$y$x");  // utf8mb4_general_ci would refuse this
  const auto accented = store_->directory().account("JOS\xc3\xa9@Example.com");
  ASSERT_TRUE(accented);
  EXPECT_EQ(accented->address, "jos\xc3\xa9@example.com");
  EXPECT_FALSE(store_->directory().account("jos\xc3\x89@example.com"));  // É: another mailbox
  EXPECT_EQ(store_->directory().account("JOSE@example.com").value().address, "jose@example.com");
  EXPECT_THROW(store_->admin().add_user("JOS\xc3\xa9@example.com", "$y$x"), StoreConflict);
  store_->admin().add_alias("info@example.com", "Jos\xc3\xa9@example.com");
  EXPECT_THROW(store_->admin().add_alias("INFO@example.com", "jos\xc3\xa9@EXAMPLE.com"),
               StoreConflict);
  EXPECT_EQ(store_->directory().resolve("Info@example.com").mailboxes,
            std::vector<MailboxId>{accented->mailbox});
  // A four-byte character survives the round trip (utf8mb4, not MySQL's three-byte utf8).
  store_->admin().add_user("mail\xf0\x9f\x93\xac@example.com", "$y$x");
  EXPECT_TRUE(store_->directory().account("MAIL\xf0\x9f\x93\xac@example.com"));
}

// ---- maildrops --------------------------------------------------------------------------------

TEST_F(MysqlStore, AMaildropListingIsOneIndexRange) {
  store_->admin().add_user("bob@example.com", "$y$x");
  // 10,000 deliveries for alice and 10,000 for bob, interleaved.
  raw_->exec(
      "INSERT INTO messages (id, content_hash, size, content, created_at) "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
      "SELECT i + 1000, LPAD(HEX(i), 64, '0'), 1024, REPEAT('x', 1024), 0 FROM n");
  raw_->exec(
      "INSERT INTO deliveries (mailbox_id, message_id, uidl, reverse_path, trace, size, status, "
      "received_at) "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
      "SELECT (SELECT id FROM mailboxes WHERE address = IF(i % 2 = 0, 'alice@example.com', "
      "'bob@example.com')), i + 1000, LPAD(HEX(i), 64, '0'), '', '', 1024, i % 7 = 0, 0 FROM n");
  raw_->exec("ANALYZE TABLE deliveries");
  // The very statement list() runs: a range of the covering index in its order, so no row of
  // deliveries (and no message) is read and nothing is sorted.
  std::string sql(mysql::maildrop_listing_sql);
  sql.replace(sql.find('?'), 1, std::to_string(alice_));
  const auto plan = raw_->query_rows("EXPLAIN " + sql);
  ASSERT_EQ(plan.size(), 1u);  // one table: no join, no subquery
  const std::string row = query_rows(*raw_, "EXPLAIN " + sql);
  EXPECT_NE(row.find("deliveries_maildrop"), std::string::npos) << row;
  EXPECT_NE(row.find("Using index"), std::string::npos) << row;
  EXPECT_EQ(row.find("filesort"), std::string::npos) << row;
  EXPECT_EQ(row.find("temporary"), std::string::npos) << row;

  const auto listed = store_->maildrops().list(alice_);
  ASSERT_EQ(listed.size(), 10'000u);  // every seventh is retrieved: still listed
  for (std::size_t i = 1; i < listed.size(); ++i) ASSERT_LT(listed[i - 1].id, listed[i].id);
}

TEST_F(MysqlStore, TheLockRowCarriesOwnerAndExpiry) {
  const std::int64_t before = unix_seconds();
  ASSERT_TRUE(store_->maildrops().lock(alice_, "node-a/7", 600s));
  const std::int64_t after = unix_seconds();
  const auto rows = raw_->query_rows("SELECT mailbox_id, owner, expires_at FROM maildrop_locks");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], std::to_string(alice_));
  EXPECT_EQ(rows[0][1], "node-a/7");
  const std::int64_t expires_at = std::stoll(rows[0][2]);
  EXPECT_GE(expires_at, before + 600);
  EXPECT_LE(expires_at, after + 600);
}

TEST_F(MysqlStore, AnExpiredLockIsTakenOverWithoutWaiting) {
  ASSERT_TRUE(store_->maildrops().lock(alice_, "crashed", 600s));
  // Still held through the second it expires in; expired the second after.
  raw_->exec("UPDATE maildrop_locks SET expires_at = " + std::to_string(unix_seconds() + 100));
  EXPECT_FALSE(store_->maildrops().lock(alice_, "other", 60s));
  raw_->exec("UPDATE maildrop_locks SET expires_at = " + std::to_string(unix_seconds() - 1));
  EXPECT_TRUE(store_->maildrops().lock(alice_, "other", 60s));
  EXPECT_FALSE(store_->maildrops().lock(alice_, "crashed", 60s));
  EXPECT_EQ(query_text(*raw_, "SELECT owner FROM maildrop_locks"), "other");
}

// A failure inside finish()'s transaction, injected with a trigger, leaves everything as it was.
TEST_F(MysqlStore, FinishIsAtomic) {
  std::vector<DeliveryId> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(deliver("Subject: " + std::to_string(i) + "\r\n\r\nb\r\n"));
  ASSERT_TRUE(store_->maildrops().lock(alice_, "session", 600s));

  const std::vector<std::string> failures = {
      // the last step, releasing the lock, fails after every status was raised
      "CREATE TRIGGER injected BEFORE DELETE ON maildrop_locks FOR EACH ROW "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'",
      // the last deletion fails after the retrievals and the first deletion
      "CREATE TRIGGER injected BEFORE UPDATE ON deliveries FOR EACH ROW "
      "IF NEW.id = " +
          std::to_string(ids[2]) +
          " AND NEW.status = 2 THEN "
          "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'; END IF",
  };
  for (const auto& trigger : failures) {
    raw_->exec("DROP TRIGGER IF EXISTS injected");
    raw_->exec(trigger);
    try {
      store_->maildrops().finish(alice_, "session", {ids[0]}, {ids[1], ids[2]});
      ADD_FAILURE() << "finish did not fail with " << trigger;
    } catch (const StoreError& error) {
      EXPECT_NE(std::string(error.what()).find("injected"), std::string::npos) << error.what();
    }
    for (DeliveryId id : ids) EXPECT_EQ(status_of(id), DeliveryStatus::fresh) << trigger;
    EXPECT_EQ(store_->maildrops().list(alice_).size(), 3u);
    EXPECT_FALSE(store_->maildrops().lock(alice_, "other", 60s)) << trigger;
  }

  raw_->exec("DROP TRIGGER injected");
  store_->maildrops().finish(alice_, "session", {ids[0]}, {ids[1], ids[2]});
  EXPECT_EQ(status_of(ids[0]), DeliveryStatus::retrieved);
  EXPECT_EQ(status_of(ids[1]), DeliveryStatus::deleted);
  EXPECT_EQ(status_of(ids[2]), DeliveryStatus::deleted);
  EXPECT_TRUE(store_->maildrops().lock(alice_, "other", 60s));
}

// A whole maildrop deleted at QUIT: more ids than one statement takes.
TEST_F(MysqlStore, FinishTakesThousandsOfDeletions) {
  raw_->exec(
      "INSERT INTO messages (id, content_hash, size, content, created_at) "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) "
      "SELECT i + 1000, LPAD(HEX(i), 64, '0'), 1, 'x', 0 FROM n");
  raw_->exec(
      "INSERT INTO deliveries (mailbox_id, message_id, uidl, reverse_path, trace, size, "
      "received_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) "
      "SELECT " +
      std::to_string(alice_) + ", i + 1000, LPAD(HEX(i), 64, '0'), '', '', 1, 0 FROM n");
  std::vector<DeliveryId> ids;
  for (const auto& entry : store_->maildrops().list(alice_)) ids.push_back(entry.id);
  ASSERT_EQ(ids.size(), 1200u);
  store_->maildrops().finish(alice_, "session", {ids.begin(), ids.begin() + 600}, ids);
  EXPECT_TRUE(store_->maildrops().list(alice_).empty());
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM deliveries WHERE status = 2"), "1200");
}

TEST_F(MysqlStore, StatusOnlyGrows) {
  const DeliveryId id = deliver("Subject: s\r\n\r\nb\r\n");
  const std::string where = " WHERE id = " + std::to_string(id);
  raw_->exec("UPDATE deliveries SET status = 2" + where);
  EXPECT_THROW(raw_->exec("UPDATE deliveries SET status = 1" + where), mysql::MysqlError);
  EXPECT_THROW(raw_->exec("UPDATE deliveries SET status = 3" + where), mysql::MysqlError);
  EXPECT_EQ(query_text(*raw_, "SELECT status FROM deliveries" + where), "2");
}

// ---- the outbound queue ---------------------------------------------------------------------

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
TEST_F(MysqlStore, AcceptanceIsAtomicAcrossLocalAndQueuedParts) {
  const std::vector<std::string> failures = {
      "CREATE TRIGGER injected BEFORE INSERT ON queue_recipients FOR EACH ROW "
      "IF NEW.address = 'carol@other.test' THEN "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'; END IF",
      "CREATE TRIGGER injected BEFORE INSERT ON queue_messages FOR EACH ROW "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'",
  };
  for (const auto& trigger : failures) {
    raw_->exec("DROP TRIGGER IF EXISTS injected");
    raw_->exec(trigger);
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
  raw_->exec("DROP TRIGGER injected");
  const StoredMessage stored =
      store_->mail().deliver(local_and_outbound(alice_, "Subject: atomic\r\n\r\nx\r\n"));
  EXPECT_EQ(stored.deliveries.size(), 1u);
  EXPECT_EQ(store_->queue_admin().get(stored.queued.value()).value().recipients.size(), 2u);
}

// send_notice is one transaction: when clearing the notice fails, the notice was not accepted.
TEST_F(MysqlStore, SendNoticeIsAtomic) {
  NewMessage message = local_and_outbound(alice_, "Subject: doomed\r\n\r\nx\r\n");
  message.mailboxes.clear();
  const QueueId id = store_->mail().deliver(message).queued.value();
  std::vector<RecipientResult> results;
  for (const DeliveryJob& job : store_->delivery_queue().claim("owner", 60s, 10)) {
    for (const QueueRecipient& recipient : job.message.recipients) {
      results.push_back(
          {recipient.id, RecipientResult::Kind::failed, UnixTime{}, "550 no", "mx", true, false});
    }
  }
  ASSERT_EQ(store_->delivery_queue().record("owner", results), 2u);
  const auto owed = store_->delivery_queue().notices_owed(10).at(0).recipients;
  raw_->exec(
      "CREATE TRIGGER injected BEFORE UPDATE ON queue_recipients FOR EACH ROW "
      "IF NEW.notice_owed <> OLD.notice_owed THEN "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'; END IF");
  NewMessage notice;
  notice.mailboxes = {alice_};
  notice.content = "Subject: failure notice\r\n\r\n";
  EXPECT_THROW(store_->delivery_queue().send_notice({owed[0].id, owed[1].id}, notice), StoreError);
  EXPECT_TRUE(store_->maildrops().list(alice_).empty());
  EXPECT_EQ(store_->delivery_queue().notices_owed(10).at(0).recipients.size(), 2u);
  EXPECT_TRUE(store_->queue_admin().get(id));
}

// What other servers and clients sent is kept byte for byte, valid UTF-8 or not.
TEST_F(MysqlStore, QueuedEnvelopesAndRepliesKeepTheirOctets) {
  NewMessage message = local_and_outbound(alice_, "Subject: octets\r\n\r\nx\r\n");
  message.envid = "id-\xff\xfe-\x01";
  message.outbound = {{"bob@remote.test", notify_failure,
                       "utf-8;b\xc3\xb6"
                       "b@remote.test\xff"}};
  const QueueId id = store_->mail().deliver(message).queued.value();
  const auto leased =
      store_->delivery_queue().claim("owner", 60s, 10).at(0).message.recipients.at(0);
  RecipientResult failed{leased.id,
                         RecipientResult::Kind::failed,
                         UnixTime{},
                         "550 5.1.1 \xe9"
                         "chec \xff\r\n",
                         "mx.remote.test",
                         true,
                         false};
  ASSERT_EQ(store_->delivery_queue().record("owner", {failed}), 1u);
  const auto queued = store_->queue_admin().get(id).value();
  EXPECT_EQ(queued.envid, message.envid);
  EXPECT_EQ(queued.recipients.at(0).orcpt, message.outbound[0].orcpt);
  EXPECT_EQ(queued.recipients.at(0).last_reply, failed.reply);
  EXPECT_EQ(store_->queue_admin().bounce(id, "5.0.0 \xff"), 0u);  // nothing queued is left
}

TEST_F(MysqlStore, AClaimReadsOnlyDueRecipientsAndLocksOnlyWhatItTakes) {
  // 20,000 recipients: most delivered or failed, many deferred to the future, 100 due.
  raw_->exec(
      "INSERT INTO messages (id, content_hash, size, content, created_at) "
      "VALUES (1000, LPAD('1', 64, '0'), 1, 'x', 0)");
  raw_->exec(
      "INSERT INTO queue_messages (id, message_id, reverse_path, envid, outbound_trace, size, "
      "queued_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
      "SELECT i, 1000, 'a@example.com', '', '', 1, i FROM n");
  raw_->exec(
      "INSERT INTO queue_recipients (queue_id, address, address_key, domain, state, "
      "next_attempt, last_reply) "
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) "
      "SELECT i DIV 10 + 1, CONCAT('r', i, '@remote.test'), CONCAT('r', i, '@remote.test'), "
      "'remote.test', CASE WHEN i % 200 = 0 THEN 0 WHEN i % 3 = 0 THEN 0 ELSE 1 + i % 2 END, "
      "CASE WHEN i % 200 = 0 THEN 0 ELSE 4000000000 END, '' FROM n");
  raw_->exec("ANALYZE TABLE queue_recipients");
  std::string due(mysql::queue_due_sql);
  for (const char* value : {"1000", "1000", "400"}) due.replace(due.find('?'), 1, value);
  const std::string plan = query_rows(*raw_, "EXPLAIN " + due);
  EXPECT_NE(plan.find("queue_recipients_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("ALL"), std::string::npos) << plan;  // not a scan of the table

  std::string take = std::string(mysql::queue_take_sql_head) + "5,1,3,2,4" +
                     std::string(mysql::queue_take_sql_tail);
  for (const char* value : {"1000", "1000", "2"}) take.replace(take.find('?'), 1, value);
  const std::string take_plan = query_rows(*raw_, "EXPLAIN " + take);
  EXPECT_NE(take_plan.find("PRIMARY"), std::string::npos) << take_plan;
  EXPECT_EQ(take_plan.find("filesort"), std::string::npos) << take_plan;  // LIMIT stops the scan

  const auto jobs = store_->delivery_queue().claim("owner", 60s, 1000);
  std::size_t leased = 0;
  for (const DeliveryJob& job : jobs) leased += job.message.recipients.size();
  EXPECT_EQ(leased, 100u);
  EXPECT_EQ(jobs.size(), 100u);  // one due recipient per message
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    ASSERT_LT(jobs[i - 1].message.id, jobs[i].message.id);
  }
}

// While one claimer holds its rows (its transaction still open), another takes the next ones
// at once instead of waiting for it.
TEST_F(MysqlStore, AClaimSkipsRowsAnotherClaimerHolds) {
  std::vector<OutboundRecipient> recipients;
  for (int i = 0; i < 6; ++i)
    recipients.push_back({"r" + std::to_string(i) + "@remote.test", 0, ""});
  NewMessage message = local_and_outbound(alice_, "Subject: skip\r\n\r\nx\r\n");
  message.outbound = recipients;
  const QueueId id = store_->mail().deliver(message).queued.value();
  const auto all = store_->queue_admin().get(id).value().recipients;
  raw_->exec("START TRANSACTION");
  // One row each (by its key): a locking scan of this small table would take every row.
  for (int i = 0; i < 2; ++i) {
    raw_->exec("SELECT id FROM queue_recipients WHERE id = " +
               std::to_string(all[static_cast<std::size_t>(i)].id) + " FOR UPDATE");
  }
  const auto start = std::chrono::steady_clock::now();
  const auto jobs = store_->delivery_queue().claim("other", 60s, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not a lock wait
  std::vector<std::string> taken;
  for (const auto& recipient : jobs.at(0).message.recipients) taken.push_back(recipient.address);
  EXPECT_EQ(taken, (std::vector<std::string>{"r2@remote.test", "r3@remote.test"}));
  raw_->exec("ROLLBACK");
}

TEST_F(MysqlStore, AQueuedRecipientsStateOnlyGrows) {
  NewMessage message = local_and_outbound(alice_, "Subject: s\r\n\r\nb\r\n");
  const QueueId id = store_->mail().deliver(message).queued.value();
  const std::string set = "UPDATE queue_recipients SET state = ";
  const std::string where = " WHERE queue_id = " + std::to_string(id);
  raw_->exec(set + "1" + where);
  EXPECT_THROW(raw_->exec(set + "0" + where), mysql::MysqlError);
  raw_->exec(set + "2" + where);
  EXPECT_THROW(raw_->exec(set + "1" + where), mysql::MysqlError);
  EXPECT_THROW(raw_->exec(set + "3" + where), mysql::MysqlError);
}

// A store made before the queue existed (version 2) gains it by `mailctl db migrate`.
TEST_F(MysqlStore, MigratesAVersionTwoStore) {
  const DeliveryId id = deliver("Subject: old\r\n\r\nkept\r\n");
  store_->close();
  drop_version_four(*raw_);
  raw_->exec("DROP TABLE queue_recipients, queue_messages");
  raw_->exec("DROP TRIGGER IF EXISTS queue_recipients_state_only_grows");
  raw_->exec("DELETE FROM schema_migrations WHERE version = 3");
  reopen();
  EXPECT_EQ(store_->schema_version(), 2);
  EXPECT_EQ(store_->admin().status().queued, 0);
  store_->migrate();
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_TRUE(store_->admin().get_mail(id));
  const StoredMessage stored =
      store_->mail().deliver(local_and_outbound(alice_, "Subject: new\r\n\r\nqueued\r\n"));
  EXPECT_TRUE(stored.queued);
  EXPECT_EQ(store_->admin().status().queued, 2);
}

// ---- SOURCE/GET -------------------------------------------------------------------------------

// The n-th token of a test: 32 lowercase hex digits.
std::string token_for(int n) {
  std::string token = std::to_string(n);
  return std::string(32 - token.size(), '0') + token;
}

NewRetrieval retrieval_for(MailboxId mailbox, const std::string& token,
                           const std::string& sender = "someone@origin.test") {
  NewRetrieval retrieval;
  retrieval.token = token;
  retrieval.reverse_path = sender;
  retrieval.recipients = {{"alice@example.com", {mailbox}}};
  retrieval.client_address = "192.0.2.1";
  retrieval.helo = "mx.origin.test";
  retrieval.trace = "Received: from mx.origin.test\r\n";
  return retrieval;
}

NewPickup pickup_for(const std::string& token) {
  NewPickup pickup;
  pickup.token = token;
  pickup.reverse_path = "alice@example.com";
  pickup.recipients = {{"bob@dest.test", "dest.test", 0, ""}};
  pickup.outbound_trace = "Received: by test\r\n";
  pickup.content = "Subject: offered\r\n\r\nx\r\n";
  return pickup;
}

// Waits (up to 10 s) until another connection of this test runs a statement that starts with
// `prefix` (a user sees its own connections in PROCESSLIST).
bool running_elsewhere(mysql::Connection& raw, const std::string& prefix) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (raw.query_int("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> " +
                      std::to_string(raw.id()) + " AND INFO LIKE '" + prefix + "%'") > 0)
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A store made before SOURCE/GET (version 3) gains its tables by `mailctl db migrate`; what was
// delivered before is not verified.
TEST_F(MysqlStore, MigratesAVersionThreeStore) {
  const DeliveryId id = deliver("Subject: old\r\n\r\nkept\r\n");
  store_->close();
  drop_version_four(*raw_);
  reopen();
  EXPECT_EQ(store_->schema_version(), 3);
  store_->migrate();
  EXPECT_EQ(store_->schema_version(), store_->latest_schema_version());
  EXPECT_FALSE(store_->admin().get_mail(id).value().summary.verified);
  EXPECT_EQ(
      store_->retrieval_intake().add_retrieval(retrieval_for(alice_, token_for(1)), 10, 10).outcome,
      RetrievalAdded::Outcome::added);
  store_->reverse_admin().set_policy({"example.com", config::UnverifiedPolicy::reject, {}});
  store_->admin().delete_domain("example.com");
  EXPECT_TRUE(store_->reverse_admin().list_policies().empty());
}

// The state rules hold in the database itself, whoever writes.
TEST_F(MysqlStore, RetrievalAndPickupStatesOnlyGrow) {
  const RetrievalId retrieval =
      store_->retrieval_intake().add_retrieval(retrieval_for(alice_, token_for(1)), 10, 10).id;
  const std::string retrieval_row = " WHERE id = " + std::to_string(retrieval);
  raw_->exec("UPDATE pending_retrievals SET state = 2" + retrieval_row);
  EXPECT_THROW(raw_->exec("UPDATE pending_retrievals SET state = 0" + retrieval_row),
               mysql::MysqlError);
  EXPECT_THROW(raw_->exec("UPDATE pending_retrievals SET state = 3" + retrieval_row),
               mysql::MysqlError);

  const PickupId pickup = store_->pickup_offers().create_pickup(pickup_for(token_for(2)));
  const std::string pickup_row = " WHERE id = " + std::to_string(pickup);
  raw_->exec("UPDATE pickups SET state = 3" + pickup_row);
  EXPECT_THROW(raw_->exec("UPDATE pickups SET state = 1" + pickup_row), mysql::MysqlError);
  EXPECT_THROW(raw_->exec("UPDATE pickups SET state = 5" + pickup_row), mysql::MysqlError);
  EXPECT_EQ(query_text(*raw_, "SELECT state FROM pickups" + pickup_row), "3");
}

// What clients and servers sent is kept byte for byte, valid UTF-8 or not.
TEST_F(MysqlStore, SourceGetEnvelopesKeepTheirOctets) {
  NewRetrieval retrieval = retrieval_for(alice_, token_for(1));
  retrieval.helo = "mx.\xff\xfe.test";
  const RetrievalId id = store_->retrieval_intake().add_retrieval(retrieval, 10, 10).id;
  ASSERT_EQ(store_->retrievals().claim_retrievals("w", 60s, 10).size(), 1u);
  const std::string reply = "451 4.3.0 \xe9tat \xff\r\n";
  ASSERT_TRUE(store_->retrievals().defer_retrieval("w", id, UnixTime{}, reply));
  const PendingRetrieval stored = store_->reverse_admin().list_retrievals(1).at(0);
  EXPECT_EQ(stored.helo, retrieval.helo);
  EXPECT_EQ(stored.last_error, reply);

  NewPickup pickup = pickup_for(token_for(2));
  pickup.envid = "id-\xff\x01";
  pickup.recipients[0].orcpt =
      "utf-8;b\xc3\xb6"
      "b@dest.test\xff";
  store_->pickup_offers().create_pickup(pickup);
  const Pickup found = store_->pickup_window().find_pickup(token_for(2)).value();
  EXPECT_EQ(found.envid, pickup.envid);
  EXPECT_EQ(found.recipients.at(0).orcpt, pickup.recipients[0].orcpt);
}

// Finishing a retrieval is one transaction: when its very last step (counting it) fails,
// nothing was delivered and the retrieval is still pending under the worker's lease.
TEST_F(MysqlStore, FinishingARetrievalIsAtomic) {
  const RetrievalId id =
      store_->retrieval_intake().add_retrieval(retrieval_for(alice_, token_for(1)), 10, 10).id;
  ASSERT_EQ(store_->retrievals().claim_retrievals("w", 60s, 10).size(), 1u);
  raw_->exec(
      "CREATE TRIGGER injected BEFORE INSERT ON counters FOR EACH ROW "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'");
  try {
    store_->retrievals().finish_retrieval("w", id, message_for("Subject: fetched\r\n\r\nx\r\n"));
    ADD_FAILURE() << "finish_retrieval did not fail";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("injected"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(store_->maildrops().list(alice_).empty());
  EXPECT_EQ(store_->admin().status().messages, 0);
  PendingRetrieval left = store_->reverse_admin().list_retrievals(1).at(0);
  EXPECT_EQ(left.state, RetrievalState::pending);
  EXPECT_EQ(left.lease_owner, "w");

  raw_->exec("DROP TRIGGER injected");
  const StoredMessage stored =
      store_->retrievals().finish_retrieval("w", id, message_for("Subject: fetched\r\n\r\nx\r\n"));
  EXPECT_TRUE(store_->admin().get_mail(stored.deliveries.at(0)).value().summary.verified);
  EXPECT_EQ(store_->reverse_admin().list_retrievals(1).at(0).state, RetrievalState::fetched);
}

// Expiring a pickup is one transaction with its notice: a failure leaves no notice and the
// pickup awaiting, so the next round sends exactly one.
TEST_F(MysqlStore, ExpiringAPickupIsAtomic) {
  const PickupId id = store_->pickup_offers().create_pickup(pickup_for(token_for(1)));
  ASSERT_TRUE(store_->pickup_offers().confirm_pickup(id));
  raw_->exec(
      "CREATE TRIGGER injected BEFORE INSERT ON counters FOR EACH ROW "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected'");
  const NewMessage notice = message_for("Subject: Undelivered Mail\r\n\r\nnever fetched\r\n");
  EXPECT_THROW(store_->pickup_keeping().expire_pickup(id, notice), StoreError);
  EXPECT_TRUE(store_->maildrops().list(alice_).empty());
  EXPECT_EQ(store_->pickup_window().find_pickup(token_for(1)).value().state, PickupState::awaiting);
  raw_->exec("DROP TRIGGER injected");
  EXPECT_TRUE(store_->pickup_keeping().expire_pickup(id, notice));
  EXPECT_EQ(store_->maildrops().list(alice_).size(), 1u);
}

// A SOURCE that another node recorded between our look and our INSERT (the INSERT waited for
// its commit) is answered as if we had seen it: the same retrieval, or a token taken. A pickup
// token taken that way is refused like any taken one.
TEST_F(MysqlStore, ATokenRecordedMeanwhileByAnotherNodeIsKnown) {
  struct Case {
    std::string token, recorded_by;
    RetrievalAdded::Outcome outcome;
  };
  for (const Case& c :
       {Case{token_for(1), "someone@origin.test", RetrievalAdded::Outcome::already_added},
        Case{token_for(2), "mallory@evil.test", RetrievalAdded::Outcome::token_taken}}) {
    raw_->exec("START TRANSACTION");
    raw_->exec(
        "INSERT INTO pending_retrievals (token, reverse_path, sender_domain, client_address, helo, "
        "trace, received_at, next_attempt, last_error) VALUES ('" +
        c.token + "', '" + c.recorded_by + "', 'origin.test', '', '', '', 0, 0, '')");
    const std::int64_t theirs = raw_->query_int("SELECT LAST_INSERT_ID()");
    auto attempt = std::async(std::launch::async, [&] {
      return store_->retrieval_intake().add_retrieval(retrieval_for(alice_, c.token), 10, 10);
    });
    // Its lookup is done once it inserts; the INSERT waits for this transaction.
    EXPECT_TRUE(running_elsewhere(*raw_, "INSERT INTO pending_retrievals"));
    raw_->exec("COMMIT");
    const RetrievalAdded added = attempt.get();
    EXPECT_EQ(added.outcome, c.outcome) << c.recorded_by;
    if (c.outcome == RetrievalAdded::Outcome::already_added) {
      EXPECT_EQ(added.id, theirs);
    }
  }
  EXPECT_EQ(store_->reverse_admin().list_retrievals(10).size(), 2u);
  EXPECT_EQ(store_->reverse_admin().stats().counters.at(counter::source_accepted), 0);

  raw_->exec("START TRANSACTION");
  raw_->exec(
      "INSERT INTO pickups (token, outbound_trace, size, reverse_path, arrival, created_at) "
      "VALUES ('" +
      token_for(3) + "', '', 0, '', 0, 0)");
  auto attempt = std::async(std::launch::async, [&] {
    return store_->pickup_offers().create_pickup(pickup_for(token_for(3)));
  });
  EXPECT_TRUE(running_elsewhere(*raw_, "INSERT INTO pickups"));
  raw_->exec("COMMIT");
  EXPECT_THROW(attempt.get(), StoreConflict);
}

// While one claimer holds a row (its transaction still open), another takes the next ones at
// once, in sender-domain order, instead of waiting for it.
TEST_F(MysqlStore, ARetrievalClaimSkipsRowsAnotherClaimerHolds) {
  std::vector<RetrievalId> ids;  // alpha.test twice, then beta.test twice: the claim order
  for (int i = 0; i < 4; ++i) {
    const std::string sender = std::string(i < 2 ? "a@alpha" : "b@beta") + ".test";
    ids.push_back(store_->retrieval_intake()
                      .add_retrieval(retrieval_for(alice_, token_for(i + 1), sender), 10, 10)
                      .id);
  }
  raw_->exec("START TRANSACTION");
  raw_->exec("SELECT id FROM pending_retrievals WHERE id = " + std::to_string(ids[0]) +
             " FOR UPDATE");
  const auto start = std::chrono::steady_clock::now();
  const auto claimed = store_->retrievals().claim_retrievals("other", 60s, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not a lock wait
  std::vector<RetrievalId> taken;
  for (const auto& r : claimed) taken.push_back(r.id);
  EXPECT_EQ(taken, (std::vector<RetrievalId>{ids[1], ids[2]}));
  raw_->exec("ROLLBACK");
  EXPECT_EQ(store_->retrievals().claim_retrievals("other", 60s, 10).size(), 2u);  // ids[0], ids[3]
}

// Nodes claiming at once (each its own store, as maild nodes sharing the database): every due
// retrieval is leased to exactly one of them.
TEST_F(MysqlStore, ConcurrentRetrievalClaimsNeverShareARow) {
  constexpr int retrievals = 300;
  raw_->exec(
      "INSERT INTO pending_retrievals (token, reverse_path, sender_domain, client_address, helo, "
      "trace, received_at, next_attempt, last_error) "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
      std::to_string(retrievals) +
      ") SELECT LPAD(i, 32, '0'), 'a@origin.test', CONCAT('d', i % 5, '.test'), '', '', '', i, 0, "
      "'' FROM n");
  raw_->exec(
      "INSERT INTO pending_recipients (retrieval_id, address, mailbox_id) "
      "SELECT id, 'alice@example.com', " +
      std::to_string(alice_) + " FROM pending_retrievals");
  constexpr int nodes = 4;
  std::vector<std::future<std::vector<RetrievalId>>> claimers;
  for (int node = 0; node < nodes; ++node) {
    claimers.push_back(std::async(std::launch::async, [this, node] {
      auto store = open_store(mysql_settings(database_), OpenMode::existing);
      const std::string owner = "node" + std::to_string(node);
      std::vector<RetrievalId> mine;
      for (;;) {
        const auto claimed = store->retrievals().claim_retrievals(owner, 600s, 7);
        if (claimed.empty()) break;
        for (const auto& r : claimed) {
          EXPECT_EQ(r.lease_owner, owner);
          EXPECT_EQ(r.recipients.size(), 1u);
          mine.push_back(r.id);
        }
      }
      store->close();
      return mine;
    }));
  }
  std::set<RetrievalId> leased;
  std::size_t total = 0;
  for (auto& claimer : claimers) {
    const auto mine = claimer.get();
    total += mine.size();
    leased.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(total, static_cast<std::size_t>(retrievals));  // nobody got a row twice
  EXPECT_EQ(leased.size(), static_cast<std::size_t>(retrievals));
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM pending_retrievals WHERE lease_owner = ''"),
            "0");
}

// claim_retrievals() reads its candidates from the due index, however many finished or
// deferred retrievals the table holds, and takes each by its key.
TEST_F(MysqlStore, ARetrievalClaimReadsOnlyDueRows) {
  // 20,000 retrievals: most fetched or failed, many deferred to the future, 100 due.
  raw_->exec(
      "INSERT INTO pending_retrievals (token, reverse_path, sender_domain, client_address, helo, "
      "trace, received_at, state, next_attempt, last_error) "
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) "
      "SELECT LPAD(i, 32, '0'), 'a@origin.test', CONCAT('d', i % 50, '.test'), '', '', '', i, "
      "CASE WHEN i % 200 = 0 THEN 0 WHEN i % 3 = 0 THEN 0 ELSE 1 + i % 2 END, "
      "CASE WHEN i % 200 = 0 THEN 0 ELSE 4000000000 END, '' FROM n");
  raw_->exec("ANALYZE TABLE pending_retrievals");
  std::string due(mysql::retrieval_due_sql);
  for (const char* value : {"1000", "1000", "400"}) due.replace(due.find('?'), 1, value);
  const std::string plan = query_rows(*raw_, "EXPLAIN " + due);
  EXPECT_NE(plan.find("pending_retrievals_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("ALL"), std::string::npos) << plan;  // not a scan of the table
  std::string take(mysql::retrieval_take_sql);
  for (const char* value : {"1", "1000", "1000"}) take.replace(take.find('?'), 1, value);
  const std::string take_plan = query_rows(*raw_, "EXPLAIN " + take);
  EXPECT_NE(take_plan.find("PRIMARY"), std::string::npos) << take_plan;

  const auto claimed = store_->retrievals().claim_retrievals("w", 60s, 1000);
  EXPECT_EQ(claimed.size(), 100u);
  for (std::size_t i = 1; i < claimed.size(); ++i)
    ASSERT_LE(claimed[i - 1].sender_domain, claimed[i].sender_domain);
}

// Counters are rows every node adds to: concurrent increments are never lost.
TEST_F(MysqlStore, CountersAddUpUnderConcurrentWriters) {
  std::vector<std::future<void>> writers;
  for (int i = 0; i < 8; ++i) {
    writers.push_back(std::async(std::launch::async, [this] {
      for (int n = 0; n < 25; ++n) store_->reverse_admin().add_counter(counter::pickups_served, 1);
    }));
  }
  for (auto& writer : writers) writer.get();
  EXPECT_EQ(store_->reverse_admin().stats().counters.at(counter::pickups_served), 200);
}

// ---- the primary's checks -----------------------------------------------------------------

TEST(MysqlStoreChecks, AMaxAllowedPacketBelowTheMessageSizeStopsTheStore) {
  config::Settings settings = mysql_settings(fresh_database());
  settings.smtp.max_message_size = ByteSize{200 * 1024 * 1024};
  try {
    open_store(settings, OpenMode::create_if_missing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("max_allowed_packet is 64M, less than the 201M a message of [smtp] "
                        "max_message_size needs"),
              std::string::npos)
        << error.what();
  }
}

TEST(MysqlStoreChecks, SemiSyncRequiredButOffStopsTheStore) {
  config::Settings settings = mysql_settings(fresh_database());
  settings.mysql.semi_sync = true;
  try {
    open_store(settings, OpenMode::create_if_missing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("semi-synchronous replication is off on this primary "
                        "(rpl_semi_sync_master_enabled)"),
              std::string::npos)
        << error.what();
  }
}

TEST(MysqlStoreChecks, OldServersAndMissingInnodbAreNamed) {
  mysql::ServerFacts facts;
  facts.version = "10.5.23-MariaDB";
  facts.mariadb = true;
  facts.major = 10;
  facts.minor = 5;
  facts.innodb = "NO";
  facts.max_allowed_packet = 64u << 20;
  auto reasons = mysql::unmet(facts, {36u << 20, false});
  ASSERT_EQ(reasons.size(), 2u);
  EXPECT_EQ(
      reasons[0],
      "the server is 10.5.23-MariaDB; maild needs MariaDB 10.6 or later, or MySQL 8.0 or later");
  EXPECT_EQ(reasons[1], "InnoDB is not available (ENGINES says 'NO'); maild's tables need it");

  facts = {};
  facts.version = "5.7.44-log";
  facts.major = 5;
  facts.minor = 7;
  facts.innodb = "DEFAULT";
  facts.max_allowed_packet = 64u << 20;
  EXPECT_EQ(mysql::unmet(facts, {36u << 20, false}).size(), 1u);
  facts.major = 8;
  facts.minor = 0;
  EXPECT_TRUE(mysql::unmet(facts, {36u << 20, false}).empty());
  reasons = mysql::unmet(facts, {36u << 20, true});
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_NE(reasons[0].find("rpl_semi_sync_source_enabled"), std::string::npos);
}

TEST(MysqlStoreChecks, ThePasswordComesFromItsFile) {
  TempDir dir;
  config::MysqlSettings settings;
  settings.password = "in-the-config";
  EXPECT_EQ(mysql::read_password(settings), "in-the-config");
  settings.password_file = dir.path() / "password";
  std::ofstream(settings.password_file) << "from-the-file\r\nsecond line\n";
  EXPECT_EQ(mysql::read_password(settings), "from-the-file");
  settings.password_file = dir.path() / "missing";
  EXPECT_THROW(mysql::read_password(settings), StoreError);
}

// ---- endpoints and roles --------------------------------------------------------------------

TEST(MysqlEndpoints, TheWritableEndpointIsFoundAmongDeadOnes) {
  const MariadbServer& server = mariadb();
  config::Settings settings = mysql_settings(fresh_database());
  // Port 1 on loopback: nobody listens there, the connection is refused at once.
  settings.mysql.endpoints = {{"127.0.0.1", 1}, {server.host, server.port}};
  auto store = open_store(settings, OpenMode::create_if_missing);
  store->migrate();
  EXPECT_EQ(
      store->admin().status().location.rfind(server.host + ":" + std::to_string(server.port), 0),
      0u);
  store->close();

  settings.mysql.endpoints = {{"127.0.0.1", 1}};
  try {
    open_store(settings, OpenMode::existing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("mysql: no writable endpoint (127.0.0.1:1: "),
              std::string::npos)
        << error.what();
  }
}

// The same server listed twice looks like two primaries: maild refuses to pick one.
TEST(MysqlEndpoints, TwoWritableEndpointsAreRefused) {
  const MariadbServer& server = mariadb();
  config::Settings settings = mysql_settings(fresh_database());
  settings.mysql.endpoints = {{server.host, server.port}, {"localhost", server.port}};
  try {
    open_store(settings, OpenMode::create_if_missing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("more than one writable endpoint"), std::string::npos)
        << error.what();
  }
}

TEST(MysqlEndpoints, ASurveySaysWhatEachEndpointIs) {
  const MariadbServer& server = mariadb();
  mysql::ConnectionSettings settings;
  settings.user = server.user;
  settings.password = server.password;
  const auto states = mysql::survey({{server.host, server.port}, {"127.0.0.1", 1}}, settings);
  ASSERT_EQ(states.size(), 2u);
  ASSERT_TRUE(states[0].facts);
  EXPECT_TRUE(states[0].facts->mariadb);
  EXPECT_FALSE(states[0].facts->read_only);
  EXPECT_EQ(states[0].facts->max_allowed_packet, 64u << 20);
  EXPECT_EQ(states[0].describe().rfind(
                server.host + ":" + std::to_string(server.port) + ": writable MariaDB 10.", 0),
            0u)
      << states[0].describe();
  EXPECT_FALSE(states[1].facts);
  EXPECT_NE(states[1].error.find("cannot connect to 127.0.0.1:1"), std::string::npos);
}

// Each commit's GTID is kept in [store] path's folder; an endpoint whose history lacks the kept
// position is refused, at open as later. Here the position is made to name a server id this
// server never had, at the same sequence number: a diverged server looks like that.
TEST(MysqlEndpoints, AnEndpointWithoutTheCommittedPositionIsRefused) {
  const MariadbServer& server = mariadb();
  const auto folder = std::filesystem::temp_directory_path() /
                      ("maild-position-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  config::Settings settings = mysql_settings(fresh_database());
  settings.store.path = folder / "mail.db";
  const auto file = folder / "mysql-gtid-position";
  {
    auto store = open_store(settings, OpenMode::create_if_missing);
    store->migrate();
    store->admin().add_domain("example.com");
    store->close();
  }
  const auto committed = replication::read_committed_position(file);
  ASSERT_TRUE(committed);
  ASSERT_EQ(committed->entries.size(), 1u) << committed->to_string();
  auto raw = admin_connection();
  EXPECT_EQ(committed->entries[0].server,
            static_cast<std::uint32_t>(raw->query_int("SELECT @@GLOBAL.server_id")));
  // At or before the server's position: other tests may write to this server meanwhile.
  EXPECT_TRUE(replication::GtidPosition::parse(
                  raw->query_text("SELECT @@GLOBAL.gtid_binlog_pos").value_or(""))
                  .covers(*committed));

  auto foreign = *committed;
  foreign.entries[0].server = 4242;
  std::ofstream(file) << foreign.to_string() << "\n";
  try {
    open_store(settings, OpenMode::existing);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("refusing to write to " + server.host + ":" + std::to_string(server.port)),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("(" + foreign.to_string() + ";"), std::string::npos)
        << error.what();
  }
  std::ofstream(file) << committed->to_string() << "\n";
  EXPECT_NO_THROW(open_store(settings, OpenMode::existing)->close());
  std::filesystem::remove_all(folder);
}

// ---- lost connections ---------------------------------------------------------------------

// Connections killed while idle in the pool: the next read and the next write get new ones.
TEST_F(MysqlStore, ConnectionsKilledWhileIdleAreReplaced) {
  deliver("Subject: before\r\n\r\nb\r\n");
  ASSERT_GT(kill_store_connections(), 0);
  EXPECT_EQ(store_->maildrops().list(alice_).size(), 1u);
  ASSERT_GT(kill_store_connections(), 0);
  EXPECT_NO_THROW(deliver("Subject: after\r\n\r\nb\r\n"));
  EXPECT_EQ(store_->maildrops().list(alice_).size(), 2u);
}

// A connection lost in the middle of a delivery's transaction: a StoreError (SMTP says 451),
// nothing of it stored, and the client's retry stores it once.
TEST_F(MysqlStore, AConnectionLostInsideADeliveryFailsItAndTheRetryStoresItOnce) {
  // The delivery row's insert waits a while: long enough to kill the connection meanwhile.
  raw_->exec(
      "CREATE TRIGGER slow BEFORE INSERT ON deliveries FOR EACH ROW "
      "IF NEW.reverse_path = 'slow@remote.test' THEN DO SLEEP(3); END IF");
  NewMessage message = message_for("Subject: killed\r\n\r\nb\r\n");
  message.reverse_path = "slow@remote.test";
  auto attempt = std::async(std::launch::async, [&] { return store_->mail().deliver(message); });
  // Kill it once it is inside the transaction (the message row is in, the delivery row waits).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  int killed = 0;
  while (killed == 0 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& row : raw_->query_rows(
             "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND "
             "INFO = 'DO SLEEP(3)'")) {  // the trigger's statement, inside the delivery
      raw_->exec("KILL CONNECTION " + row.at(0));
      ++killed;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(killed, 1);
  EXPECT_THROW(attempt.get(), StoreError);
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM deliveries"), "0");
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM messages"), "0");

  raw_->exec("DROP TRIGGER slow");
  const StoredMessage first = store_->mail().deliver(message);
  const StoredMessage again = store_->mail().deliver(message);  // a retry after a lost 250
  EXPECT_EQ(again.deliveries, first.deliveries);
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM deliveries"), "1");
}

// Two connections delivering the same new content at once: one waits for the other's row
// lock (or deadlocks and is run again); both end with the same message and one delivery.
TEST_F(MysqlStore, ConcurrentDeliveriesOfOneMessageStoreItOnce) {
  constexpr int senders = 12;
  std::vector<std::future<StoredMessage>> attempts;
  for (int i = 0; i < senders; ++i) {
    attempts.push_back(std::async(std::launch::async, [&] {
      return store_->mail().deliver(message_for("Subject: same\r\n\r\nsame\r\n"));
    }));
  }
  std::vector<StoredMessage> results;
  for (auto& attempt : attempts) ASSERT_NO_THROW(results.push_back(attempt.get()));
  for (const auto& result : results) EXPECT_EQ(result.deliveries, results[0].deliveries);
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM deliveries"), "1");
  EXPECT_EQ(query_text(*raw_, "SELECT COUNT(*) FROM messages"), "1");
}

}  // namespace
}  // namespace maild::store::testing
