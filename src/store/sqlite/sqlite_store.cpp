// The SQLite store handle: opens the file, owns the writer and the read pool, and closes them in
// order. Trust: the file is ours (created with WAL); a missing or unreadable one is reported with
// its path.
#include "store/sqlite/sqlite_store.hpp"

#include <system_error>

namespace maild::store::sqlite {

std::unique_ptr<Store> open_store(const std::filesystem::path& path, OpenMode mode,
                                  std::size_t read_connections) {
  std::error_code error;
  const bool exists = std::filesystem::exists(path, error);
  if (mode == OpenMode::existing && !exists) {
    throw StoreError("store " + path.string() + " does not exist (run: mailctl db migrate)");
  }
  if (!exists && path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), error);
    if (error) {
      throw StoreError("cannot create the store's folder " + path.parent_path().string() + ": " +
                       error.message());
    }
  }
  // The write connection creates the file and switches it to WAL before any reader opens it.
  auto writer = std::make_unique<Connection>(path, mode == OpenMode::create_if_missing);
  return std::make_unique<SqliteStore>(path, std::move(writer), read_connections);
}

SqliteStore::SqliteStore(std::filesystem::path path, std::unique_ptr<Connection> write_connection,
                         std::size_t read_connections)
    : path_(std::move(path)),
      reads_(path_, read_connections),
      writer_(std::move(write_connection)),
      directory_(reads_),
      mail_(writer_),
      maildrops_(reads_, writer_),
      admin_(reads_, writer_, path_),
      queue_(reads_, writer_),
      reverse_(reads_, writer_) {}

SqliteStore::~SqliteStore() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; close() has done what it could.
  }
}

int SqliteStore::schema_version() {
  auto db = reads_.lease();
  return sqlite::schema_version(*db);
}

int SqliteStore::latest_schema_version() const { return sqlite::latest_schema_version(); }

void SqliteStore::migrate() {
  // Its own connection: each migration is its own transaction, outside the writer's groups,
  // which simply wait on the busy timeout meanwhile.
  Connection connection(path_, false);
  apply_migrations(connection);
}

void SqliteStore::close() {
  writer_.close();  // drains the queue first: every accepted job completes
  reads_.close();
}

}  // namespace maild::store::sqlite
