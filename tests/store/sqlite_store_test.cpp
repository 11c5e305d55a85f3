// The conformance suite instantiated for SQLite, plus what only SQLite has: the file,
// its pragmas, the query plan of a maildrop listing, and the factory's errors.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

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

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values(sqlite_backend()), backend_name);

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

TEST(SqliteStore, MysqlIsNotBuiltYet) {
  config::Settings settings;
  settings.store.backend = config::StoreBackend::mysql;
  try {
    open_store(settings);
    FAIL() << "expected a StoreError";
  } catch (const StoreError& error) {
    EXPECT_STREQ(error.what(), "the mysql backend is not built yet");
  }
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
            "aliases\ndeliveries\ndomains\nmailboxes\nmessages");
}

TEST(SqliteStore, AMaildropListingIsOneIndexScan) {
  TempDir dir;
  const auto file = dir.path() / "mail.db";
  auto store = open_store(sqlite_settings(file), OpenMode::create_if_missing);
  store->migrate();
  store->close();
  RawDb db(file);
  const std::string plan = db.query(
      "EXPLAIN QUERY PLAN SELECT id, size, uidl FROM deliveries "
      "WHERE mailbox_id = 1 AND status < 2 ORDER BY id");
  EXPECT_NE(plan.find("USING COVERING INDEX deliveries_maildrop"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;  // no sort step
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

}  // namespace
}  // namespace maild::store::testing
