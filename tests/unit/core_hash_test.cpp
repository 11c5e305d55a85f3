// SHA-256 against the FIPS 180-2 / NIST test vectors.
#include <gtest/gtest.h>

#include <string>

#include "maild/core/hash.hpp"

namespace maild {
namespace {

TEST(Sha256, EmptyInput) {
  EXPECT_EQ(sha256("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(sha256("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage) {
  EXPECT_EQ(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAs) {
  EXPECT_EQ(sha256(std::string(1'000'000, 'a')).hex(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, BinaryInputWithNul) {
  const std::string data("a\0b", 3);
  EXPECT_NE(sha256(data), sha256("a"));
  EXPECT_EQ(sha256(data), sha256(std::string("a\0b", 3)));
}

TEST(Sha256, HexIsLowercaseAndSixtyFourChars) {
  const std::string hex = sha256("maild").hex();
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace maild
