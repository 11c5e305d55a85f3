// Decodes DATA/BDAT content octet by octet with state carried across chunks.
// Trust: none; only CR LF "." CR LF ends DATA, and storage stops at max_size.
#include "smtp/data_reader.hpp"

#include <algorithm>

namespace maild::smtp {

DataReader DataReader::dot_terminated(const DataLimits& limits) {
  return DataReader(Mode::dot, limits);
}

DataReader DataReader::chunked(const DataLimits& limits) {
  return DataReader(Mode::counted, limits);
}

void DataReader::begin_chunk(std::uint64_t size, bool last) {
  if (mode_ != Mode::counted || done_ || chunk_remaining_ != 0) return;
  chunk_remaining_ = size;
  last_chunk_ = last;
  if (size == 0 && last) finish_message();
}

std::size_t DataReader::feed(std::string_view input) {
  if (done_) return 0;
  if (mode_ == Mode::counted) {
    if (chunk_remaining_ < input.size()) input = input.substr(0, chunk_remaining_);
  }
  std::size_t i = 0;
  while (i < input.size() && !done_) {
    if (state_ == State::in_line) {
      // Fast path: a run of ordinary octets goes in at once.
      const auto special =
          std::min(input.find_first_of(std::string_view("\r\n\0", 3), i), input.size());
      if (special > i) {
        text(input.substr(i, special - i));
        i = special;
        continue;
      }
    }
    step(input[i++]);
  }
  if (mode_ == Mode::counted) {
    chunk_remaining_ -= i;
    if (chunk_remaining_ == 0 && last_chunk_) finish_message();
  }
  return i;
}

void DataReader::step(char c) {
  switch (state_) {
    case State::line_start:
      if (mode_ == Mode::dot && c == '.') {
        state_ = State::dot;
        return;
      }
      break;
    case State::dot:
      if (c == '\r') {
        state_ = State::dot_cr;
        return;
      }
      state_ = State::in_line;  // the leading dot was transparency (RFC 5321 4.5.2): dropped
      break;
    case State::dot_cr:
      if (c == '\n') {
        done_ = true;
        return;
      }
      bare_newline();  // ".\r" then not LF: the dot is dropped, the CR is bare
      break;
    case State::cr:
      if (c == '\n') {
        end_line();
        state_ = State::line_start;
        return;
      }
      bare_newline();
      break;
    case State::in_line:
      break;
  }
  // Here the octet is inside a line, never at its start.
  state_ = State::in_line;
  if (c == '\r') {
    state_ = State::cr;
  } else if (c == '\n') {
    bare_newline();
  } else {
    if (c == '\0') fail(Problem::nul);
    text(std::string_view(&c, 1));
  }
}

void DataReader::text(std::string_view octets) {
  line_length_ += octets.size();
  if (line_length_ + 2 > limits_.max_line) fail(Problem::line_too_long);
  received_ += octets.size();
  if (problem_ != Problem::none) return;
  if (received_ > limits_.max_size.bytes) {
    fail(Problem::too_big);
    return;
  }
  content_.append(octets);
}

void DataReader::end_line() {
  line_length_ = 0;
  received_ += 2;
  if (problem_ != Problem::none) return;
  if (received_ > limits_.max_size.bytes) {
    fail(Problem::too_big);
    return;
  }
  content_.append("\r\n");
}

// A bare CR or LF: stored as a line end, but it never starts a line where a
// "." would count, so it cannot end DATA.
void DataReader::bare_newline() {
  state_ = State::in_line;
  if (limits_.bare_newline == BareNewline::reject) {
    fail(Problem::bare_newline);
    return;
  }
  end_line();
}

void DataReader::fail(Problem problem) {
  if (problem_ != Problem::none) return;
  problem_ = problem;
  std::string().swap(content_);  // the message will be rejected; free its memory now
}

// The end of the last BDAT chunk: a pending CR is bare, an open line gets its CRLF.
void DataReader::finish_message() {
  if (state_ == State::cr) bare_newline();
  if (line_length_ > 0) end_line();
  state_ = State::line_start;
  done_ = true;
}

}  // namespace maild::smtp
