// Parses RFC 5321 paths (with RFC 6531 UTF-8) and EHLO domains.
// Trust: none; every octet is checked against the grammar, nothing is assumed.
#include "smtp/address.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "maild/core/net_types.hpp"

namespace maild::smtp {
namespace {

constexpr std::size_t label_max = 63;  // RFC 1035 2.3.4

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_non_ascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// RFC 5322 atext, plus UTF-8 octets (RFC 6531 3.3); the UTF-8 is checked as a whole.
bool is_atext(char c) {
  static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return is_ascii_alnum(c) || is_non_ascii(c) || specials.find(c) != std::string_view::npos;
}

bool valid_dot_string(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  char previous = '\0';
  for (const char c : text) {
    if (c == '.') {
      if (previous == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
    previous = c;
  }
  return valid_utf8(text);
}

// qtextSMTP is %d32-33 / %d35-91 / %d93-126 (plus UTF-8): printable but for '"' and '\'.
bool is_qtext(char c) { return is_non_ascii(c) || (c >= 32 && c <= 126 && c != '"' && c != '\\'); }

// The content of a quoted string that starts at text[0]; `length` gets the
// octets it spans including both quotes.
std::optional<std::string> read_quoted(std::string_view text, std::size_t& length) {
  if (text.empty() || text.front() != '"') return std::nullopt;
  std::string content;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      length = i + 1;
      if (!valid_utf8(content)) return std::nullopt;
      return content;
    }
    if (c == '\\') {
      // quoted-pairSMTP is a backslash and one printable ASCII octet (%d32-126).
      if (i + 1 >= text.size() || text[i + 1] < 32 || text[i + 1] > 126) return std::nullopt;
      content.push_back(text[++i]);
    } else if (is_qtext(c)) {
      content.push_back(c);
    } else {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The shortest spelling of a local part: bare when it is a dot-string, else quoted.
std::string canonical_local_part(const std::string& content) {
  if (valid_dot_string(content)) return content;
  std::string quoted = "\"";
  for (const char c : content) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > label_max) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(),
                     [](char c) { return is_ascii_alnum(c) || c == '-' || is_non_ascii(c); });
}

bool valid_plain_domain(std::string_view text) {
  if (text.empty() || text.size() > domain_max || !valid_utf8(text)) return false;
  for (;;) {
    const auto dot = text.find('.');
    if (!valid_label(text.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    text.remove_prefix(dot + 1);
  }
}

// RFC 5321 IPv4-address-literal: four Snum (1*3DIGIT, 0-255) joined by dots.
bool valid_ipv4(std::string_view text) {
  for (int part = 0; part < 4; ++part) {
    std::size_t digits = 0;
    unsigned value = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[digits] - '0');
      if (++digits > 3) return false;
    }
    if (digits == 0 || value > 255) return false;
    text.remove_prefix(digits);
    if (part < 3) {
      if (text.empty() || text.front() != '.') return false;
      text.remove_prefix(1);
    }
  }
  return text.empty();
}

// "[192.0.2.1]" or "[IPv6:2001:db8::1]". General-address-literals have no
// registered tags besides IPv6, so they are refused.
bool valid_address_literal(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  const auto inner = text.substr(1, text.size() - 2);
  static constexpr std::string_view v6_tag = "IPv6:";
  if (inner.size() > v6_tag.size() && iequals(inner.substr(0, v6_tag.size()), v6_tag)) {
    const auto v6 = inner.substr(v6_tag.size());
    // parse_ip also takes dotted IPv4, which is not an IPv6 literal.
    return v6.find(':') != std::string_view::npos &&
           v6.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos &&
           parse_ip(v6).has_value();
  }
  return valid_ipv4(inner);
}

// Mailbox = Local-part "@" ( Domain / address-literal ).
std::optional<Path> parse_mailbox(std::string_view text) {
  Path path;
  std::size_t local_length = 0;
  if (!text.empty() && text.front() == '"') {
    auto content = read_quoted(text, local_length);
    if (!content || content->empty()) return std::nullopt;
    path.local_part = canonical_local_part(*content);
  } else {
    local_length = std::min(text.find('@'), text.size());
    const auto local = text.substr(0, local_length);
    if (!valid_dot_string(local)) return std::nullopt;
    path.local_part = std::string(local);
  }
  if (local_length > local_part_max) return std::nullopt;
  if (local_length >= text.size() || text[local_length] != '@') return std::nullopt;
  const auto domain = text.substr(local_length + 1);
  if (!valid_domain(domain) || domain.size() > domain_max) return std::nullopt;
  path.domain = std::string(domain);
  return path;
}

// A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain.
bool valid_source_route(std::string_view route) {
  for (;;) {
    const auto comma = route.find(',');
    const auto at_domain = route.substr(0, comma);
    if (at_domain.empty() || at_domain.front() != '@') return false;
    if (!valid_plain_domain(at_domain.substr(1))) return false;
    if (comma == std::string_view::npos) return true;
    route.remove_prefix(comma + 1);
  }
}

}  // namespace

bool Path::has_utf8() const {
  return std::any_of(local_part.begin(), local_part.end(), is_non_ascii) ||
         std::any_of(domain.begin(), domain.end(), is_non_ascii);
}

std::string Path::address() const {
  if (is_null()) return {};
  if (is_postmaster()) return "postmaster";
  return local_part + "@" + domain;
}

std::optional<Path> parse_path(std::string_view text, PathKind kind) {
  if (text.size() < 2 || text.size() > path_max) return std::nullopt;
  if (text.front() != '<' || text.back() != '>') return std::nullopt;
  auto inner = text.substr(1, text.size() - 2);
  if (inner.empty()) {
    if (kind == PathKind::reverse) return Path{};
    return std::nullopt;
  }
  if (kind == PathKind::forward && iequals(inner, "postmaster")) {
    return Path{std::string(inner), {}};
  }
  if (inner.front() == '@') {
    // Route domains cannot hold ':' (no address literals there), so the first ends the route.
    const auto colon = inner.find(':');
    if (colon == std::string_view::npos || !valid_source_route(inner.substr(0, colon))) {
      return std::nullopt;
    }
    inner.remove_prefix(colon + 1);
  }
  return parse_mailbox(inner);
}

bool valid_domain(std::string_view text) {
  if (!text.empty() && text.front() == '[') return valid_address_literal(text);
  return valid_plain_domain(text);
}

bool names_postmaster(const Path& forward_path) {
  constexpr std::string_view name = "postmaster";
  const auto& local = forward_path.local_part;
  return std::equal(local.begin(), local.end(), name.begin(), name.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

std::vector<std::string> recipient_candidates(const Path& forward_path, std::string_view hostname,
                                              std::string_view postmaster) {
  const std::string host(hostname);
  std::vector<std::string> candidates{forward_path.is_postmaster() ? "postmaster@" + host
                                                                   : forward_path.address()};
  if (!names_postmaster(forward_path)) return candidates;
  const auto add = [&](std::string address) {
    const auto same = [&](const std::string& c) {
      return std::equal(c.begin(), c.end(), address.begin(), address.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
      });
    };
    if (std::none_of(candidates.begin(), candidates.end(), same))
      candidates.push_back(std::move(address));
  };
  if (!postmaster.empty()) {
    add(std::string(postmaster));
    return candidates;
  }
  add("postmaster@" + host);
  if (const auto dot = host.find('.'); dot != std::string::npos)
    add("postmaster@" + host.substr(dot + 1));
  return candidates;
}

}  // namespace maild::smtp
