// Parses one SMTP command line into a verb and its checked arguments.
// Trust: none; the line is client bytes and every parameter is validated here.
#include "smtp/command.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <vector>

namespace maild::smtp {
namespace {

// RFC 3461 4.4: ENVID at most 100 characters; RFC 3461 4.2 and RFC 4954 5
// allow 500 more octets on the line for ORCPT and AUTH=.
constexpr std::size_t envid_max = 100;
constexpr std::size_t orcpt_max = 500;
constexpr std::size_t auth_param_max = 500;
constexpr std::size_t number_digits_max = 20;  // 2^64 - 1 has 20 digits
constexpr std::size_t mechanism_max = 20;      // RFC 4422 3.1

struct VerbName {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbName, 16> verb_names{{
    {"HELO", Verb::helo},
    {"EHLO", Verb::ehlo},
    {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt},
    {"DATA", Verb::data},
    {"BDAT", Verb::bdat},
    {"RSET", Verb::rset},
    {"NOOP", Verb::noop},
    {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy},
    {"EXPN", Verb::expn},
    {"HELP", Verb::help},
    {"STARTTLS", Verb::starttls},
    {"AUTH", Verb::auth},
    {"SOURCE", Verb::source},
    {"GET", Verb::get},
}};

char upper(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }

std::string uppercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), upper);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return upper(x) == upper(y); });
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string_view trim_spaces(std::string_view text) {
  const auto first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// Space-separated words; runs of spaces count as one separator.
std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) return out;
    text.remove_prefix(start);
    const auto end = std::min(text.find(' '), text.size());
    out.push_back(text.substr(0, end));
    text.remove_prefix(end);
  }
}

Reply syntax_error(std::string text) { return Reply{501, "5.5.2", std::move(text)}; }
Reply bad_parameter(std::string text) { return Reply{501, "5.5.4", std::move(text)}; }
Reply unsupported_parameter(std::string text) { return Reply{555, "5.5.4", std::move(text)}; }

std::optional<std::uint64_t> parse_number(std::string_view text) {
  if (text.empty() || text.size() > number_digits_max) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;  // RFC 3461 says uppercase; lowercase is harmless
  return -1;
}

