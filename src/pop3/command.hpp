// POP3 command lines (RFC 1939 section 3, RFC 2449, RFC 5034) and the
// multi-line response helpers: byte-stuffing and TOP's cut of a message.
// Trust: none in the line; it is parsed, never executed. Whether a command
// is allowed in the session's state is the session's call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace maild::pop3 {

enum class Verb {
  user,
  pass,
  auth,
  stls,
  capa,
  stat,
  list,
  retr,
  dele,
  rset,
  noop,
  top,
  uidl,
  quit,
  unknown
};

struct Command {
  Verb verb = Verb::unknown;
  std::string argument;                 // USER name, PASS secret, AUTH "MECH [response]"
  std::optional<std::uint64_t> number;  // LIST/UIDL [n], RETR/DELE/TOP n
  std::optional<std::uint64_t> lines;   // TOP n k
};

// A line without CRLF; an error is the text after "-ERR ".
std::variant<Command, std::string> parse_command(std::string_view line);

// Appends `text` to `out` with every line that starts with '.' given one
// more '.' (RFC 1939 3). Keeps whether the next byte starts a line, so a
// message can be stuffed in chunks.
class ByteStuffer {
 public:
  void append(std::string_view text, std::string& out);
  // The terminating ".\r\n", after a CRLF when the text did not end with one.
  void finish(std::string& out);

 private:
  bool line_start_ = true;
  bool after_cr_ = false;
};

// TOP n k: the header (up to and including the empty line) and the first
// `lines` lines of the body of `message`.
std::string_view top_of(std::string_view message, std::uint64_t lines);

}  // namespace maild::pop3
