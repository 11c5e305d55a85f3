// Password hashing and verification through libcrypt (crypt_gensalt_rn, crypt_rn).
// Trust: hashes come from the store, passwords from clients; neither is logged or trusted to be
// well formed.
#include "maild/core/password.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace maild::password {
namespace {

// struct crypt_data is large (tens of KiB): one per call on the heap, wiped afterwards.
struct CryptScratch {
  std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
  ~CryptScratch() { OPENSSL_cleanse(data.get(), sizeof(crypt_data)); }
};

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

bool supported_prefix(std::string_view hash) {
  return hash.starts_with("$y$") || hash.starts_with("$6$") || hash.starts_with("$2b$");
}

// crypt_rn returns nullptr on failure; some builds return a "*..." failure token instead.
bool failed(const char* result) { return result == nullptr || result[0] == '*'; }

}  // namespace

std::optional<Scheme> scheme_named(std::string_view name) {
  if (name == "yescrypt") return Scheme::yescrypt;
  if (name == "sha512-crypt") return Scheme::sha512_crypt;
  return std::nullopt;
}

std::string hash(std::string_view plaintext, Scheme scheme) {
  if (has_nul(plaintext)) throw std::runtime_error("a password cannot contain a NUL byte");

  const char* prefix = scheme == Scheme::sha512_crypt ? "$6$" : "$y$";
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
  // Count 0: libcrypt's default cost. nullptr random bytes: libcrypt reads its own entropy.
  if (crypt_gensalt_rn(prefix, 0, nullptr, 0, setting.data(), static_cast<int>(setting.size())) ==
      nullptr) {
    throw std::runtime_error(std::string("libcrypt could not make a salt for ") + prefix);
  }
  CryptScratch scratch;
  const std::string secret(plaintext);
  const char* result =
      crypt_rn(secret.c_str(), setting.data(), scratch.data.get(), sizeof(crypt_data));
  if (failed(result)) throw std::runtime_error("libcrypt could not hash the password");
  return std::string(result);
}

bool verify(std::string_view plaintext, std::string_view hash) {
  // Embedded NULs would be silently truncated by crypt(3): treat them as a mismatch.
  if (!supported_prefix(hash) || has_nul(hash) || has_nul(plaintext)) return false;

  CryptScratch scratch;
  const std::string secret(plaintext);
  const std::string setting(hash);
  const char* result =
      crypt_rn(secret.c_str(), setting.c_str(), scratch.data.get(), sizeof(crypt_data));
  if (failed(result)) return false;

  const std::size_t length = std::strlen(result);
  // Lengths are not secret (they follow from the hash's method); the bytes are compared in constant
  // time.
  return length == hash.size() && CRYPTO_memcmp(result, hash.data(), length) == 0;
}

}  // namespace maild::password
