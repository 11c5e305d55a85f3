// Message content after DATA (dot-terminated, RFC 5321 4.5.2) or BDAT
// (counted chunks, RFC 3030), decoded incrementally from arbitrary chunks.
// Trust: none. Only a real CR LF "." CR LF ends DATA; a bare CR or LF never
// ends a line or the data (SMTP smuggling). Memory is bounded by max_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "maild/core/units.hpp"
#include "smtp/limits.hpp"

namespace maild::smtp {

enum class BareNewline {
  normalize,  // store a bare CR or LF as CRLF
  reject,     // report Problem::bare_newline
};

struct DataLimits {
  ByteSize max_size;                     // content octets as stored (after unstuffing)
  std::size_t max_line = text_line_max;  // octets including CRLF (RFC 5321 4.5.3.1.6)
  BareNewline bare_newline = BareNewline::reject;
};

class DataReader {
 public:
  enum class Problem { none, too_big, bare_newline, nul, line_too_long, no_memory };

  // DATA: reads up to and including the CRLF "." CRLF terminator.
  static DataReader dot_terminated(const DataLimits& limits);
  // BDAT: one reader per transaction; call begin_chunk() before each chunk.
  static DataReader chunked(const DataLimits& limits);

  // The next BDAT chunk has `size` octets; `last` completes the message after
  // it. Ignored unless the previous chunk is done and the message is not.
  void begin_chunk(std::uint64_t size, bool last);

  // Consumes input and returns how much: DATA stops right after the
  // terminator, BDAT after the chunk's last octet; the rest belongs to the
  // next command (pipelining). Returns 0 once there is nothing to read.
  std::size_t feed(std::string_view input);

  bool done() const { return done_; }  // the whole message has been read
  // DATA: same as done(). BDAT: the current chunk has been read.
  bool chunk_done() const { return mode_ == Mode::dot ? done_ : chunk_remaining_ == 0; }
  std::uint64_t chunk_remaining() const { return chunk_remaining_; }

  // The first problem seen. Once there is one, nothing more is stored and the
  // content is dropped: the message is to be rejected, but still read to its end.
  Problem problem() const { return problem_; }
  // Stops keeping the content (it is still read to its end): no room for it.
  void out_of_memory() { fail(Problem::no_memory); }
  // Content octets seen (as they would be stored), including those not stored.
  std::uint64_t received() const { return received_; }
  // The content with CRLF line ends and dots unstuffed; meaningful when done()
  // and problem() == Problem::none.
  std::string take_content() { return std::move(content_); }

 private:
  enum class Mode { dot, counted };
  enum class State {
    line_start,  // after a real CRLF, or at the very start
    in_line,
    cr,      // a CR whose LF may come next
    dot,     // "." at a line start (DATA only)
    dot_cr,  // "." CR at a line start (DATA only)
  };

  DataReader(Mode mode, const DataLimits& limits) : mode_(mode), limits_(limits) {}

  void step(char c);
  void text(std::string_view octets);
  void end_line();
  void bare_newline();
  void fail(Problem problem);
  void finish_message();

  Mode mode_;
  DataLimits limits_;
  State state_ = State::line_start;
  std::string content_;
  std::uint64_t received_ = 0;
  std::size_t line_length_ = 0;  // octets of the current line stored so far, without CRLF
  std::uint64_t chunk_remaining_ = 0;
  bool last_chunk_ = false;
  bool done_ = false;
  Problem problem_ = Problem::none;
};

}  // namespace maild::smtp
