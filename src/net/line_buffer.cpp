// Pure line splitting; see line_buffer.hpp. No I/O.
#include "net/line_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace maild::net {

LineBuffer::LineBuffer(std::size_t max_line) : max_line_(max_line) {}

std::span<char> LineBuffer::prepare(std::size_t n) {
  committed_ = buffer_.size();
  buffer_.resize(committed_ + n);
  return {buffer_.data() + committed_, n};
}

void LineBuffer::commit(std::size_t n) {
  buffer_.resize(committed_ + n);
  if (!discarding_) return;
  // Inside an over-long line: look for its CRLF, drop everything before it.
  for (std::size_t i = 0; i < buffer_.size(); ++i) {
    const char c = buffer_[i];
    if (discard_cr_ && c == '\n') {
      buffer_.erase(0, i + 1);
      discarding_ = false;
      discard_cr_ = false;
      scanned_ = 0;
      too_long_ready_ = true;  // reported by next() before the lines that follow
      return;
    }
    discard_cr_ = (c == '\r');
  }
  buffer_.clear();
  scanned_ = 0;
}

void LineBuffer::append(std::string_view bytes) {
  auto space = prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

std::optional<Line> LineBuffer::next() {
  if (too_long_ready_) {
    too_long_ready_ = false;
    return Line{{}, true};
  }
  const std::string_view view(buffer_);
  const auto from = scanned_ == 0 ? 0 : scanned_ - 1;  // a CR may end the scanned part
  const auto crlf = view.find("\r\n", from);
  if (crlf == std::string_view::npos) {
    scanned_ = buffer_.size();
    if (buffer_.size() >= max_line_) {
      // No CRLF within the limit: drop what we have and keep dropping until one comes.
      discard_cr_ = buffer_.back() == '\r';
      discarding_ = true;
      buffer_.clear();
      scanned_ = 0;
    }
    return std::nullopt;
  }
  scanned_ = 0;
  if (crlf + 2 > max_line_) {
    buffer_.erase(0, crlf + 2);
    return Line{{}, true};
  }
  Line line{std::string(view.substr(0, crlf)), false};
  buffer_.erase(0, crlf + 2);
  return line;
}

void LineBuffer::clear() {
  buffer_.clear();
  scanned_ = 0;
  discarding_ = false;
  discard_cr_ = false;
  too_long_ready_ = false;
}

std::string LineBuffer::take_buffered() {
  std::string bytes = std::move(buffer_);
  clear();
  return bytes;
}

void LineBuffer::unread(std::string_view bytes) {
  buffer_.insert(0, bytes);
  scanned_ = 0;
}

}  // namespace maild::net
