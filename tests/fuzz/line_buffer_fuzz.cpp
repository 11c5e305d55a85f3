// Fuzzes the line splitter: arbitrary bytes in arbitrary chunks must yield
// lines that contain no CRLF and fit the limit, with memory bounded by it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/line_buffer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_line = 3 + data[0] % 64;
  const std::size_t chunk = 1 + data[1] % 17;
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  maild::net::LineBuffer buffer(max_line);
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    buffer.append(input.substr(at, chunk));
    while (auto line = buffer.next()) {
      if (line->too_long && !line->text.empty()) std::abort();
      if (line->text.size() + 2 > max_line) std::abort();
      if (line->text.find("\r\n") != std::string_view::npos) std::abort();
    }
  }
  return 0;
}
