// SMTP command lines (RFC 5321 4.1.1) and their ESMTP parameters: SIZE, BODY,
// SMTPUTF8, DSN (RFC 3461), AUTH= (RFC 4954), BDAT (RFC 3030), AUTH, and the
// SOURCE and GET tokens (SOURCE-GET.md).
// Trust: none in the line; it is parsed, never executed. Whether a parsed
// command is allowed now (state, extensions offered, TLS) is the session's call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/address.hpp"

namespace maild::smtp {

enum class Verb {
  helo,
  ehlo,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls,
  auth,
  source,  // SOURCE token: hand over the envelope, the message is fetched back (SOURCE-GET.md 2)
  get,     // GET token: fetch a message we offered by SOURCE (SOURCE-GET.md 3)
  unknown
};

// A syntax error, ready for format_reply.
struct Reply {
  int code = 0;
  std::string enhanced;
  std::string text;

  bool operator==(const Reply&) const = default;
};

struct Hello {
  std::string domain;  // a valid domain or address literal, as written

  bool operator==(const Hello&) const = default;
};

struct Mail {
  enum class Body { unspecified, seven_bit, eight_bit_mime };
  enum class Ret { unspecified, full, hdrs };

  Path reverse_path;
  std::optional<std::uint64_t> size;  // SIZE=
  Body body = Body::unspecified;      // BODY=
  bool smtputf8 = false;              // SMTPUTF8
  Ret ret = Ret::unspecified;         // RET=
  std::string envid;                  // ENVID=, xtext decoded; "" when absent
  std::optional<std::string> auth;    // AUTH=, xtext decoded; "<>" kept as "<>"

  bool operator==(const Mail&) const = default;
};

// RCPT NOTIFY= bits (RFC 3461 4.1); 0 means the parameter was not given.
inline constexpr unsigned notify_never = 1;
inline constexpr unsigned notify_success = 2;
inline constexpr unsigned notify_failure = 4;
inline constexpr unsigned notify_delay = 8;

struct Rcpt {
  Path forward_path;
  unsigned notify = 0;
  std::string orcpt;  // "rfc822;bob@example.com" (type lowercased, xtext decoded); "" when absent

  bool operator==(const Rcpt&) const = default;
};

struct Bdat {
  std::uint64_t size = 0;
  bool last = false;

  bool operator==(const Bdat&) const = default;
};

struct Auth {
  std::string mechanism;                        // uppercased
  std::optional<std::string> initial_response;  // as sent: base64, or "=" for empty

  bool operator==(const Auth&) const = default;
};

// The argument of SOURCE and GET: exactly 32 characters [0-9a-f].
struct Token {
  std::string value;

  bool operator==(const Token&) const = default;
};

struct Command {
  Verb verb = Verb::unknown;
  std::string verb_text;  // as sent, for the log
  std::string argument;   // everything after the verb, surrounding spaces removed
  std::variant<std::monostate, Hello, Mail, Rcpt, Bdat, Auth, Token> parsed;
};

// A line without its CRLF. An unknown verb is a Command with Verb::unknown
// (the session answers 500); a known verb with a bad argument is a Reply.
std::variant<Command, Reply> parse_command(std::string_view line);

// RFC 3461 4 xtext: "+XX" escapes every octet outside "!".."~" and "+", "=".
// Decoding refuses text that decodes to control characters or non-ASCII
// octets, since decoded values end up in DSN headers.
std::string xtext_encode(std::string_view text);
std::optional<std::string> xtext_decode(std::string_view xtext);

}  // namespace maild::smtp
