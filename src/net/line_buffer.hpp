// Splits bytes received from a client into CRLF-terminated lines.
// Trust: none in the input. Only CRLF ends a line; a bare CR or LF is data.
// Memory is bounded by the line limit: an over-long line is discarded as it
// arrives and reported once its CRLF is seen.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace maild::net {

struct Line {
  std::string text;       // without the CRLF; empty when too_long
  bool too_long = false;  // the line exceeded the limit and was dropped
};

class LineBuffer {
 public:
  // max_line counts the octets of a line including its CRLF (RFC 5321 4.5.3.1).
  explicit LineBuffer(std::size_t max_line);

  // Space for up to `n` more bytes; call commit() with how many were written.
  std::span<char> prepare(std::size_t n);
  void commit(std::size_t n);
  void append(std::string_view bytes);  // prepare + copy + commit

  // The next complete line, if one is buffered.
  std::optional<Line> next();

  // Bytes buffered after the last complete line (pipelined input).
  bool has_pending() const { return !buffer_.empty() || discarding_ || too_long_ready_; }
  std::size_t max_line() const { return max_line_; }
  void set_max_line(std::size_t max_line) { max_line_ = max_line; }

  // Drops everything buffered (e.g. commands pipelined after STARTTLS).
  void clear();

  // Message content is not lines: hands over the raw bytes buffered so far,
  // and takes back those read past the content's end (pipelined commands).
  std::string take_buffered();
  void unread(std::string_view bytes);

 private:
  std::size_t max_line_;
  std::string buffer_;       // bytes not yet returned as lines
  std::size_t scanned_ = 0;  // prefix of buffer_ known to hold no CRLF
  std::size_t committed_ = 0;
  bool discarding_ = false;      // inside an over-long line, waiting for its CRLF
  bool discard_cr_ = false;      // the last discarded byte was CR
  bool too_long_ready_ = false;  // an over-long line ended; next() reports it
};

}  // namespace maild::net
