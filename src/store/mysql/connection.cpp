// Connector/C++ 1.1 behind the Connection and Statement wrappers.
// Trust: the server is the administrator's; its error numbers decide whether a connection is kept.
#include "store/mysql/connection.hpp"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <istream>
#include <mutex>
#include <streambuf>

namespace maild::store::mysql {
namespace {

// The driver's first use initialises the client library, which is not thread-safe.
sql::mysql::MySQL_Driver& driver() {
  static std::once_flag once;
  static sql::mysql::MySQL_Driver* instance = nullptr;
  std::call_once(once, [] { instance = sql::mysql::get_mysql_driver_instance(); });
  return *instance;
}

// Strict: a value that does not fit is an error, never silently cut.
constexpr const char* session_setup =
    "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION'";

int seconds(std::chrono::seconds value) { return static_cast<int>(value.count()); }

}  // namespace

FailureKind classify(int error_code) {
  switch (error_code) {
    case 1040:  // ER_CON_COUNT_ERROR: too many connections
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1049:  // ER_BAD_DB_ERROR at connect
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1927:  // ER_CONNECTION_KILLED (MariaDB)
    case 2002:  // CR_CONNECTION_ERROR
    case 2003:  // CR_CONN_HOST_ERROR
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2014:  // CR_COMMANDS_OUT_OF_SYNC: the protocol state is lost
    case 2055:  // CR_SERVER_LOST_EXTENDED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
      return FailureKind::connection;
    case 1036:  // ER_OPEN_AS_READONLY: innodb_read_only
    case 1290:  // ER_OPTION_PREVENTS_STATEMENT: --read-only
    case 1836:  // ER_READ_ONLY_MODE
      return FailureKind::read_only;
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
      return FailureKind::transient;
    case 1062:  // ER_DUP_ENTRY
    case 1586:  // ER_DUP_ENTRY_WITH_KEY_NAME
      return FailureKind::duplicate;
    case 1216:  // ER_NO_REFERENCED_ROW
    case 1451:  // ER_ROW_IS_REFERENCED_2
    case 1452:  // ER_NO_REFERENCED_ROW_2
      return FailureKind::foreign_key;
    default:
      return FailureKind::other;
  }
}

// ---- Statement ----------------------------------------------------------------------------

// A blob parameter read straight from the caller's bytes: the content is not copied.
// (bind_bytes: over a copy it owns.)
struct Statement::BlobSource {
  struct View : std::streambuf {
    explicit View(std::string_view bytes) {
      // std::streambuf wants char*; the stream only ever reads through it.
      char* begin = const_cast<char*>(bytes.data());
      setg(begin, begin, begin + bytes.size());
    }
  };
  explicit BlobSource(std::string_view bytes) : view(bytes), stream(&view) {}
  explicit BlobSource(std::string bytes) : copy(std::move(bytes)), view(copy), stream(&view) {}
  std::string copy;
  View view;
  std::istream stream;
};

Statement::Statement(Connection& owner, std::string_view sql) : owner_(owner), sql_(sql) {
  statement_.reset(owner_.guard("preparing a statement", [&] {
    return owner_.native().prepareStatement(sql::SQLString(sql_));
  }));
}

Statement::~Statement() = default;

Statement& Statement::bind(int index, std::int64_t value) {
  owner_.guard("binding a parameter",
               [&] { statement_->setInt64(static_cast<unsigned>(index), value); });
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view value) {
  owner_.guard("binding a parameter", [&] {
    statement_->setString(static_cast<unsigned>(index), sql::SQLString(value.data(), value.size()));
  });
  return *this;
}

Statement& Statement::bind_blob(int index, const std::string& value) {
  blobs_.push_back(std::make_unique<BlobSource>(std::string_view(value)));
  owner_.guard("binding a parameter",
               [&] { statement_->setBlob(static_cast<unsigned>(index), &blobs_.back()->stream); });
  return *this;
}

Statement& Statement::bind_bytes(int index, std::string_view value) {
  blobs_.push_back(std::make_unique<BlobSource>(std::string(value)));
  owner_.guard("binding a parameter",
               [&] { statement_->setBlob(static_cast<unsigned>(index), &blobs_.back()->stream); });
  return *this;
}

Statement& Statement::bind_null(int index) {
  owner_.guard("binding a parameter",
               [&] { statement_->setNull(static_cast<unsigned>(index), 0); });
  return *this;
}

std::uint64_t Statement::execute() {
  const int changed =
      owner_.guard("running a statement", [&] { return statement_->executeUpdate(); });
  return static_cast<std::uint64_t>(changed);
}

bool Statement::step() {
  return owner_.guard("running a query", [&] {
    if (!rows_) rows_.reset(statement_->executeQuery());
    return rows_->next();
  });
}

void Statement::reset() {
  rows_.reset();
  blobs_.clear();
  if (owner_.broken()) return;  // nothing to tell a server that is gone
  try {
    statement_->clearParameters();
  } catch (const sql::SQLException&) {
    // Only bookkeeping on the client side: nothing is left to undo.
  }
}

bool Statement::column_null(int column) const {
  return owner_.guard("reading a column",
                      [&] { return rows_->isNull(static_cast<std::uint32_t>(column + 1)); });
}

std::int64_t Statement::column_int(int column) const {
  return owner_.guard("reading a column",
                      [&] { return rows_->getInt64(static_cast<std::uint32_t>(column + 1)); });
}

std::string Statement::column_text(int column) const {
  return owner_.guard("reading a column", [&] {
    return std::string(rows_->getString(static_cast<std::uint32_t>(column + 1)).asStdString());
  });
}

// ---- Connection ---------------------------------------------------------------------------

Connection::Connection(const Endpoint& endpoint, const ConnectionSettings& settings,
                       bool with_database)
    : endpoint_(endpoint) {
  sql::ConnectOptionsMap options;
  // tcp:// keeps the library from reading "localhost" as its Unix socket.
  const bool v6 = endpoint.host.find(':') != std::string::npos;
  options["hostName"] = sql::SQLString("tcp://" + (v6 ? "[" + endpoint.host + "]" : endpoint.host));
  options["port"] = static_cast<int>(endpoint.port);
  options["userName"] = sql::SQLString(settings.user);
  options["password"] = sql::SQLString(settings.password);
  if (with_database) options["schema"] = sql::SQLString(settings.database);
  options["OPT_CONNECT_TIMEOUT"] = seconds(settings.connect_timeout);
  options["OPT_READ_TIMEOUT"] = seconds(settings.read_timeout);
  options["OPT_WRITE_TIMEOUT"] = seconds(settings.write_timeout);
  // maild reconnects itself, knowing what is safe to run again; the library must not.
  options["OPT_RECONNECT"] = false;
  // An UPDATE counts the rows it matched, as SQLite's changes() does, not only those it changed.
  options["CLIENT_FOUND_ROWS"] = true;
  options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  options["characterSetResults"] = sql::SQLString("utf8mb4");
  // The client's own limit on a packet it reads: a whole message comes back in one row.
  options["OPT_MAX_ALLOWED_PACKET"] = 1024 * 1024 * 1024;
  options["preInit"] = sql::SQLString(session_setup);
  try {
    connection_.reset(driver().connect(options));
  } catch (const sql::SQLException& error) {
    broken_ = true;
    const int code = error.getErrorCode();
    // A refusal at connect time (access denied, unknown database) is as final as a lost one.
    throw MysqlError("mysql: cannot connect to " + endpoint.to_string() + ": " + error.what(), code,
                     FailureKind::connection);
  }
  id_ = static_cast<std::uint64_t>(query_int("SELECT CONNECTION_ID()"));
}

Connection::~Connection() {
  statements_.clear();  // before the connection they belong to
  try {
    connection_.reset();
  } catch (...) {
    // Closing a lost connection can only fail; there is nothing left to release.
  }
}

void Connection::fail(std::string_view what, int code, const std::string& message) {
  const FailureKind kind = classify(code);
  if (kind == FailureKind::connection) broken_ = true;
  throw MysqlError("mysql: " + std::string(what) + " on " + endpoint_.to_string() + ": " + message +
                       " (error " + std::to_string(code) + ")",
                   code, kind);
}

void Connection::exec(std::string_view sql) {
  guard("running a statement", [&] {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    statement->execute(sql::SQLString(sql.data(), sql.size()));
    // A statement may still have a result (a SET or a CALL); read it to keep the protocol in step.
    std::unique_ptr<sql::ResultSet> ignored(statement->getResultSet());
  });
}

std::optional<std::string> Connection::query_text(std::string_view sql) {
  return guard("running a query", [&]() -> std::optional<std::string> {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery(sql::SQLString(sql.data(), sql.size())));
    if (!rows->next() || rows->isNull(1)) return std::nullopt;
    return std::string(rows->getString(1).asStdString());
  });
}

