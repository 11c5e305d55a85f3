// The store factory: picks the configured backend.
// Trust: the settings were validated on load; backend errors surface as StoreError.
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "maild/store/store.hpp"
#include "store/mysql/mysql_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store {

std::unique_ptr<Store> open_store(const config::Settings& settings, OpenMode mode) {
  switch (settings.store.backend) {
    case config::StoreBackend::sqlite: {
      // Idle read connections kept: one per store worker, plus a few for mailctl and the writer's
      // callers.
      const std::size_t readers = std::max<std::size_t>(settings.store.workers, 1) + 2;
      return sqlite::open_store(settings.store.path, mode, readers, settings.server.user);
    }
    case config::StoreBackend::mysql:
      return mysql::open_store(settings, mode);
  }
  throw StoreError("unknown store backend in the settings");
}

void hand_store_to_service_user(const config::Settings& settings) {
  if (settings.store.backend != config::StoreBackend::sqlite) return;
  if (geteuid() != 0 || settings.server.user.empty()) return;
  const passwd* entry = getpwnam(settings.server.user.c_str());
  if (entry == nullptr) throw StoreError("server.user: no such user: " + settings.server.user);
  const auto& path = settings.store.path;
  for (const auto& file : {path, std::filesystem::path(path.string() + "-wal"),
                           std::filesystem::path(path.string() + "-shm")}) {
    if (chown(file.c_str(), entry->pw_uid, entry->pw_gid) == 0 || errno == ENOENT) continue;
    throw StoreError("cannot give " + file.string() + " to " + settings.server.user + ": " +
                     std::strerror(errno));
  }
}

void read_secrets(config::Settings& settings) {
  if (settings.store.backend != config::StoreBackend::mysql) return;
  if (settings.mysql.password_file.empty()) return;
  settings.mysql.password = mysql::read_password(settings.mysql);
  settings.mysql.password_file.clear();
}

}  // namespace maild::store
