// The SQLite store handle: opens the file, owns the writer and the read pool, and closes them in
// order. Trust: the file is ours (created with WAL); a missing or unreadable one is reported with
// its path.
#include "store/sqlite/sqlite_store.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace maild::store::sqlite {

namespace {

// Creates the store file 0600, and its missing folders 0750, owned by `owner`
// when root creates them for a service user.
void create_store_file(const std::filesystem::path& path, const std::string& owner) {
  const passwd* entry = nullptr;
  if (geteuid() == 0 && !owner.empty()) {
    entry = getpwnam(owner.c_str());
    if (entry == nullptr) throw StoreError("server.user: no such user: " + owner);
  }
  std::vector<std::filesystem::path> created;  // the folders this call makes, outermost last
  std::error_code error;
  for (auto folder = path.parent_path(); !folder.empty() && !std::filesystem::exists(folder, error);
       folder = folder.parent_path()) {
    created.push_back(folder);
    if (folder == folder.parent_path()) break;
  }
  for (auto folder = created.rbegin(); folder != created.rend(); ++folder) {
    if (mkdir(folder->c_str(), 0750) != 0 && errno != EEXIST)
      throw StoreError("cannot create the store's folder " + folder->string() + ": " +
                       std::strerror(errno));
  }
  const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST)
    throw StoreError("cannot create the store " + path.string() + ": " + std::strerror(errno));
  if (fd >= 0) close(fd);
  if (entry == nullptr) return;
  created.insert(created.begin(), path);
  for (const auto& item : created) {
    if (chown(item.c_str(), entry->pw_uid, entry->pw_gid) != 0)
      throw StoreError("cannot give " + item.string() + " to " + owner + ": " +
                       std::strerror(errno));
  }
}

}  // namespace

std::unique_ptr<Store> open_store(const std::filesystem::path& path, OpenMode mode,
                                  std::size_t read_connections, const std::string& owner) {
  std::error_code error;
  const bool exists = std::filesystem::exists(path, error);
  if (mode == OpenMode::existing && !exists) {
    throw StoreError("store " + path.string() + " does not exist (run: mailctl db migrate)");
  }
  if (!exists) create_store_file(path, owner);
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