// xtext, optionally with raw UTF-8 (RFC 6533 utf-8-addr-unitext). The decoded
// text ends up in DSN headers, so control characters are refused after decoding too.
std::optional<std::string> decode_xtext(std::string_view xtext, bool allow_utf8) {
  std::string out;
  for (std::size_t i = 0; i < xtext.size(); ++i) {
    const char c = xtext[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '+') {
      if (i + 2 >= xtext.size()) return std::nullopt;
      const int high = hex_value(xtext[i + 1]);
      const int low = hex_value(xtext[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if ((u >= 33 && u <= 126 && c != '=') || (allow_utf8 && u >= 0x80)) {
      out.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  if (std::any_of(out.begin(), out.end(), is_control)) return std::nullopt;
  if (!allow_utf8 && std::any_of(out.begin(), out.end(),
                                 [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return std::nullopt;
  }
  if (allow_utf8 && !valid_utf8(out)) return std::nullopt;
  return out;
}

// RFC 5321 4.1.2 esmtp-param: keyword [ "=" value ].
struct Parameter {
  std::string keyword;  // uppercased
  std::optional<std::string_view> value;
};

bool valid_keyword(std::string_view keyword) {
  return !keyword.empty() && is_ascii_alnum(keyword.front()) &&
         std::all_of(keyword.begin(), keyword.end(),
                     [](char c) { return is_ascii_alnum(c) || c == '-'; });
}

// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under RFC 6531.
bool valid_value(std::string_view value) {
  return !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 33 && u <= 126 && c != '=') || u >= 0x80;
  });
}

std::variant<std::vector<Parameter>, Reply> parse_parameters(std::string_view text) {
  std::vector<Parameter> out;
  for (const auto word : words(text)) {
    const auto equals = word.find('=');
    Parameter parameter{uppercase(word.substr(0, equals)), std::nullopt};
    if (!valid_keyword(parameter.keyword)) return bad_parameter("Bad parameter syntax");
    if (equals != std::string_view::npos) {
      parameter.value = word.substr(equals + 1);
      if (!valid_value(*parameter.value)) return bad_parameter("Bad parameter value syntax");
    }
    if (std::any_of(out.begin(), out.end(),
                    [&](const Parameter& p) { return p.keyword == parameter.keyword; })) {
      return bad_parameter("Duplicate " + parameter.keyword + " parameter");
    }
    out.push_back(std::move(parameter));
  }
  return out;
}

// Splits "<path> params" at the ">" that closes the path; quoted strings may hold ">" and " ".
std::optional<std::pair<std::string_view, std::string_view>> split_path(std::string_view text) {
  if (text.empty() || text.front() != '<') return std::nullopt;
  bool quoted = false;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '>') {
      const auto rest = text.substr(i + 1);
      if (!rest.empty() && rest.front() != ' ') return std::nullopt;
      return std::pair{text.substr(0, i + 1), rest};
    }
  }
  return std::nullopt;
}

// "FROM:" / "TO:" in any case, then at most one space (clients commonly send one).
std::optional<std::string_view> after_prefix(std::string_view argument, std::string_view prefix) {
  if (!istarts_with(argument, prefix)) return std::nullopt;
  argument.remove_prefix(prefix.size());
  if (!argument.empty() && argument.front() == ' ') argument.remove_prefix(1);
  return argument;
}

std::variant<Mail, Reply> parse_mail(std::string_view argument) {
  const auto rest = after_prefix(argument, "FROM:");
  if (!rest) return syntax_error("Syntax: MAIL FROM:<address> [parameters]");
  const auto split = split_path(*rest);
  const Reply bad_sender{501, "5.1.7", "Bad sender address syntax"};
  if (!split) return bad_sender;
  auto path = parse_path(split->first, PathKind::reverse);
  if (!path) return bad_sender;
  Mail mail;
  mail.reverse_path = std::move(*path);
  auto parameters = parse_parameters(split->second);
  if (auto* reply = std::get_if<Reply>(&parameters)) return std::move(*reply);
  for (const auto& [keyword, value] : std::get<std::vector<Parameter>>(parameters)) {
    if (keyword == "SMTPUTF8") {
      if (value) return bad_parameter("SMTPUTF8 takes no value");
      mail.smtputf8 = true;
      continue;
    }
    const bool known = keyword == "SIZE" || keyword == "BODY" || keyword == "RET" ||
                       keyword == "ENVID" || keyword == "AUTH";
    if (!known) return unsupported_parameter("Unsupported parameter " + keyword);
    if (!value) return bad_parameter(keyword + " needs a value");
    if (keyword == "SIZE") {
      mail.size = parse_number(*value);
      if (!mail.size) return bad_parameter("Bad SIZE value");
    } else if (keyword == "BODY") {
      if (iequals(*value, "7BIT")) {
        mail.body = Mail::Body::seven_bit;
      } else if (iequals(*value, "8BITMIME")) {
        mail.body = Mail::Body::eight_bit_mime;
      } else if (iequals(*value, "BINARYMIME")) {
        return unsupported_parameter("BODY=BINARYMIME is not supported");
      } else {
        return bad_parameter("Bad BODY value");
      }
    } else if (keyword == "RET") {
      if (iequals(*value, "FULL")) {
        mail.ret = Mail::Ret::full;
      } else if (iequals(*value, "HDRS")) {
        mail.ret = Mail::Ret::hdrs;
      } else {
        return bad_parameter("Bad RET value");
      }
    } else if (keyword == "ENVID") {
      auto envid = value->size() <= envid_max ? decode_xtext(*value, false) : std::nullopt;
      if (!envid || envid->empty()) return bad_parameter("Bad ENVID value");
      mail.envid = std::move(*envid);
    } else {  // AUTH
      if (*value == "<>") {
        mail.auth = "<>";
      } else {
        auto auth = value->size() <= auth_param_max ? decode_xtext(*value, false) : std::nullopt;
        if (!auth || auth->empty()) return bad_parameter("Bad AUTH value");
        mail.auth = std::move(*auth);
      }
    }
  }
  return mail;
}

std::optional<unsigned> parse_notify(std::string_view value) {
  unsigned notify = 0;
  for (;;) {
    const auto comma = value.find(',');
    const auto item = value.substr(0, comma);
    unsigned bit = 0;
    if (iequals(item, "NEVER")) {
      bit = notify_never;
    } else if (iequals(item, "SUCCESS")) {
      bit = notify_success;
    } else if (iequals(item, "FAILURE")) {
      bit = notify_failure;
    } else if (iequals(item, "DELAY")) {
      bit = notify_delay;
    } else {
      return std::nullopt;
    }
    if ((notify & bit) != 0) return std::nullopt;
    notify |= bit;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  // RFC 3461 4.1: NEVER stands alone.
  if ((notify & notify_never) != 0 && notify != notify_never) return std::nullopt;
  return notify;
}

// ORCPT = addr-type ";" xtext, with addr-type "rfc822" or (RFC 6533) "utf-8".
std::optional<std::string> parse_orcpt(std::string_view value) {
  if (value.size() > orcpt_max) return std::nullopt;
  const auto semicolon = value.find(';');
  if (semicolon == std::string_view::npos) return std::nullopt;
  const auto type = value.substr(0, semicolon);
  const bool utf8 = iequals(type, "utf-8");
  if (!utf8 && !iequals(type, "rfc822")) return std::nullopt;
  auto address = decode_xtext(value.substr(semicolon + 1), utf8);
  if (!address || address->empty()) return std::nullopt;
  return (utf8 ? "utf-8;" : "rfc822;") + *address;
}

std::variant<Rcpt, Reply> parse_rcpt(std::string_view argument) {
  const auto rest = after_prefix(argument, "TO:");
  if (!rest) return syntax_error("Syntax: RCPT TO:<address> [parameters]");
  const auto split = split_path(*rest);
  const Reply bad_recipient{501, "5.1.3", "Bad recipient address syntax"};
  if (!split) return bad_recipient;
  auto path = parse_path(split->first, PathKind::forward);
  if (!path) return bad_recipient;
  Rcpt rcpt;
  rcpt.forward_path = std::move(*path);
  auto parameters = parse_parameters(split->second);
  if (auto* reply = std::get_if<Reply>(&parameters)) return std::move(*reply);
  for (const auto& [keyword, value] : std::get<std::vector<Parameter>>(parameters)) {
    if (keyword != "NOTIFY" && keyword != "ORCPT") {
      return unsupported_parameter("Unsupported parameter " + keyword);
    }
    if (!value) return bad_parameter(keyword + " needs a value");
    if (keyword == "NOTIFY") {
      const auto notify = parse_notify(*value);
      if (!notify) return bad_parameter("Bad NOTIFY value");
      rcpt.notify = *notify;
    } else {
      auto orcpt = parse_orcpt(*value);
      if (!orcpt) return bad_parameter("Bad ORCPT value");
      rcpt.orcpt = std::move(*orcpt);
    }
  }
  return rcpt;
}

std::variant<Bdat, Reply> parse_bdat(std::string_view argument) {
  const auto parts = words(argument);
  const Reply usage = bad_parameter("Syntax: BDAT size [LAST]");
  if (parts.empty() || parts.size() > 2) return usage;
  const auto size = parse_number(parts[0]);
  if (!size) return usage;
  if (parts.size() == 2 && !iequals(parts[1], "LAST")) return usage;
  return Bdat{*size, parts.size() == 2};
}

std::variant<Auth, Reply> parse_auth(std::string_view argument) {
  const auto parts = words(argument);
  const Reply usage = bad_parameter("Syntax: AUTH mechanism [initial-response]");
  if (parts.empty() || parts.size() > 2) return usage;
  const auto mechanism = parts[0];
  if (mechanism.size() > mechanism_max ||
      !std::all_of(mechanism.begin(), mechanism.end(),
                   [](char c) { return is_ascii_alnum(c) || c == '-' || c == '_'; })) {
    return usage;
  }
  Auth auth{uppercase(mechanism), std::nullopt};
  if (parts.size() == 2) {
    static constexpr std::string_view base64_chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    if (parts[1].find_first_not_of(base64_chars) != std::string_view::npos) {
      return syntax_error("Cannot decode the initial response");  // RFC 4954 4: 501 5.5.2
    }
    auth.initial_response = std::string(parts[1]);
  }
  return auth;
}

// SOURCE-GET.md 2: 32 lowercase hex characters; anything else is malformed.
std::variant<Token, Reply> parse_token(std::string_view argument) {
  const bool hex =
      argument.size() == 32 && std::all_of(argument.begin(), argument.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
  if (!hex) return bad_parameter("malformed token: 32 characters 0-9 a-f expected");
  return Token{std::string(argument)};
}

// Moves a per-verb result into the command, or passes its Reply through.
template <class Parsed>
std::variant<Command, Reply> attach(Command command, std::variant<Parsed, Reply> result) {
  if (auto* reply = std::get_if<Reply>(&result)) return std::move(*reply);
  command.parsed = std::move(std::get<Parsed>(result));
  return command;
}

}  // namespace

namespace {
// Windows and appliance clients send names like "my_host" or "HOST_1": not a
// domain by RFC 1035, but refusing their EHLO would refuse all their mail.
// Letters, digits, '-', '.', '_' only, starting and ending with a letter or digit.
bool lenient_hello_name(std::string_view text) {
  if (text.empty() || text.size() > domain_max) return false;
  const auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(text.front()) || !alnum(text.back())) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}
}  // namespace

std::variant<Command, Reply> parse_command(std::string_view line) {
  const auto space = std::min(line.find(' '), line.size());
  Command command;
  command.verb_text = std::string(line.substr(0, space));
  command.argument = std::string(trim_spaces(line.substr(space)));

  const auto name = std::find_if(verb_names.begin(), verb_names.end(), [&](const VerbName& v) {
    return iequals(v.name, command.verb_text);
  });
  if (name != verb_names.end()) command.verb = name->verb;
  const bool free_text = command.verb == Verb::noop || command.verb == Verb::help ||
                         command.verb == Verb::vrfy || command.verb == Verb::expn ||
                         command.verb == Verb::unknown;
  // NUL, CR, LF, DEL and the like never belong in a command; TAB only in free text.
  const bool bad_control = std::any_of(
      line.begin(), line.end(), [&](char c) { return is_control(c) && !(c == '\t' && free_text); });
  if (bad_control || std::any_of(command.verb_text.begin(), command.verb_text.end(), is_control)) {
    return Reply{500, "5.5.2", "Syntax error: control character in command"};
  }

  const std::string_view argument = command.argument;
  switch (command.verb) {
    case Verb::helo:
    case Verb::ehlo:
      if (!valid_domain(argument) && !lenient_hello_name(argument)) {
        return bad_parameter(std::string("Syntax: ") +
                             (command.verb == Verb::helo ? "HELO" : "EHLO") +
                             " domain-or-address-literal");
      }
      command.parsed = Hello{command.argument};
      return command;
    case Verb::mail:
      return attach(std::move(command), parse_mail(argument));
    case Verb::rcpt:
      return attach(std::move(command), parse_rcpt(argument));
    case Verb::bdat:
      return attach(std::move(command), parse_bdat(argument));
    case Verb::auth:
      return attach(std::move(command), parse_auth(argument));
    case Verb::source:
    case Verb::get:
      return attach(std::move(command), parse_token(argument));
    case Verb::data:
    case Verb::rset:
    case Verb::quit:
    case Verb::starttls:
      if (!argument.empty())
        return bad_parameter("Syntax: " + uppercase(command.verb_text) + " takes no arguments");
      return command;
    case Verb::noop:
    case Verb::vrfy:
    case Verb::expn:
    case Verb::help:
    case Verb::unknown:
      return command;
  }
  return command;
}

std::string xtext_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 33 && u <= 126 && c != '+' && c != '=') {
      out.push_back(c);
    } else {
      out.push_back('+');
      out.push_back(digits[u >> 4]);
      out.push_back(digits[u & 0x0f]);
    }
  }
  return out;
}

std::optional<std::string> xtext_decode(std::string_view xtext) {
  return decode_xtext(xtext, false);
}

}  // namespace maild::smtp
