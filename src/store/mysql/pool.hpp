// The store's connections, all to the writable endpoint, and the rules for running a call on one:
// reads and writes, what happens when a connection is lost, and when a call is tried again.
// Trust: the servers may go away, be killed, or change roles at any moment; nothing is reported
// committed unless COMMIT answered, and nothing whose outcome is unknown is run twice.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "maild/store/store.hpp"
#include "store/mysql/committed_position.hpp"
#include "store/mysql/connection.hpp"
#include "store/mysql/endpoints.hpp"

namespace maild::store::mysql {

// The isolation of a write transaction: InnoDB's REPEATABLE READ, or READ COMMITTED where a
// locking scan must not lock the rows (and gaps) it passes over (claiming queue leases).
enum class Isolation { repeatable_read, read_committed };

class Pool {
 public:
  class Lease;

  // At most `size` connections at once; a call waits up to `wait` for one to come free.
  // `position_file` keeps the GTID position of the last commit (empty: in memory only); an
  // endpoint whose history lacks it is never written to.
  Pool(std::vector<Endpoint> endpoints, ConnectionSettings settings, Requirements requirements,
       std::size_t size, std::filesystem::path position_file,
       std::chrono::seconds wait = std::chrono::seconds(30));
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Reads the committed position, finds the writable endpoint and makes sure the database
  // exists on it (creating it with create_if_missing). Throws StoreError when it cannot: maild
  // does not start then.
  void open(OpenMode mode);

  // Runs work(Connection&) outside any transaction. A lost connection is replaced and the work
  // runs once more: a read changes nothing, so running it again is always safe.
  template <class Work>
  auto read(Work work) -> std::invoke_result_t<Work&, Connection&>;

  // Runs work(Connection&) in one transaction and commits it. Run again only when nothing can
  // have happened: the connection was found dead before the transaction began, or the server
  // rolled the whole transaction back (deadlock, lock wait timeout). A connection lost during
  // the transaction or its COMMIT is a StoreError: the caller's client tries again later, which
  // deliveries allow (the same message to the same mailbox is stored once). After COMMIT, the
  // transaction's GTID (@@last_gtid, on the same connection) becomes the committed position.
  template <class Work>
  auto write(Work work, Isolation isolation = Isolation::repeatable_read)
      -> std::invoke_result_t<Work&, Connection&>;

  void close();  // drops idle connections; later calls fail with StoreError

