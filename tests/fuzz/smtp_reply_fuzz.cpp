// Fuzzes the parser of remote servers' replies: arbitrary bytes must parse or
// be refused without crashing; whatever parses keeps the parser's promises
// (a valid code, bounded lines, an enhanced code of the code's class, a
// printable one-line summary), and EHLO extensions never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/limits.hpp"
#include "smtp/reply_parser.hpp"

namespace {

void check(const maild::smtp::ServerReply& reply) {
  using namespace maild::smtp;
  if (reply.code < 200 || reply.code > 599) std::abort();
  if (reply.lines.empty() || reply.lines.size() > reply_lines_max) std::abort();
  for (const auto& line : reply.lines) {
    if (line.size() + 2 > reply_line_max) std::abort();
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) std::abort();
  }
  if (!reply.enhanced.empty() && reply.enhanced[0] != static_cast<char>('0' + reply.kind()))
    std::abort();
  const auto summary = reply.summary();
  if (summary.size() > 4 + 10 + 1 + reply_summary_text_max) std::abort();
  if (summary.compare(0, 3, std::to_string(reply.code)) != 0) std::abort();
  for (const char c : summary)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) std::abort();
  const auto offered = parse_extensions(reply);
  if (offered.auth.size() > reply.lines.size() * reply_line_max) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto whole = maild::smtp::parse_reply(text);
  if (const auto* reply = std::get_if<maild::smtp::ServerReply>(&whole)) check(*reply);

  // Line by line, as the client reads: every reply that completes is checked.
  maild::smtp::ReplyParser parser;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const auto line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 2);
    const auto status = parser.feed(line);
    if (status == maild::smtp::ReplyParser::Status::complete) check(parser.take());
    if (status == maild::smtp::ReplyParser::Status::malformed) {
      if (parser.problem().empty()) std::abort();
      parser.reset();
    }
  }
  return 0;
}
