// The MySQL store handle: reads the password, finds and checks the primary, owns the pool and the
// delivery threads, and closes them in order.
// Trust: mail.conf was validated on load; the password file is the administrator's, read once.
#include "store/mysql/mysql_store.hpp"

#include <fstream>

namespace maild::store::mysql {
namespace {

// A message's trace lines and the statement around it; far more than either needs.
constexpr std::uint64_t packet_headroom = 1024 * 1024;

}  // namespace

std::string read_password(const config::MysqlSettings& settings) {
  if (settings.password_file.empty()) return settings.password;
  std::ifstream file(settings.password_file);
  std::string line;
  if (!file || !std::getline(file, line)) {
    throw StoreError("cannot read [mysql] password_file " + settings.password_file.string());
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::uint64_t required_packet(const config::Settings& settings) {
  return settings.smtp.max_message_size.bytes + packet_headroom;
}

std::unique_ptr<Store> open_store(const config::Settings& settings, OpenMode mode) {
  ConnectionSettings connection;
  connection.user = settings.mysql.user;
  connection.password = read_password(settings.mysql);
  connection.database = settings.mysql.database;
  const Requirements requirements{required_packet(settings), settings.mysql.semi_sync};
  const std::size_t threads = std::max<std::size_t>(settings.store.workers, 1);
  // One connection per store worker, and as many for the deliveries in flight.
  auto pool = std::make_unique<Pool>(settings.mysql.endpoints, std::move(connection), requirements,
                                     2 * threads, replication::committed_position_file(settings));
  pool->open(mode);
  return std::make_unique<MysqlStore>(std::move(pool), threads);
}

MysqlStore::MysqlStore(std::unique_ptr<Pool> pool, std::size_t threads)
    : pool_(std::move(pool)),
      workers_(threads),
      directory_(*pool_),
      mail_(*pool_, workers_),
      maildrops_(*pool_),
      admin_(*pool_),
      queue_(*pool_),
      reverse_(*pool_) {}

MysqlStore::~MysqlStore() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; close() has done what it could.
  }
}

int MysqlStore::schema_version() {
  return pool_->read([](Connection& db) { return mysql::schema_version(db); });
}

int MysqlStore::latest_schema_version() const { return mysql::latest_schema_version(); }

void MysqlStore::migrate() {
  // DDL commits by itself in MySQL, so migrations run outside any transaction of the pool's
  // (apply_migrations serialises migrators with a named lock instead).
  pool_->read([](Connection& db) { apply_migrations(db); });
}

void MysqlStore::close() {
  workers_.close();  // runs the queued deliveries first: every accepted one completes
  pool_->close();
}

}  // namespace maild::store::mysql
