// SHA-256 through OpenSSL's EVP interface.
// Trust: OpenSSL is trusted to compute the digest; input bytes are opaque.
#include "maild/core/hash.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace maild {

std::string ContentHash::hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

ContentHash sha256(std::string_view data) {
  ContentHash hash;
  unsigned int length = 0;
  // EVP_Digest only fails on allocation failure or a broken provider; never ignore it.
  if (EVP_Digest(data.data(), data.size(), hash.bytes.data(), &length, EVP_sha256(), nullptr) !=
          1 ||
      length != hash.bytes.size()) {
    throw std::runtime_error("SHA-256 computation failed in OpenSSL");
  }
  return hash;
}

}  // namespace maild
