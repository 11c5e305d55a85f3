// One connection to a MySQL/MariaDB server and its prepared statements (Connector/C++ 1.1),
// as RAII objects; every error becomes a MysqlError that says whether the connection survived.
// Trust: the server is the administrator's; what it returns is believed, every wait on it has a
// deadline (connect, read and write timeouts), and a broken connection is never reused.
#pragma once

#include <cppconn/exception.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "maild/core/net_types.hpp"
#include "maild/store/types.hpp"

namespace sql {
class Connection;
class PreparedStatement;
class ResultSet;
}  // namespace sql

namespace maild::store::mysql {

// What a failure means for retrying it.
enum class FailureKind {
  connection,   // the connection is gone (lost, killed, server down, cannot connect)
  read_only,    // the server refuses writes: it is not (or no longer) the primary
  transient,    // deadlock or lock wait timeout: this transaction was rolled back, try it again
  duplicate,    // a unique key refused a row
  foreign_key,  // a row referred to a missing one (e.g. a mailbox deleted meanwhile)
  other,
};

// A StoreError that keeps the server's error number and what it means for a retry.
struct MysqlError : StoreError {
  MysqlError(const std::string& message, int error_code, FailureKind failure)
      : StoreError(message), code(error_code), kind(failure) {}
  int code;
  FailureKind kind;
};

FailureKind classify(int error_code);

// How to reach the servers; the same for every endpoint.
struct ConnectionSettings {
  std::string user;
  std::string password;
  std::string database;
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{60};   // for one reply; a 35 MB message is read well within it
  std::chrono::seconds write_timeout{60};  // for one request
};

class Connection;

// A prepared statement of one connection. Parameters are 1-based, columns 0-based (as in the
// SQLite backend).
class Statement {
 public:
  Statement(Connection& owner, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value);
  // Times go to SQL as unix seconds.
  Statement& bind(int index, UnixTime value) {
    return bind(index, value.time_since_epoch().count());
  }
  Statement& bind_text(int index, std::string_view value);  // copied
  // Sent as binary, not copied: `value` must live until execute() or step().
  Statement& bind_blob(int index, const std::string& value);
  Statement& bind_blob(int index, std::string&& value) = delete;
  Statement& bind_bytes(int index, std::string_view value);  // binary, copied
  Statement& bind_null(int index);

  // INSERT, UPDATE, DELETE: the rows it matched, changed or not (CLIENT_FOUND_ROWS), as
  // SQLite's changes() counts them.
  std::uint64_t execute();
  bool step();   // a query: runs it on the first call; true while a row is ready
  void reset();  // drops the result and the parameters

  bool column_null(int column) const;
  std::int64_t column_int(int column) const;
  UnixTime column_time(int column) const {
    return UnixTime{std::chrono::seconds{column_int(column)}};
  }
  std::string column_text(int column) const;
  std::string column_blob(int column) const { return column_text(column); }  // byte-exact

 private:
  struct BlobSource;
  Connection& owner_;
  std::string sql_;
  std::unique_ptr<sql::PreparedStatement> statement_;
  std::unique_ptr<sql::ResultSet> rows_;
  std::vector<std::unique_ptr<BlobSource>> blobs_;
};

// A cached statement in use; resets it on scope exit so it holds no result or bindings.
class StatementUse {
 public:
  explicit StatementUse(Statement& statement) : statement_(&statement) {}
  ~StatementUse() { statement_->reset(); }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  Statement* operator->() const { return statement_; }
  Statement& operator*() const { return *statement_; }

 private:
  Statement* statement_;
};

class Connection {
 public:
  // Connects over TCP within settings.connect_timeout; with_database: also selects
  // settings.database (which must exist). utf8mb4, strict SQL mode, REPEATABLE READ, autocommit.
  Connection(const Endpoint& endpoint, const ConnectionSettings& settings, bool with_database);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(std::string_view sql);  // one statement without results, not prepared (DDL too)
  std::optional<std::string> query_text(std::string_view sql);  // first column of the first row
  std::int64_t query_int(std::string_view sql);                 // the same, as a number (0: none)
  std::vector<std::vector<std::string>> query_rows(std::string_view sql);  // NULL reads as ""
  // The rows with their column names (SHOW SLAVE STATUS has dozens); NULL reads as "".
  std::vector<std::map<std::string, std::string>> query_named(std::string_view sql);
  StatementUse prepare(std::string_view sql);  // prepared once per connection, then reused
  // Prepared for one use and closed when it goes: for texts that vary (an IN list of ids),
  // which would otherwise pile up in the cache and on the server.
  std::unique_ptr<Statement> prepare_once(std::string_view sql);

  // START TRANSACTION; read_committed: at that level (no gap locks, and a row that did not
  // match is not kept locked), for this transaction only.
  void begin(bool read_committed = false);
  void commit();    // throws MysqlError: with kind connection, the outcome is unknown
  void rollback();  // best effort: a connection that cannot roll back is marked broken
  std::int64_t last_insert_id();

  // A failure on this connection that leaves it unusable; set by every wrapper that sees one.
  bool broken() const { return broken_; }
  std::uint64_t id() const { return id_; }  // the server's CONNECTION_ID(), for KILL and logs
  const Endpoint& endpoint() const { return endpoint_; }

  // Runs a Connector call, turning its exceptions into MysqlError (marking this connection
  // broken when the failure says so). `what` names the step in the message.
  template <class Call>
  auto guard(std::string_view what, Call call) -> decltype(call());

  sql::Connection& native() { return *connection_; }

 private:
  [[noreturn]] void fail(std::string_view what, int code, const std::string& message);
  static constexpr int lost_before = 2006;  // CR_SERVER_GONE_ERROR: what a reused broken one says

  Endpoint endpoint_;
  std::unique_ptr<sql::Connection> connection_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
  std::uint64_t id_ = 0;
  bool broken_ = false;
};

// A consistent read: several queries see one snapshot. Ends (rolls back) on scope exit.
class ReadTransaction {
 public:
  explicit ReadTransaction(Connection& connection);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Connection& connection_;
};

template <class Call>
auto Connection::guard(std::string_view what, Call call) -> decltype(call()) {
  if (broken_) fail(what, lost_before, "the connection was lost before");
  try {
    return call();
  } catch (const sql::SQLException& error) {
    fail(what, error.getErrorCode(), error.what());
  }
}

}  // namespace maild::store::mysql
