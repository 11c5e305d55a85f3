// Reply formatting; see reply.hpp. Pure.
#include "smtp/reply.hpp"

#include <fmt/format.h>

namespace maild::smtp {

std::string format_reply(int code, std::string_view enhanced, std::string_view text) {
  std::string out;
  for (;;) {
    const auto newline = text.find('\n');
    const bool last = newline == std::string_view::npos;
    std::string_view line = last ? text : text.substr(0, newline);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fmt::format_to(std::back_inserter(out), "{}{}{}{}{}\r\n", code, last ? ' ' : '-', enhanced,
                   enhanced.empty() || line.empty() ? "" : " ", line);
    if (last) return out;
    text.remove_prefix(newline + 1);
  }
}

}  // namespace maild::smtp
