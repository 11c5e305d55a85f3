// Schema versions in the table schema_migrations; migrations embedded at build time from
// sql/mysql/, sent one statement at a time.
// Trust: the migration SQL is ours; another process (mailctl, a second maild) may migrate at the
// same time, so migrators take a named lock on the server first.
#include <string>

#include "store/migration.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

// How long a migrator waits for another to finish.
constexpr int migration_lock_seconds = 120;

// The named lock: per database, so two stores on one server do not wait for each other.
constexpr const char* lock_name = "LEFT(CONCAT('maild.migrate.', DATABASE()), 64)";

// What MySQL says when the trigger needs SUPER under binary logging, and what to do about it.
constexpr int er_binlog_create_routine_need_super = 1419;

bool starts_with_word(std::string_view text, std::size_t at, std::string_view word) {
  if (text.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char c = text[at + i];
    const char folded = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (folded != word[i]) return false;
  }
  const std::size_t end = at + word.size();
  return end == text.size() || text[end] == ' ' || text[end] == '\t';
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

}  // namespace

std::vector<std::string> split_statements(std::string_view sql) {
  std::vector<std::string> statements;
  std::string delimiter = ";";
  std::string current;
  auto flush = [&] {
    std::string statement = trimmed(current);
    if (!statement.empty()) statements.push_back(std::move(statement));
    current.clear();
  };
  std::size_t i = 0;
  bool line_start = true;
  while (i < sql.size()) {
    // A DELIMITER line is the client's, never the server's.
    if (line_start) {
      std::size_t at = i;
      while (at < sql.size() && (sql[at] == ' ' || sql[at] == '\t')) ++at;
      if (starts_with_word(sql, at, "DELIMITER")) {
        const auto end = sql.find('\n', at);
        const auto line = sql.substr(at, end == std::string_view::npos ? end : end - at);
        flush();
        delimiter = trimmed(line.substr(std::string_view("DELIMITER").size()));
        if (delimiter.empty()) delimiter = ";";
        i = end == std::string_view::npos ? sql.size() : end + 1;
        continue;
      }
    }
    const char c = sql[i];
    line_start = false;
    if (c == '\n') line_start = true;
    if ((c == '-' && sql.substr(i, 3) == "-- ") || c == '#') {  // a comment to the line's end
      const auto end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end;
      continue;
    }
    if (c == '/' && sql.substr(i, 2) == "/*") {
      const auto end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`') {  // quoted: copied as is, escapes included
      current += c;
      ++i;
      while (i < sql.size() && sql[i] != c) {
        if (sql[i] == '\\' && c != '`' && i + 1 < sql.size()) current += sql[i++];
        current += sql[i++];
      }
      if (i < sql.size()) current += sql[i++];
      continue;
    }
    if (sql.substr(i, delimiter.size()) == delimiter) {
      flush();
      i += delimiter.size();
      continue;
    }
    current += c;
    ++i;
  }
  flush();
  return statements;
}

int schema_version(Connection& connection) {
  const std::int64_t tables = connection.query_int(
      "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
      "TABLE_NAME = 'schema_migrations'");
  if (tables == 0) return 0;
  return static_cast<int>(
      connection.query_int("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
}

int latest_schema_version() {
  auto migrations = embedded_migrations();
  return migrations.empty() ? 0 : migrations.back().version;
}

void apply_migrations(Connection& connection) {
  if (connection.query_int(std::string("SELECT GET_LOCK(") + lock_name + ", " +
                           std::to_string(migration_lock_seconds) + ")") != 1) {
    throw StoreError("mysql: another migration of this database ran for more than " +
                     std::to_string(migration_lock_seconds) + " s; try again later");
  }
  struct Unlock {
    Connection& connection;
    ~Unlock() {
      try {
        if (!connection.broken())
          connection.exec(std::string("DO RELEASE_LOCK(") + lock_name + ")");
      } catch (...) {
        // The server releases a named lock with the connection anyway.
      }
    }
  } unlock{connection};

  connection.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INT NOT NULL PRIMARY KEY,"
      " name VARCHAR(100) NOT NULL,"
      " applied_at BIGINT NOT NULL"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
  const int current = schema_version(connection);
  if (current > latest_schema_version()) {
    throw StoreError("mysql database " + connection.query_text("SELECT DATABASE()").value_or("") +
                     " is at schema version " + std::to_string(current) +
                     ", newer than this build's " + std::to_string(latest_schema_version()) +
                     "; upgrade maild");
  }
  for (const Migration& migration : embedded_migrations()) {
    if (migration.version <= current) continue;
    try {
      for (const std::string& statement : split_statements(migration.sql))
        connection.exec(statement);
      // The version is written last: a migration that stopped half-way runs again in full.
      auto record = connection.prepare(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      record->bind(1, migration.version).bind_text(2, migration.name).bind(3, unix_now());
      record->execute();
    } catch (const MysqlError& error) {
      std::string hint;
      if (error.code == er_binlog_create_routine_need_super) {
        hint =
            "; with binary logging on, its trigger needs SUPER: run `mailctl db migrate` as a "
            "user that has it, or SET GLOBAL log_bin_trust_function_creators = 1";
      }
      throw StoreError("migration " + std::to_string(migration.version) + " (" +
                       std::string(migration.name) + ") failed: " + error.what() + hint);
    }
  }
}

}  // namespace maild::store::mysql