  // The endpoint in use ("" before open() or while none is writable).
  std::string location() const;
  WriterStats stats() const { return {transactions_.load(), transactions_.load()}; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  const ConnectionSettings& settings() const { return settings_; }

 private:
  Lease acquire();
  void give_back(std::unique_ptr<Connection> connection, std::uint64_t generation);
  void forget_writable(const std::string& why);  // the next call looks for the primary again
  std::unique_ptr<Connection> connect(std::uint64_t& generation);
  void discover();  // with discovery_ held
  // With [mysql] semi_sync: at most every semi_sync_check_interval, after a commit, asks whether
  // the primary still waits for a standby, and logs (loudly) when that changes.
  void check_semi_sync(Connection& connection);
  void report_semi_sync(bool active, const std::string& where);
  // Reads the GTID of the transaction just committed on `connection` into committed_. A
  // connection lost before it answers is a StoreError: the commit is not acknowledged unless
  // its position is remembered.
  void remember_commit(Connection& connection);
  Writable find_primary();  // find_writable with committed_, logging a refusal loudly

  std::vector<Endpoint> endpoints_;
  ConnectionSettings settings_;
  Requirements requirements_;
  std::size_t size_;
  std::chrono::seconds wait_;

  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;  // leased plus idle
  bool closed_ = false;
  std::optional<Endpoint> writable_;
  std::uint64_t generation_ = 0;  // grows whenever writable_ is found again or forgotten
  std::string last_failure_;      // why there is no writable endpoint
  std::chrono::steady_clock::time_point next_discovery_{};

  std::mutex discovery_;  // one search for the primary at a time
  std::atomic<std::uint64_t> transactions_{0};
  CommittedPosition committed_;
  std::atomic<bool> mariadb_{false};  // the writable endpoint has MariaDB's @@last_gtid
  std::string last_refusal_;          // with discovery_ held: logged once until it changes
  std::atomic<std::int64_t> next_semi_sync_check_{0};  // steady clock, milliseconds
  std::atomic<int> semi_sync_state_{-1};               // -1 unknown, 0 inactive, 1 active
};

// One connection for one call; given back (or dropped, when broken) at scope exit.
class Pool::Lease {
 public:
  Lease(Pool& pool, std::unique_ptr<Connection> connection, std::uint64_t generation)
      : pool_(&pool), connection_(std::move(connection)), generation_(generation) {}
  ~Lease() {
    if (connection_) pool_->give_back(std::move(connection_), generation_);
  }
  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  Connection& operator*() const { return *connection_; }
  Connection* operator->() const { return connection_.get(); }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> connection_;
  std::uint64_t generation_;
};

// Deadlocks and lock wait timeouts are tried this often in all before they are reported.
inline constexpr int transient_attempts = 5;

// A short random pause before running a transaction again after a deadlock, longer each time,
// so that the transactions that collided do not collide again at once.
void pause_before_retry(int attempt);

template <class Work>
auto Pool::read(Work work) -> std::invoke_result_t<Work&, Connection&> {
  for (int attempt = 1;; ++attempt) {
    Lease lease = acquire();
    try {
      return work(*lease);
    } catch (const MysqlError& error) {
      if (error.kind == FailureKind::connection) {
        forget_writable(error.what());
        if (attempt < 2) continue;
      } else if (error.kind == FailureKind::transient && attempt < transient_attempts) {
        pause_before_retry(attempt);
        continue;
      }
      throw;
    }
  }
}

template <class Work>
auto Pool::write(Work work, Isolation isolation) -> std::invoke_result_t<Work&, Connection&> {
  using Result = std::invoke_result_t<Work&, Connection&>;
  for (int attempt = 1;; ++attempt) {
    Lease lease = acquire();
    try {
      lease->begin(isolation == Isolation::read_committed);
    } catch (const MysqlError& error) {
      // Nothing ran: a pooled connection died while idle (a restart, a KILL, a timeout).
      if (error.kind == FailureKind::connection) forget_writable(error.what());
      if (error.kind == FailureKind::connection && attempt < 2) continue;
      throw;
    }
    std::optional<std::conditional_t<std::is_void_v<Result>, bool, Result>> result;
    try {
      if constexpr (std::is_void_v<Result>) {
        work(*lease);
        result.emplace(true);
      } else {
        result.emplace(work(*lease));
      }
    } catch (const MysqlError& error) {
      lease->rollback();
      if (error.kind == FailureKind::connection || error.kind == FailureKind::read_only) {
        forget_writable(error.what());
      } else if (error.kind == FailureKind::transient && attempt < transient_attempts) {
        pause_before_retry(attempt);
        continue;  // InnoDB rolled the transaction back: nothing of it remains
      }
      throw;
    } catch (...) {
      lease->rollback();  // the work refused (StoreConflict): nothing of it is kept
      throw;
    }
    try {
      lease->commit();
    } catch (const MysqlError& error) {
      if (error.kind == FailureKind::connection) {
        forget_writable(error.what());
        throw MysqlError(
            "mysql: the connection was lost at COMMIT, so whether it took effect is "
            "unknown; not retried (" +
                std::string(error.what()) + ")",
            error.code, error.kind);
      }
      lease->rollback();
      throw;
    }
    ++transactions_;
    remember_commit(*lease);
    check_semi_sync(*lease);
    if constexpr (!std::is_void_v<Result>)
      return std::move(*result);
    else
      return;
  }
}

}  // namespace maild::store::mysql
