// SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) client
// responses, as carried by SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034).
// Trust: none; responses are base64 from the client and are checked strictly.
// Decoded passwords are secrets: never log them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild::net {

// LOGIN's challenges: base64 of "Username:" and "Password:".
inline constexpr std::string_view login_username_challenge = "VXNlcm5hbWU6";
inline constexpr std::string_view login_password_challenge = "UGFzc3dvcmQ6";

struct PlainCredentials {
  std::string authzid;  // empty, or equal to authcid (no proxy authorization)
  std::string authcid;
  std::string password;

  bool operator==(const PlainCredentials&) const = default;
};

// base64 of authzid NUL authcid NUL password. Refused: bad base64, not exactly
// two NULs, empty authcid or password, an authzid other than the authcid,
// identities that are not UTF-8 or hold control characters, fields over 255
// octets (RFC 4616 2).
std::optional<PlainCredentials> decode_plain(std::string_view base64);

// One LOGIN answer (user name or password): non-empty, no NUL, at most 255 octets.
std::optional<std::string> decode_login_field(std::string_view base64);

}  // namespace maild::net
