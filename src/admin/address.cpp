// Address and domain syntax for mailctl; talks to nothing. Trust: none in the input; narrower
// than RFC 5321 on purpose (no quoted local parts or literals): these become mailboxes.
#include "address.hpp"

#include <algorithm>
#include <cctype>

#include "command.hpp"

namespace maild::admin {

namespace {

constexpr std::size_t max_local_length = 64;    // RFC 5321 4.5.3.1.1
constexpr std::size_t max_domain_length = 253;  // RFC 1035, without the trailing dot
constexpr std::size_t max_label_length = 63;

bool is_atext(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// dot-atom: atoms of atext joined by single dots (RFC 5322 3.2.3).
bool is_dot_atom(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  if (text.find("..") != std::string_view::npos) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '.' || is_atext(c); });
}

bool is_label(std::string_view label) {
  if (label.empty() || label.size() > max_label_length) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return c == '-' || std::isalnum(static_cast<unsigned char>(c)) != 0;
  });
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Mailboxes, aliases and domains are ASCII: maild accepts SMTPUTF8 mail in
// transit, but keeps no internationalized address of its own (docs/mailctl.md).
void refuse_non_ascii(std::string_view what, std::string_view text) {
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return;
  throw RequestError(std::string(what) + " " + quoted(text) +
                     " is not ASCII: internationalized addresses (RFC 6531) cannot be mailboxes, "
                     "aliases or domains of maild; write a domain as its A-label (xn--...)");
}

}  // namespace

std::string domain_name(std::string_view text) {
  refuse_non_ascii("domain name", text);
  if (text.empty() || text.size() > max_domain_length)
    throw RequestError("bad domain name " + quoted(text));
  for (std::size_t start = 0;;) {
    const std::size_t dot = text.find('.', start);
    if (!is_label(text.substr(start, dot - start)))
      throw RequestError("bad domain name " + quoted(text));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return lower;
}

namespace {

// local@domain where an empty local part is allowed only when `catch_all` is.
std::string address(std::string_view text, bool catch_all) {
  refuse_non_ascii("address", text);
  const std::size_t at = text.rfind('@');
  if (at == std::string_view::npos)
    throw RequestError("bad address " + quoted(text) + ": no @domain");
  const std::string_view local = text.substr(0, at);
  if (!(local.empty() && catch_all) && (local.size() > max_local_length || !is_dot_atom(local))) {
    throw RequestError("bad address " + quoted(text) + ": the local part must be a dot-atom");
  }
  const std::string_view domain = text.substr(at + 1);
  try {
    return std::string(local) + "@" + domain_name(domain);
  } catch (const RequestError&) {
    throw RequestError("bad address " + quoted(text) + ": bad domain " + quoted(domain));
  }
}

}  // namespace

std::string mailbox_address(std::string_view text) { return address(text, false); }

std::string alias_source(std::string_view text) { return address(text, true); }

std::string_view domain_of(std::string_view address) {
  return address.substr(address.rfind('@') + 1);
}

std::optional<std::string> optional_domain(const std::vector<std::string>& args,
                                           std::size_t index) {
  if (index >= args.size()) return std::nullopt;
  return domain_name(args[index]);
}

}  // namespace maild::admin
