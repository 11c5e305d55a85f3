// The store factory: picks the configured backend.
// Trust: the settings were validated on load; backend errors surface as StoreError.
#include <algorithm>

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
      return sqlite::open_store(settings.store.path, mode, readers);
    }
    case config::StoreBackend::mysql:
      return mysql::open_store(settings, mode);
  }
  throw StoreError("unknown store backend in the settings");
}

void read_secrets(config::Settings& settings) {
  if (settings.store.backend != config::StoreBackend::mysql) return;
  if (settings.mysql.password_file.empty()) return;
  settings.mysql.password = mysql::read_password(settings.mysql);
  settings.mysql.password_file.clear();
}

}  // namespace maild::store
