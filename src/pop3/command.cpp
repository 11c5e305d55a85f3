// POP3 command parsing and response stuffing; see command.hpp. Pure functions.
#include "pop3/command.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

namespace maild::pop3 {
namespace {

struct Keyword {
  std::string_view name;
  Verb verb;
};
constexpr std::array<Keyword, 14> keywords{{
    {"USER", Verb::user},
    {"PASS", Verb::pass},
    {"AUTH", Verb::auth},
    {"STLS", Verb::stls},
    {"CAPA", Verb::capa},
    {"STAT", Verb::stat},
    {"LIST", Verb::list},
    {"RETR", Verb::retr},
    {"DELE", Verb::dele},
    {"RSET", Verb::rset},
    {"NOOP", Verb::noop},
    {"TOP", Verb::top},
    {"UIDL", Verb::uidl},
    {"QUIT", Verb::quit},
}};

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::toupper(static_cast<unsigned char>(x)) ==
           std::toupper(static_cast<unsigned char>(y));
  });
}

std::optional<std::uint64_t> number(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Splits on single spaces; more than `max` words or an empty word is an error.
// No limit per word: RFC 2449 4 lifts RFC 1939's 40 octets to the line's 255.
std::optional<std::vector<std::string_view>> words(std::string_view text, std::size_t max) {
  std::vector<std::string_view> out;
  if (text.empty()) return out;
  while (true) {
    const auto space = text.find(' ');
    out.push_back(text.substr(0, space));
    if (out.back().empty() || out.size() > max) return std::nullopt;
    if (space == std::string_view::npos) return out;
    text.remove_prefix(space + 1);
  }
}

}  // namespace

std::variant<Command, std::string> parse_command(std::string_view line) {
  if (std::any_of(line.begin(), line.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      }))
    return std::string("control character in command");
  const auto space = line.find(' ');
  const auto name = line.substr(0, space);
  const auto rest = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  const auto keyword = std::find_if(keywords.begin(), keywords.end(),
                                    [&](const Keyword& k) { return iequals(k.name, name); });
  Command command;
  if (keyword == keywords.end()) return command;  // Verb::unknown
  command.verb = keyword->verb;

  switch (command.verb) {
    case Verb::pass:
      // The secret is the rest of the line and may hold spaces (RFC 1939 7).
      if (rest.empty()) return std::string("PASS needs a password");
      command.argument = std::string(rest);
      return command;
    case Verb::auth: {
      if (rest.empty() || rest.front() == ' ' || rest.find("  ") != std::string_view::npos)
        return std::string("AUTH needs a mechanism");
      command.argument = std::string(rest);
      return command;
    }
    case Verb::user: {
      const auto args = words(rest, 1);
      if (!args || args->size() != 1) return std::string("USER needs one name");
      command.argument = std::string(args->front());
      return command;
    }
    case Verb::list:
    case Verb::uidl: {
      const auto args = words(rest, 1);
      if (!args) return std::string("syntax: ") + std::string(keyword->name) + " [message]";
      if (args->empty()) return command;
      command.number = number(args->front());
      if (!command.number) return std::string("invalid message number");
      return command;
    }
    case Verb::retr:
    case Verb::dele: {
      const auto args = words(rest, 1);
      if (!args || args->size() != 1)
        return std::string("syntax: ") + std::string(keyword->name) + " message";
      command.number = number(args->front());
      if (!command.number) return std::string("invalid message number");
      return command;
    }
    case Verb::top: {
      const auto args = words(rest, 2);
      if (!args || args->size() != 2) return std::string("syntax: TOP message lines");
      command.number = number((*args)[0]);
      command.lines = number((*args)[1]);
      if (!command.number || !command.lines) return std::string("invalid number");
      return command;
    }
    default:
      if (!rest.empty()) return std::string(keyword->name) + " takes no arguments";
      return command;
  }
}

void ByteStuffer::append(std::string_view text, std::string& out) {
  out.reserve(out.size() + text.size() + text.size() / 64);
  for (const char c : text) {
    if (line_start_ && c == '.') out.push_back('.');
    out.push_back(c);
    line_start_ = after_cr_ && c == '\n';
    after_cr_ = c == '\r';
  }
}

void ByteStuffer::finish(std::string& out) {
  if (!line_start_) out += "\r\n";
  out += ".\r\n";
  line_start_ = true;
  after_cr_ = false;
}

std::string_view top_of(std::string_view message, std::uint64_t lines) {
  auto header_end = message.find("\r\n\r\n");
  if (header_end == std::string_view::npos) return message;  // all header, no body
  std::size_t at = header_end + 4;
  for (std::uint64_t n = 0; n < lines && at < message.size(); ++n) {
    const auto end = message.find("\r\n", at);
    at = end == std::string_view::npos ? message.size() : end + 2;
  }
  return message.substr(0, at);
}

}  // namespace maild::pop3
