// The SQLite C API wrapped in RAII: connections, statements, error mapping.
// Trust: SQLite is trusted with the data; every return code is checked and becomes a StoreError.
#include "store/sqlite/connection.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>

#include "maild/store/types.hpp"

namespace maild::store::sqlite {
namespace {

constexpr std::chrono::milliseconds busy_timeout{10'000};

// SQLITE_TRANSIENT without its old-style cast: SQLite copies the bound bytes at once.
sqlite3_destructor_type transient() {
  return reinterpret_cast<sqlite3_destructor_type>(static_cast<std::intptr_t>(-1));
}

// A zero-length view may have no data pointer, which SQLite would bind as NULL.
const char* non_null(std::string_view value) { return value.data() != nullptr ? value.data() : ""; }

}  // namespace

void throw_sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string message = "sqlite";
  // Name the file: an administrator may run several stores.
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  if (file != nullptr && file[0] != '\0') message.append(" ").append(file);
  message.append(": ");
  message.append(what);
  message.append(": ");
  message.append(db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  throw StoreError(message);
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  // PERSISTENT: these statements are cached for the connection's lifetime.
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "preparing SQL");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "binding a value");
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, non_null(value), value.size(), transient(), SQLITE_UTF8);
  if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "binding text");
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view value) {
  int rc = sqlite3_bind_blob64(stmt_, index, non_null(value), value.size(), transient());
  if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "binding a blob");
  return *this;
}

Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "binding NULL");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_sqlite_error(db_, rc, "running SQL");
}

void Statement::reset() {
  // reset's return code repeats the last step's error, already reported there.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::column_text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::string Statement::column_blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (blob == nullptr) return {};
  return std::string(static_cast<const char*>(blob), static_cast<std::size_t>(size));
}

Connection::Connection(const std::filesystem::path& path, bool create) : path_(path) {
  // NOMUTEX: a connection is used by one thread at a time (the writer, or a leased reader).
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // db_ may be allocated even on failure: take its message, then free it.
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("sqlite: cannot open " + path.string() + ": " + message);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    rc = sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
    if (rc != SQLITE_OK) throw_sqlite_error(db_, rc, "setting the busy timeout");
    // WAL: readers never block the writer; FULL: the WAL is fsynced at every commit.
    std::string mode;
    {
      Statement journal(db_, "PRAGMA journal_mode=WAL");
      if (journal.step()) mode = journal.column_text(0);
    }
    if (mode != "wal") {
      throw StoreError("sqlite: " + path.string() + " cannot use WAL (journal mode is '" + mode +
                       "')");
    }
    exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  } catch (...) {
    statements_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Connection::~Connection() {
  statements_.clear();  // every statement must be finalized before the close
  sqlite3_close_v2(db_);
}

void Connection::exec(std::string_view sql) {
  const std::string text(sql);
  char* error = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw StoreError("sqlite " + path_.string() + ": " + message + " (in: " + text.substr(0, 60) +
                     ")");
  }
}

std::int64_t Connection::query_int(std::string_view sql) {
  auto statement = prepare(sql);
  return statement->step() ? statement->column_int(0) : 0;
}

StatementUse Connection::prepare(std::string_view sql) {
  std::string key(sql);
  auto found = statements_.find(key);
  if (found == statements_.end()) {
    auto statement = std::make_unique<Statement>(db_, sql);
    found = statements_.emplace(std::move(key), std::move(statement)).first;
  }
  return StatementUse(*found->second);
}

std::int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

std::int64_t Connection::changes() const { return sqlite3_changes64(db_); }

bool Connection::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

ReadTransaction::ReadTransaction(Connection& connection) : connection_(connection) {
  connection_.exec("BEGIN");
}

ReadTransaction::~ReadTransaction() {
  // Reads change nothing; ending with ROLLBACK cannot fail in a way that matters.
  try {
    if (connection_.in_transaction()) connection_.exec("ROLLBACK");
  } catch (...) {
  }
}

}  // namespace maild::store::sqlite
