// The bounded transcript of one SMTP session: what the client said and what
// we answered, kept for the log and for whatever keeps a refused message
// with its story (the quarantine). Bounded in bytes: the oldest lines go
// first, and the transcript says how many went.
// Trust: callers pass lines already redacted (redact_command() for the
// client's commands; AUTH exchanges are recorded as a placeholder, tokens
// shortened), so nothing secret is ever kept.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace maild::smtp {

class Transcript {
 public:
  // A whole transcript at most this big (bytes of text, without line ends).
  static constexpr std::size_t default_budget = 16 * 1024;
  // One line at most this long; longer ones are cut and marked.
  static constexpr std::size_t line_max = 512;

  explicit Transcript(std::size_t budget = default_budget) : budget_(budget) {}

  void client(std::string_view line) { add("< ", line); }
  // A formatted reply ("250-a\r\n250 b\r\n"): one transcript line per reply line.
  void server(std::string_view wire);

  // "< EHLO x\n> 250 ...\n": oldest first, with a first line saying how many were dropped.
  std::string text() const;
  std::size_t dropped() const { return dropped_; }

 private:
  void add(std::string_view prefix, std::string_view line);

  std::size_t budget_;
  std::size_t size_ = 0;
  std::size_t dropped_ = 0;
  std::deque<std::string> lines_;
};

// A command line as the log and the transcript may show it: AUTH keeps its
// verb and mechanism only, SOURCE and GET their token's first characters.
std::string redact_command(std::string_view line);

}  // namespace maild::smtp
