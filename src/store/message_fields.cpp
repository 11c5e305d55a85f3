// Subject extraction and UIDL derivation shared by every backend.
// Trust: content is untrusted; the parser only scans bytes and tolerates bare LF and missing
// bodies.
#include "store/message_fields.hpp"

#include "maild/core/hash.hpp"
#include "store/addressing.hpp"

namespace maild::store {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Line [begin, end) without its CR LF (or bare LF); `next` is where the following line starts.
struct Line {
  std::string_view text;
  std::size_t next;
};

Line line_at(std::string_view content, std::size_t begin) {
  auto lf = content.find('\n', begin);
  std::size_t end = lf == std::string_view::npos ? content.size() : lf;
  std::size_t next = lf == std::string_view::npos ? content.size() : lf + 1;
  if (end > begin && content[end - 1] == '\r') --end;
  return {content.substr(begin, end - begin), next};
}

bool starts_with_subject(std::string_view line) {
  static constexpr std::string_view name = "subject:";
  if (line.size() < name.size()) return false;
  return lowercase_ascii(line.substr(0, name.size())) == name;
}

std::string trim(std::string_view text) {
  std::size_t b = 0, e = text.size();
  while (b < e && is_wsp(text[b])) ++b;
  while (e > b && is_wsp(text[e - 1])) --e;
  return std::string(text.substr(b, e - b));
}

}  // namespace

std::string header_subject(std::string_view content) {
  std::size_t pos = 0;
  while (pos < content.size()) {
    Line line = line_at(content, pos);
    if (line.text.empty()) break;  // end of the header section
    pos = line.next;
    if (!starts_with_subject(line.text)) continue;

    // RFC 5322 unfolding: a CRLF followed by WSP is removed, the WSP kept.
    std::string value(line.text.substr(8));
    while (pos < content.size()) {
      Line more = line_at(content, pos);
      if (more.text.empty() || !is_wsp(more.text.front())) break;
      value.append(more.text);
      pos = more.next;
    }
    return trim(value);
  }
  return {};
}

std::string delivery_uidl(std::string_view mailbox_address, std::string_view content_hash_hex) {
  std::string input = lowercase_ascii(mailbox_address);
  input.push_back('\n');
  input.append(content_hash_hex);
  return sha256(input).hex();
}

}  // namespace maild::store
