// Schema versions in PRAGMA user_version; migrations embedded at build time from sql/sqlite/.
// Trust: the migration SQL is ours; another process (mailctl, a second maild) may migrate
// concurrently.
#include <string>

#include "store/migration.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {

int schema_version(Connection& connection) {
  return static_cast<int>(connection.query_int("PRAGMA user_version"));
}

int latest_schema_version() {
  auto migrations = embedded_migrations();
  return migrations.empty() ? 0 : migrations.back().version;
}

void apply_migrations(Connection& connection) {
  const int current = schema_version(connection);
  if (current > latest_schema_version()) {
    throw StoreError("store " + connection.path().string() + " is at schema version " +
                     std::to_string(current) + ", newer than this build's " +
                     std::to_string(latest_schema_version()) + "; upgrade maild");
  }
  for (const Migration& migration : embedded_migrations()) {
    // IMMEDIATE takes the write lock first, so the version read below cannot go stale.
    connection.exec("BEGIN IMMEDIATE");
    try {
      if (schema_version(connection) < migration.version) {
        connection.exec(migration.sql);
        // user_version lives in the file header and commits with the migration.
        connection.exec("PRAGMA user_version = " + std::to_string(migration.version));
      }
      connection.exec("COMMIT");
    } catch (const std::exception& error) {
      if (connection.in_transaction()) {
        try {
          connection.exec("ROLLBACK");
        } catch (...) {
        }
      }
      throw StoreError("migration " + std::to_string(migration.version) + " (" +
                       std::string(migration.name) + ") failed: " + error.what());
    }
  }
}

}  // namespace maild::store::sqlite
