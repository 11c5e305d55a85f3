// One SQLite connection and its prepared statements, as RAII objects.
// Trust: SQLite is trusted to keep what it committed; every error it reports becomes a StoreError.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "maild/store/types.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace maild::store::sqlite {

// Throws StoreError naming what we were doing and SQLite's own message.
[[noreturn]] void throw_sqlite_error(sqlite3* db, int rc, std::string_view what);

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite; values are copied, so temporaries are fine.
  Statement& bind(int index, std::int64_t value);
  // Times go to SQL as unix seconds.
  Statement& bind(int index, UnixTime value) {
    return bind(index, value.time_since_epoch().count());
  }
  Statement& bind_text(int index, std::string_view value);
  Statement& bind_blob(int index, std::string_view value);
  Statement& bind_null(int index);

  bool step();   // true: a row is ready; false: done
  void reset();  // ready to run again, bindings cleared

  std::int64_t column_int(int column) const;
  UnixTime column_time(int column) const {
    return UnixTime{std::chrono::seconds{column_int(column)}};
  }
  std::string column_text(int column) const;
  std::string column_blob(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// A cached statement in use; resets it on scope exit so it holds no lock or bindings.
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
  // create: make the file if it is missing. Sets WAL, synchronous=FULL, foreign keys, busy timeout.
  Connection(const std::filesystem::path& path, bool create);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(std::string_view sql);               // statements without results
  std::int64_t query_int(std::string_view sql);  // the first column of the first row
  StatementUse prepare(std::string_view sql);    // prepared once per connection, then reused

  std::int64_t last_insert_rowid() const;
  std::int64_t changes() const;
  bool in_transaction() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// A deferred read transaction: several queries see one snapshot. Rolls back on scope exit.
class ReadTransaction {
 public:
  explicit ReadTransaction(Connection& connection);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Connection& connection_;
};

}  // namespace maild::store::sqlite
