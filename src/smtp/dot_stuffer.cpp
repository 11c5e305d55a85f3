// Dot-stuffing; see dot_stuffer.hpp. Pure.
#include "smtp/dot_stuffer.hpp"

namespace maild::smtp {

std::string DotStuffer::stuff(std::string_view chunk) {
  std::string out;
  out.reserve(chunk.size() + chunk.size() / 64 + 1);
  for (const char c : chunk) {
    if (line_start_ && c == '.') out.push_back('.');
    out.push_back(c);
    // Only CRLF ends a line, as only CRLF.CRLF ends DATA at the receiver.
    line_start_ = after_cr_ && c == '\n';
    after_cr_ = c == '\r';
  }
  return out;
}

std::string DotStuffer::finish() const { return line_start_ ? ".\r\n" : "\r\n.\r\n"; }

}  // namespace maild::smtp
