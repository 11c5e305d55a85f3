// Remote SMTP replies; see reply_parser.hpp. Pure.
#include "smtp/reply_parser.hpp"

#include <algorithm>
#include <charconv>

#include "smtp/limits.hpp"

namespace maild::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper_case(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), upper);
  return out;
}

// Control characters would break the log and the DSNs the text ends up in; HT is text.
bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto octet = static_cast<unsigned char>(c);
    return (octet < 0x20 && c != '\t') || octet == 0x7f;
  });
}

// 1 to 3 digits at the front of `text`; how many, or 0.
std::size_t digits_at(std::string_view text) {
  std::size_t n = 0;
  while (n < text.size() && n < 4 && is_digit(text[n])) ++n;
  return n <= 3 ? n : 0;
}

// RFC 3463: class "." subject "." detail, class 2, 4 or 5, subject and
// detail of 1-3 digits, then a space or the end. Its length, or 0.
std::size_t enhanced_code_length(std::string_view text, char wanted_class) {
  if (text.size() < 5 || text[0] != wanted_class || text[1] != '.') return 0;
  const std::size_t subject = digits_at(text.substr(2));
  if (subject == 0 || 2 + subject >= text.size() || text[2 + subject] != '.') return 0;
  const std::size_t detail = digits_at(text.substr(3 + subject));
  if (detail == 0) return 0;
  const std::size_t length = 3 + subject + detail;
  if (length < text.size() && text[length] != ' ') return 0;
  return length;
}

// Mechanisms kept from AUTH lines: far more than exist, few enough to search.
constexpr std::size_t auth_mechanisms_max = 32;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::string ServerReply::summary() const {
  std::string out = std::to_string(code);
  out += ' ';
  if (!enhanced.empty()) {
    out += enhanced;
  } else {
    out += static_cast<char>('0' + kind());
    out += ".0.0";
  }
  std::string text;
  for (const auto& line : lines) {
    const auto part = trim(line);
    if (part.empty()) continue;
    if (!text.empty()) text += "; ";
    text += part;
  }
  if (text.size() > reply_summary_text_max) text.resize(reply_summary_text_max);
  for (auto& c : text) {
    const auto octet = static_cast<unsigned char>(c);
    if (octet < 0x20 || octet >= 0x7f) c = '?';
  }
  if (!text.empty()) out += ' ' + text;
  return out;
}

ReplyParser::Status ReplyParser::fail(std::string why) {
  malformed_ = true;
  problem_ = std::move(why);
  return Status::malformed;
}

ReplyParser::Status ReplyParser::feed(std::string_view line) {
  if (malformed_) return Status::malformed;
  if (line.size() + 2 > reply_line_max) return fail("reply line too long");
  if (reply_.lines.size() >= reply_lines_max) return fail("reply has too many lines");
  // RFC 5321 4.2: the first digit 2-5, the second 0-5, the third 0-9.
  if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
      !is_digit(line[2]))
    return fail("reply does not start with a valid code");
  int code = 0;
  std::from_chars(line.data(), line.data() + 3, code);
  if (reply_.code != 0 && code != reply_.code) return fail("reply lines have different codes");
  const bool last = line.size() == 3 || line[3] == ' ';
  if (!last && line[3] != '-') return fail("reply code not followed by a space or '-'");
  auto text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (has_control(text)) return fail("reply text holds control characters");
  if (const auto length = enhanced_code_length(text, line[0]); length > 0) {
    if (reply_.lines.empty()) reply_.enhanced = std::string(text.substr(0, length));
    text.remove_prefix(std::min(length + 1, text.size()));
  }
  reply_.code = code;
  reply_.lines.emplace_back(text);
  return last ? Status::complete : Status::incomplete;
}

ServerReply ReplyParser::take() {
  auto reply = std::move(reply_);
  reset();
  return reply;
}

void ReplyParser::reset() {
  reply_ = ServerReply{};
  problem_.clear();
  malformed_ = false;
}

std::variant<ServerReply, std::string> parse_reply(std::string_view text) {
  ReplyParser parser;
  while (!text.empty()) {
    const auto end = text.find("\r\n");
    if (end == std::string_view::npos) return std::string("reply line without CRLF");
    const auto status = parser.feed(text.substr(0, end));
    text.remove_prefix(end + 2);
    if (status == ReplyParser::Status::malformed) return parser.problem();
    if (status == ReplyParser::Status::complete) {
      if (!text.empty()) return std::string("bytes after the reply's last line");
      return parser.take();
    }
  }
  return std::string("reply ends before its last line");
}

Extensions parse_extensions(const ServerReply& ehlo) {
  Extensions offered;
  // The first line is the server's name and greeting; keywords follow.
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const auto line = trim(ehlo.lines[i]);
    // Old servers wrote "AUTH=PLAIN LOGIN"; it means the same as "AUTH PLAIN LOGIN".
    const auto keyword_end = line.find_first_of(" =");
    const auto keyword = upper_case(line.substr(0, keyword_end));
    const auto parameters =
        keyword_end == std::string_view::npos ? std::string_view{} : line.substr(keyword_end + 1);
    if (keyword == "PIPELINING") {
      offered.pipelining = true;
    } else if (keyword == "STARTTLS") {
      offered.starttls = true;
    } else if (keyword == "8BITMIME") {
      offered.eight_bit_mime = true;
    } else if (keyword == "SMTPUTF8") {
      offered.smtputf8 = true;
    } else if (keyword == "DSN") {
      offered.dsn = true;
    } else if (keyword == "ENHANCEDSTATUSCODES") {
      offered.enhanced_status_codes = true;
    } else if (keyword == "CHUNKING") {
      offered.chunking = true;
    } else if (keyword == "SOURCE") {
      offered.source = true;
    } else if (keyword == "SIZE") {
      const auto number = trim(parameters);
      std::uint64_t size = 0;
      const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), size);
      // "SIZE" alone, or a number we cannot read, announces no limit.
      offered.size = (error == std::errc{} && end == number.data() + number.size()) ? size : 0;
    } else if (keyword == "AUTH") {
      auto rest = parameters;
      while (!rest.empty()) {
        const auto space = rest.find(' ');
        const auto mechanism = trim(rest.substr(0, space));
        if (!mechanism.empty() && offered.auth.size() < auth_mechanisms_max) {
          auto name = upper_case(mechanism);
          if (std::find(offered.auth.begin(), offered.auth.end(), name) == offered.auth.end())
            offered.auth.push_back(std::move(name));
        }
        rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
      }
    }
  }
  return offered;
}

}  // namespace maild::smtp
