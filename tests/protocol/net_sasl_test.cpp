// SASL PLAIN and LOGIN response decoding: one row per accepted or refused response.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "maild/core/base64.hpp"
#include "net/sasl.hpp"

namespace maild::net {
namespace {

struct PlainCase {
  std::string name;
  std::string base64;
  std::optional<PlainCredentials> expected;
};

std::string b64(std::string_view raw) { return base64_encode(raw); }
std::string raw(const char* text, std::size_t n) { return std::string(text, n); }

class PlainTest : public ::testing::TestWithParam<PlainCase> {};

TEST_P(PlainTest, Decodes) {
  const auto& c = GetParam();
  EXPECT_EQ(decode_plain(c.base64), c.expected) << c.base64;
}

INSTANTIATE_TEST_SUITE_P(
    Rfc4616, PlainTest,
    ::testing::Values(
        PlainCase{"NoAuthzid", "AGJvYgBzZWNyZXQ=", PlainCredentials{"", "bob", "secret"}},
        PlainCase{"SameAuthzid", b64(raw("bob\0bob\0secret", 14)),
                  PlainCredentials{"bob", "bob", "secret"}},
        PlainCase{"Utf8User", b64(raw("\0j\xc3\xb6rg\0pw", 9)),
                  PlainCredentials{"", "j\xc3\xb6rg", "pw"}},
        PlainCase{"PasswordWithSpaces", b64(raw("\0bob\0a b c", 10)),
                  PlainCredentials{"", "bob", "a b c"}},
        PlainCase{"OtherAuthzid", b64(raw("alice\0bob\0secret", 16)), std::nullopt},
        PlainCase{"NoNul", b64("bobsecret"), std::nullopt},
        PlainCase{"OneNul", b64(raw("bob\0secret", 10)), std::nullopt},
        PlainCase{"ThreeNuls", b64(raw("\0bob\0sec\0ret", 12)), std::nullopt},
        PlainCase{"EmptyAuthcid", b64(raw("\0\0secret", 8)), std::nullopt},
        PlainCase{"EmptyPassword", b64(raw("\0bob\0", 5)), std::nullopt},
        PlainCase{"ControlInUser", b64(raw("\0b\nob\0secret", 11)), std::nullopt},
        PlainCase{"BadUtf8User", b64(raw("\0b\xffob\0secret", 11)), std::nullopt},
        PlainCase{"User255",
                  b64(std::string(1, '\0') + std::string(255, 'u') + std::string("\0pw", 3)),
                  PlainCredentials{"", std::string(255, 'u'), "pw"}},
        PlainCase{"User256",
                  b64(std::string(1, '\0') + std::string(256, 'u') + std::string("\0pw", 3)),
                  std::nullopt},
        PlainCase{"Password256", b64(std::string("\0u\0", 3) + std::string(256, 'p')),
                  std::nullopt},
        PlainCase{"BadBase64", "AGJvYgBzZWNyZXQ", std::nullopt},
        PlainCase{"Whitespace", "AGJvYgBz ZWNyZXQ=", std::nullopt},
        PlainCase{"Empty", "", std::nullopt}, PlainCase{"Equals", "=", std::nullopt}),
    [](const auto& row) { return row.param.name; });

TEST(Login, Challenges) {
  EXPECT_EQ(base64_decode(login_username_challenge), "Username:");
  EXPECT_EQ(base64_decode(login_password_challenge), "Password:");
}

TEST(Login, Fields) {
  EXPECT_EQ(decode_login_field("Ym9i"), "bob");
  EXPECT_EQ(decode_login_field(b64("s3cr3t pass")), "s3cr3t pass");
  EXPECT_EQ(decode_login_field(b64(std::string(255, 'x'))), std::string(255, 'x'));
  EXPECT_FALSE(decode_login_field(b64(std::string(256, 'x'))));
  EXPECT_FALSE(decode_login_field(""));
  EXPECT_FALSE(decode_login_field("Ym9"));
  EXPECT_FALSE(decode_login_field(b64(raw("b\0b", 3))));
  EXPECT_FALSE(decode_login_field("*"));
}

}  // namespace
}  // namespace maild::net
