// Fuzzes POP3 command parsing and byte-stuffing: no crash, and stuffed text
// never holds a line that is a lone "." before the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pop3/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)maild::pop3::parse_command(input);
  maild::pop3::ByteStuffer stuffer;
  std::string out;
  const std::size_t half = size / 2;
  stuffer.append(input.substr(0, half), out);
  stuffer.append(input.substr(half), out);
  stuffer.finish(out);
  // Before the final ".\r\n", no line may be a lone "." (it would end the response).
  const std::string body = out.substr(0, out.size() - 3);
  if (body.rfind(".\r\n", 0) == 0 || body.find("\r\n.\r\n") != std::string::npos) std::abort();
  (void)maild::pop3::top_of(input, static_cast<std::uint64_t>(size % 7));
  return 0;
}
