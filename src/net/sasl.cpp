// Decodes SASL PLAIN and LOGIN responses into credentials.
// Trust: none; the base64 and the decoded fields are validated before use.
#include "net/sasl.hpp"

#include <algorithm>

#include "maild/core/base64.hpp"
#include "maild/core/utf8.hpp"

namespace maild::net {
namespace {

constexpr std::size_t field_max = 255;  // RFC 4616 2: 1*SAFE up to 255 octets

// Identities end up in logs and Received fields: UTF-8 without controls.
bool valid_identity(std::string_view text) {
  return text.size() <= field_max && valid_utf8(text) &&
         std::none_of(text.begin(), text.end(), [](char c) {
           const auto u = static_cast<unsigned char>(c);
           return u < 0x20 || u == 0x7f;
         });
}

}  // namespace

std::optional<PlainCredentials> decode_plain(std::string_view base64) {
  const auto decoded = base64_decode(base64);
  if (!decoded) return std::nullopt;
  const std::string_view message = *decoded;
  const auto first = message.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (message.find('\0', second + 1) != std::string_view::npos) return std::nullopt;
  PlainCredentials credentials{std::string(message.substr(0, first)),
                               std::string(message.substr(first + 1, second - first - 1)),
                               std::string(message.substr(second + 1))};
  if (credentials.authcid.empty() || credentials.password.empty()) return std::nullopt;
  if (credentials.password.size() > field_max) return std::nullopt;
  if (!valid_identity(credentials.authcid) || !valid_identity(credentials.authzid)) {
    return std::nullopt;
  }
  // Acting as another user is not supported, so an authzid may only repeat the authcid.
  if (!credentials.authzid.empty() && credentials.authzid != credentials.authcid) {
    return std::nullopt;
  }
  return credentials;
}

std::optional<std::string> decode_login_field(std::string_view base64) {
  auto decoded = base64_decode(base64);
  if (!decoded || decoded->empty() || decoded->size() > field_max) return std::nullopt;
  if (decoded->find('\0') != std::string::npos) return std::nullopt;
  return decoded;
}

}  // namespace maild::net
