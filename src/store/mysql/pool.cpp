// Connections to the writable endpoint: found at open, looked for again after any connection
// error, handed out one per call, at most `size` at once.
// Trust: only our own bookkeeping; servers may vanish between any two statements.
#include "store/mysql/pool.hpp"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

namespace maild::store::mysql {
namespace {

// While no endpoint is writable, calls fail at once with the last reason, and the endpoints
// are asked again at most this often (each survey may wait a connect timeout per endpoint).
constexpr auto rediscovery_interval = std::chrono::seconds(1);

// How often a write asks whether semi-synchronous replication is still active.
constexpr auto semi_sync_check_interval = std::chrono::seconds(10);

std::int64_t steady_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string quoted_identifier(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`') out += '`';
    out += c;
  }
  return out + "`";
}

}  // namespace

void pause_before_retry(int attempt) {
  thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_int_distribution<int> milliseconds(1, 10 * attempt);
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds(random)));
}

Pool::Pool(std::vector<Endpoint> endpoints, ConnectionSettings settings, Requirements requirements,
           std::size_t size, std::filesystem::path position_file, std::chrono::seconds wait)
    : endpoints_(std::move(endpoints)),
      settings_(std::move(settings)),
      requirements_(requirements),
      size_(std::max<std::size_t>(size, 1)),
      wait_(wait),
      committed_(std::move(position_file)) {}

Pool::~Pool() { close(); }

void Pool::open(OpenMode mode) {
  std::lock_guard search(discovery_);
  if (!committed_.file().empty()) committed_.load();
  const Writable primary = find_primary();
  Connection connection(primary.endpoint, settings_, false);
  auto exists =
      connection.prepare("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?");
  exists->bind_text(1, settings_.database);
  exists->step();
  const bool found = exists->column_int(0) > 0;
  const std::string where =
      "mysql database " + settings_.database + " on " + primary.endpoint.to_string();
  if (!found) {
    if (mode == OpenMode::existing) {
      throw StoreError(where + " does not exist (run: mailctl db migrate)");
    }
    try {
      connection.exec("CREATE DATABASE IF NOT EXISTS " + quoted_identifier(settings_.database) +
                      " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    } catch (const MysqlError& error) {
      throw StoreError("cannot create " + where + ": " + error.what() +
                       " (create it, or grant the [mysql] user CREATE on it)");
    }
  }
  // Tables of another engine would lose committed rows in a crash.
  auto others = connection.prepare(
      "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME SEPARATOR ', ') FROM "
      "information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND "
      "ENGINE <> 'InnoDB'");
  others->bind_text(1, settings_.database);
  others->step();
  if (!others->column_null(0)) {
    throw StoreError(where + " has tables that are not InnoDB (" + others->column_text(0) +
                     "); convert them with ALTER TABLE ... ENGINE=InnoDB");
  }
  std::lock_guard lock(mutex_);
  writable_ = primary.endpoint;
  mariadb_ = primary.facts.mariadb;
  ++generation_;
  last_failure_.clear();
  if (requirements_.semi_sync)
    report_semi_sync(primary.facts.semi_sync_active, primary.endpoint.to_string());
}

Writable Pool::find_primary() {
  try {
    Writable primary = find_writable(endpoints_, settings_, requirements_, committed_.get());
    last_refusal_.clear();
    return primary;
  } catch (const BehindCommitted& error) {
    if (error.what() != last_refusal_) {
      spdlog::error("{} (maild's position is kept in {})", error.what(),
                    committed_.file().string());
    }
    last_refusal_ = error.what();
    throw;
  }
}

void Pool::remember_commit(Connection& connection) {
  if (!mariadb_) return;
  try {
    committed_.advance(connection.query_text("SELECT @@SESSION.last_gtid").value_or(""));
  } catch (const MysqlError& error) {
    if (error.kind == FailureKind::connection) forget_writable(error.what());
    throw MysqlError(
        "mysql: the transaction was committed but its GTID could not be read, so it is not "
        "acknowledged (" +
            std::string(error.what()) + ")",
        error.code, error.kind);
  }
}

void Pool::report_semi_sync(bool active, const std::string& where) {
  next_semi_sync_check_ =
      steady_millis() +
      std::chrono::duration_cast<std::chrono::milliseconds>(semi_sync_check_interval).count();
  const int now = active ? 1 : 0;
  if (semi_sync_state_.exchange(now) == now) return;
  if (active) {
    spdlog::info("mysql: semi-synchronous replication is active on {}", where);
  } else {
    // Refusing mail now would turn the loss of a standby into an outage; keep going, loudly.
    spdlog::warn(
        "mysql: semi-synchronous replication is enabled on {} but inactive (no standby "
        "acknowledges commits): mail is accepted, but it is on the primary alone until a "
        "standby catches up; see mailctl db status",
        where);
  }
}

void Pool::check_semi_sync(Connection& connection) {
  if (!requirements_.semi_sync || steady_millis() < next_semi_sync_check_.load()) return;
  try {
    report_semi_sync(semi_sync_active(connection), connection.endpoint().to_string());
  } catch (const StoreError& error) {
    // The commit is done; a connection lost now shows on its next use.
    spdlog::debug("mysql: cannot ask for the semi-sync status: {}", error.what());
  }
}

void Pool::close() {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    dropped.swap(idle_);
    open_ -= dropped.size();
  }
  freed_.notify_all();
}