std::vector<std::vector<std::string>> Connection::query_rows(std::string_view sql) {
  return guard("running a query", [&] {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery(sql::SQLString(sql.data(), sql.size())));
    const auto columns = rows->getMetaData()->getColumnCount();
    std::vector<std::vector<std::string>> out;
    while (rows->next()) {
      auto& row = out.emplace_back();
      for (unsigned c = 1; c <= columns; ++c) row.emplace_back(rows->getString(c).asStdString());
    }
    return out;
  });
}

std::vector<std::map<std::string, std::string>> Connection::query_named(std::string_view sql) {
  return guard("running a query", [&] {
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery(sql::SQLString(sql.data(), sql.size())));
    sql::ResultSetMetaData* meta = rows->getMetaData();
    const auto columns = meta->getColumnCount();
    std::vector<std::map<std::string, std::string>> out;
    while (rows->next()) {
      auto& row = out.emplace_back();
      for (unsigned c = 1; c <= columns; ++c)
        row[meta->getColumnLabel(c).asStdString()] = rows->getString(c).asStdString();
    }
    return out;
  });
}

std::int64_t Connection::query_int(std::string_view sql) {
  const auto text = query_text(sql);
  if (!text || text->empty()) return 0;
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    throw MysqlError(
        "mysql: expected a number from '" + std::string(sql) + "', got '" + *text + "'", 0,
        FailureKind::other);
  }
}

StatementUse Connection::prepare(std::string_view sql) {
  std::string key(sql);
  auto found = statements_.find(key);
  if (found == statements_.end()) {
    auto statement = std::make_unique<Statement>(*this, sql);
    found = statements_.emplace(std::move(key), std::move(statement)).first;
  }
  return StatementUse(*found->second);
}

std::unique_ptr<Statement> Connection::prepare_once(std::string_view sql) {
  return std::make_unique<Statement>(*this, sql);
}

void Connection::begin(bool read_committed) {
  if (read_committed) exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
  exec("START TRANSACTION");
}

void Connection::commit() { exec("COMMIT"); }

void Connection::rollback() {
  if (broken_) return;  // the server rolls back a lost connection's transaction itself
  try {
    exec("ROLLBACK");
  } catch (const MysqlError&) {
    broken_ = true;  // in an unknown state: never hand it out again
  }
}

std::int64_t Connection::last_insert_id() { return query_int("SELECT LAST_INSERT_ID()"); }

ReadTransaction::ReadTransaction(Connection& connection) : connection_(connection) {
  connection_.exec("START TRANSACTION READ ONLY");
}

ReadTransaction::~ReadTransaction() { connection_.rollback(); }

}  // namespace maild::store::mysql
