// Base64 (RFC 4648 section 4, the standard alphabet with padding).
// Trust: decode takes untrusted text (SASL responses) and accepts only canonical input.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild {

std::string base64_encode(std::string_view data);

// Strict: length a multiple of 4, only the alphabet, "=" padding only at the
// end, no whitespace, and unused trailing bits zero (so decode(encode(x)) is
// the only spelling of x). "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace maild
