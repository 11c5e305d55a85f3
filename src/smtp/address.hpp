// RFC 5321 section 4.1.2 paths and mailboxes, with RFC 6531 UTF-8.
// Trust: none in the text; a Path that comes out of parse_path is well formed
// and within the RFC 5321 4.5.3.1 length limits.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maild/core/utf8.hpp"  // valid_utf8, which the parsers use

namespace maild::smtp {

// RFC 5321 4.5.3.1.
inline constexpr std::size_t local_part_max = 64;
inline constexpr std::size_t domain_max = 255;
inline constexpr std::size_t path_max = 256;  // including "<" and ">"

struct Path {
  // A dot-string as written, or a quoted string in its shortest form
  // ("\"john doe\"", and "\"john\"" becomes "john"). Case is kept.
  std::string local_part;
  // A domain as written, or an address literal with its brackets ("[192.0.2.1]").
  // Empty for "<>" and for the bare "<Postmaster>".
  std::string domain;

  bool is_null() const { return local_part.empty() && domain.empty(); }
  bool is_postmaster() const { return !local_part.empty() && domain.empty(); }
  bool has_utf8() const;
  // "local@domain"; "postmaster" for the bare special case; "" for "<>".
  std::string address() const;

  bool operator==(const Path&) const = default;
};

enum class PathKind {
  reverse,  // MAIL FROM: "<>" is allowed
  forward,  // RCPT TO: "<Postmaster>" without a domain is allowed
};

// The whole text must be one path: "<...>" with nothing around it. A source
// route ("<@a,@b:x@y>") is accepted and dropped (RFC 5321 4.1.2, appendix C).
std::optional<Path> parse_path(std::string_view text, PathKind kind);

// An EHLO/HELO argument: a domain (LDH or U-labels) or an address literal.
bool valid_domain(std::string_view text);

// The bare <Postmaster>, or postmaster@ any domain: the local part in any case.
bool names_postmaster(const Path& forward_path);

// The addresses a recipient is looked up as, in order; the first is the
// recipient itself (the bare <Postmaster> as postmaster@`hostname`). RFC
// 5321 4.5.1 requires postmaster to be accepted, so a postmaster is followed
// by where postmaster goes here: `postmaster` ([smtp] postmaster) when set,
// else postmaster@`hostname`, then postmaster@ its parent domain. The caller
// tries the fall-backs only when the first names a local domain.
std::vector<std::string> recipient_candidates(const Path& forward_path, std::string_view hostname,
                                              std::string_view postmaster);

}  // namespace maild::smtp
