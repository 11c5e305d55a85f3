// Converts message text between the store's CRLF form and mbox; talks to nothing.
// Trust: the text may be anything; nothing here interprets it beyond line ends.
#include "message_format.hpp"

#include <algorithm>
#include <array>
#include <ctime>

namespace maild::admin {

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

std::string asctime_utc(std::chrono::sys_seconds time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buffer{};
  // strftime in the C locale (mailctl never calls setlocale), so the names are English.
  const std::size_t n = std::strftime(buffer.data(), buffer.size(), "%a %b %e %H:%M:%S %Y", &tm);
  return std::string(buffer.data(), n);
}

std::string mboxrd_entry(std::string_view sender, std::chrono::sys_seconds received_at,
                         std::string_view message) {
  std::string out = "From " + std::string(sender.empty() ? "MAILER-DAEMON" : sender) + " " +
                    asctime_utc(received_at) + "\n";
  for (std::size_t start = 0; start < message.size();) {
    std::size_t end = message.find('\n', start);
    const std::size_t next = end == std::string_view::npos ? message.size() : end + 1;
    if (end == std::string_view::npos) end = message.size();
    std::string_view line = message.substr(start, end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    // mboxrd: quote "From " behind any number of '>' so a reader can unquote exactly.
    const std::size_t quotes = std::min(line.find_first_not_of('>'), line.size());
    if (line.substr(quotes).starts_with("From ")) out += '>';
    out.append(line);
    out += '\n';
    start = next;
  }
  out += '\n';
  return out;
}

}  // namespace maild::admin
