// Password hashing with crypt(3) through libcrypt.
// Trust: the hash comes from the store (admin-controlled); the password from a
// client. Verification never logs either.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild::password {

// The crypt(3) methods new hashes can use. yescrypt is the default; SHA-512
// crypt is for sharing hashes with systems that lack yescrypt (and for the
// benchmark, which gives maild and its anchor the same method).
enum class Scheme { yescrypt, sha512_crypt };

// "yescrypt" / "sha512-crypt" as mailctl's --hash-scheme takes them; nullopt otherwise.
std::optional<Scheme> scheme_named(std::string_view name);

// A new hash ($y$ or $6$ with libcrypt's default cost) with a fresh salt from
// libcrypt's entropy source. Throws std::runtime_error if libcrypt cannot produce one.
std::string hash(std::string_view plaintext, Scheme scheme = Scheme::yescrypt);

// True when plaintext matches hash. Understands $y$ (yescrypt), $6$ (SHA-512
// crypt) and $2b$ (bcrypt); any other or malformed hash never matches.
bool verify(std::string_view plaintext, std::string_view hash);

}  // namespace maild::password
