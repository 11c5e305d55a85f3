// crypt(3) hashing and verification: yescrypt for new hashes, $6$ and $2b$ still accepted.
#include <gtest/gtest.h>

#include <string>

#include "maild/core/password.hpp"

namespace maild {
namespace {

// Made beforehand with `openssl passwd -6 -salt saltsalt 'correct horse'` and Python's crypt
// module.
constexpr const char* sha512_hash =
    "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/"
    "uamSo5z0";
constexpr const char* sha512_empty_hash =
    "$6$emptysal$otBOsAme1YF3ru8XXTalh.v/"
    "Ohx4WXUczk.DBdUTKwcSDvH8N3E3jI.TbZ1sj5RwoJaljChGtNC3yYi7ltPvs.";
constexpr const char* bcrypt_hash = "$2b$04$Bec8Eihw9ksaCpEofyUlI.byYeNz8.R9wWISjGLNi1AMpzDo5IDGu";
constexpr const char* md5_hash = "$1$abcdefgh$y6iHhJNbuC0xpbk0w9pm80";  // valid, but not accepted

TEST(Password, HashIsYescrypt) {
  const std::string hash = password::hash("correct horse");
  EXPECT_TRUE(hash.starts_with("$y$")) << hash;
}

TEST(Password, Sha512CryptOnRequest) {
  const std::string hash = password::hash("correct horse", password::Scheme::sha512_crypt);
  EXPECT_TRUE(hash.starts_with("$6$")) << hash;
  EXPECT_TRUE(password::verify("correct horse", hash));
  EXPECT_FALSE(password::verify("correct horsE", hash));
  EXPECT_NE(hash, password::hash("correct horse", password::Scheme::sha512_crypt));
}

TEST(Password, SchemeNames) {
  EXPECT_EQ(password::scheme_named("yescrypt"), password::Scheme::yescrypt);
  EXPECT_EQ(password::scheme_named("sha512-crypt"), password::Scheme::sha512_crypt);
  EXPECT_EQ(password::scheme_named("SHA512-CRYPT"), std::nullopt);
  EXPECT_EQ(password::scheme_named("md5"), std::nullopt);
  EXPECT_EQ(password::scheme_named(""), std::nullopt);
}

TEST(Password, SaltsDiffer) { EXPECT_NE(password::hash("same"), password::hash("same")); }

TEST(Password, VerifiesItsOwnHash) {
  const std::string hash = password::hash("correct horse");
  EXPECT_TRUE(password::verify("correct horse", hash));
  EXPECT_FALSE(password::verify("correct horsE", hash));
  EXPECT_FALSE(password::verify("", hash));
  EXPECT_FALSE(password::verify("correct horse ", hash));
}

TEST(Password, EmptyPassword) {
  const std::string hash = password::hash("");
  EXPECT_TRUE(hash.starts_with("$y$"));
  EXPECT_TRUE(password::verify("", hash));
  EXPECT_FALSE(password::verify("x", hash));
  EXPECT_TRUE(password::verify("", sha512_empty_hash));
  EXPECT_FALSE(password::verify(" ", sha512_empty_hash));
}

TEST(Password, VerifiesSha512Crypt) {
  EXPECT_TRUE(password::verify("correct horse", sha512_hash));
  EXPECT_FALSE(password::verify("wrong horse", sha512_hash));
}

TEST(Password, VerifiesBcrypt) {
  EXPECT_TRUE(password::verify("correct horse", bcrypt_hash));
  EXPECT_FALSE(password::verify("wrong horse", bcrypt_hash));
}

TEST(Password, OtherMethodsNeverMatch) {
  EXPECT_FALSE(password::verify("correct horse", md5_hash));
  EXPECT_FALSE(password::verify("correct horse", "correct horse"));  // plain text is not a hash
  EXPECT_FALSE(password::verify("ab", "abJnggxhB/yWI"));             // DES crypt
}

TEST(Password, MalformedHashesNeverMatch) {
  const std::string good = sha512_hash;
  for (const std::string& bad :
       {std::string(), std::string("$"), std::string("$6$"), std::string("$y$"),
        std::string("$2b$"), std::string("$y$j9T$"), std::string("$2b$04$short"), std::string("*"),
        std::string("*0"), std::string("!") + good, good.substr(0, good.size() - 1), good + "x",
        good.substr(0, 12)}) {
    EXPECT_FALSE(password::verify("correct horse", bad)) << bad;
    EXPECT_FALSE(password::verify("", bad)) << bad;
  }
}

TEST(Password, NulBytesNeverMatch) {
  const std::string hash = password::hash("abc");
  EXPECT_FALSE(password::verify(std::string("abc\0def", 7), hash));
  EXPECT_FALSE(password::verify("abc", hash + std::string(1, '\0')));
  EXPECT_THROW(password::hash(std::string("a\0b", 3)), std::runtime_error);
}

}  // namespace
}  // namespace maild
