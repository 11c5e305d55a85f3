// base64: RFC 4648 section 10 vectors, and strict refusal of everything non-canonical.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "maild/core/base64.hpp"

namespace maild {
namespace {

struct Vector {
  std::string raw;
  std::string encoded;
};

class Base64Vector : public ::testing::TestWithParam<Vector> {};

TEST_P(Base64Vector, EncodesAndDecodes) {
  EXPECT_EQ(base64_encode(GetParam().raw), GetParam().encoded);
  EXPECT_EQ(base64_decode(GetParam().encoded), GetParam().raw);
}

INSTANTIATE_TEST_SUITE_P(Rfc4648, Base64Vector,
                         ::testing::Values(Vector{"", ""}, Vector{"f", "Zg=="},
                                           Vector{"fo", "Zm8="}, Vector{"foo", "Zm9v"},
                                           Vector{"foob", "Zm9vYg=="}, Vector{"fooba", "Zm9vYmE="},
                                           Vector{"foobar", "Zm9vYmFy"},
                                           Vector{std::string("\0\xff\xfe", 3), "AP/+"}));

struct Invalid {
  std::string name;
  std::string text;
};

class Base64Invalid : public ::testing::TestWithParam<Invalid> {};

TEST_P(Base64Invalid, IsRefused) { EXPECT_EQ(base64_decode(GetParam().text), std::nullopt); }

INSTANTIATE_TEST_SUITE_P(
    Strict, Base64Invalid,
    ::testing::Values(Invalid{"LengthOne", "Z"}, Invalid{"LengthThree", "Zm9"},
                      Invalid{"MissingPadding", "Zg"}, Invalid{"TooMuchPadding", "Z==="},
                      Invalid{"OnlyPadding", "===="}, Invalid{"PaddingInMiddle", "Zg==Zm9v"},
                      Invalid{"PaddingThenData", "Zm=v"}, Invalid{"Space", "Zm9v Zm9v"},
                      Invalid{"Newline", "Zm9v\nZm9v"}, Invalid{"TrailingNewline", "Zm9v\n"},
                      Invalid{"UrlAlphabet", "AP_-"}, Invalid{"Nul", std::string("Zm9\0", 4)},
                      Invalid{"HighByte", "Zm9\xc3"}, Invalid{"NonZeroBitsOnePad", "Zm9="},
                      Invalid{"NonZeroBitsTwoPads", "Zh=="}),
    [](const auto& row) { return row.param.name; });

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    data.push_back(static_cast<char>(i * 37 % 256));
    const auto encoded = base64_encode(data);
    EXPECT_EQ(encoded.size(), (data.size() + 2) / 3 * 4);
    EXPECT_EQ(base64_decode(encoded), data);
  }
}

TEST(Base64, LargeInputCrossesTheSliceBoundary) {
  const std::string data(7 * 1024 * 1024 + 1, 'q');
  EXPECT_EQ(base64_decode(base64_encode(data)), data);
}

}  // namespace
}  // namespace maild
