// Human tables and JSON documents on stdout: the one place mailctl formats results.
// Trust: values come from the store and may carry message text (subjects), so
// human output neutralises control characters and JSON escapes everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace maild::admin {

using Value = std::variant<std::string, std::int64_t>;

struct Column {
  std::string_view header;  // human table header
  std::string_view key;     // JSON member name
  bool align_right = false;
};

// A list result: a table for people, an array of objects for --json.
struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<Value>> rows;
};

// One object: aligned "label  value" lines for people, a JSON object for --json.
struct Field {
  std::string_view label;  // empty: JSON only
  std::string_view key;    // empty: human only
  Value value;
};
using Record = std::vector<Field>;

// A quoted JSON string. No JSON library is among our dependencies, so this is
// the escaper: valid UTF-8 passes, control characters become escapes, and an
// invalid byte becomes U+FFFD so the document always parses.
std::string json_string(std::string_view text);

// Message text made safe for a terminal: control characters and invalid UTF-8 become '?'.
std::string printable(std::string_view text);

// "2024-05-01T12:00:00Z"
std::string iso_time(std::chrono::sys_seconds time);

std::string render_table(const Table& table);
std::string render_record(const Record& record);
std::string table_json(const Table& table);
std::string record_json(const Record& record);

class Output {
 public:
  Output(std::ostream& out, bool json) : out_(out), json_(json) {}

  bool json() const { return json_; }
  void table(const Table& table);
  void record(const Record& record);
  // One object with a list inside (a queued message and its recipients): the record, a blank
  // line and the table for people; the record's object with the table's array as `key`.
  void record_with_table(const Record& record, std::string_view key, const Table& table);
  // A mutating command's confirmation: the line for people, {"ok":true,"message":...} for scripts.
  void confirm(std::string_view message);
  // Bytes exactly as given (message export).
  void raw(std::string_view bytes);

 private:
  std::ostream& out_;
  bool json_;
};

}  // namespace maild::admin