std::string Pool::location() const {
  std::lock_guard lock(mutex_);
  if (!writable_) return "";
  return writable_->to_string() + "/" + settings_.database;
}

void Pool::forget_writable(const std::string& why) {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mutex_);
    if (writable_) spdlog::warn("mysql: looking for the writable endpoint again: {}", why);
    writable_.reset();
    ++generation_;
    last_failure_ = why;
    next_discovery_ = {};  // at once: the primary may simply be back on a new connection
    dropped.swap(idle_);
    open_ -= dropped.size();
  }
  freed_.notify_all();
}

void Pool::discover() {
  {
    std::lock_guard lock(mutex_);
    if (writable_) return;  // another call found it while this one waited
    if (std::chrono::steady_clock::now() < next_discovery_) throw StoreError(last_failure_);
  }
  try {
    const Writable primary = find_primary();
    std::lock_guard lock(mutex_);
    writable_ = primary.endpoint;
    mariadb_ = primary.facts.mariadb;
    ++generation_;
    last_failure_.clear();
    spdlog::info("mysql: writing to {} ({})", primary.endpoint.to_string(), primary.facts.version);
    if (requirements_.semi_sync)
      report_semi_sync(primary.facts.semi_sync_active, primary.endpoint.to_string());
  } catch (const StoreError& error) {
    std::lock_guard lock(mutex_);
    last_failure_ = error.what();
    next_discovery_ = std::chrono::steady_clock::now() + rediscovery_interval;
    throw;
  }
}

std::unique_ptr<Connection> Pool::connect(std::uint64_t& generation) {
  std::optional<Endpoint> target;
  {
    std::lock_guard lock(mutex_);
    target = writable_;
    generation = generation_;
  }
  if (!target) {
    std::lock_guard search(discovery_);
    discover();
    std::lock_guard lock(mutex_);
    target = writable_;
    generation = generation_;
    if (!target) throw StoreError(last_failure_);
  }
  try {
    return std::make_unique<Connection>(*target, settings_, true);
  } catch (const MysqlError& error) {
    forget_writable(error.what());
    throw;
  }
}

Pool::Lease Pool::acquire() {
  std::uint64_t generation = 0;
  {
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + wait_;
    for (;;) {
      if (closed_) throw StoreError("mysql: the store is closed");
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(connection), generation_);
      }
      if (open_ < size_) break;
      if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && open_ >= size_ &&
          idle_.empty()) {
        throw StoreError("mysql: all " + std::to_string(size_) + " connections stayed busy for " +
                         std::to_string(wait_.count()) + " s");
      }
    }
    ++open_;  // this slot is ours while we connect
  }
  try {
    auto connection = connect(generation);
    return Lease(*this, std::move(connection), generation);
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    freed_.notify_one();
    throw;
  }
}

void Pool::give_back(std::unique_ptr<Connection> connection, std::uint64_t generation) {
  std::unique_ptr<Connection> dropped;
  {
    std::lock_guard lock(mutex_);
    // A broken connection, or one to an endpoint that may no longer be the primary, goes.
    if (closed_ || connection->broken() || generation != generation_) {
      dropped = std::move(connection);
      --open_;
    } else {
      idle_.push_back(std::move(connection));
    }
  }
  freed_.notify_one();
}

}  // namespace maild::store::mysql
