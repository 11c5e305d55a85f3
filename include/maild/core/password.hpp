// Password hashing with crypt(3) through libcrypt.
// Trust: the hash comes from the store (admin-controlled); the password from a
// client. Verification never logs either.
#pragma once

#include <string>
#include <string_view>

namespace maild::password {

// A new yescrypt ($y$) hash with a fresh salt from libcrypt's entropy source.
// Throws std::runtime_error if libcrypt cannot produce one.
std::string hash(std::string_view plaintext);

// True when plaintext matches hash. Understands $y$ (yescrypt), $6$ (SHA-512
// crypt) and $2b$ (bcrypt); any other or malformed hash never matches.
bool verify(std::string_view plaintext, std::string_view hash);

}  // namespace maild::password
