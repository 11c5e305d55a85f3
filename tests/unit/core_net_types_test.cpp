// Endpoint, address and network parsing as mail.conf uses it.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "maild/core/net_types.hpp"

namespace maild {
namespace {

struct EndpointCase {
  std::string_view text;
  std::optional<Endpoint> expected;
};

class ParseEndpoint : public testing::TestWithParam<EndpointCase> {};

TEST_P(ParseEndpoint, ParsesOrRefuses) {
  EXPECT_EQ(parse_endpoint(GetParam().text), GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseEndpoint,
    testing::Values(EndpointCase{"0.0.0.0:25", Endpoint{"0.0.0.0", 25}},
                    EndpointCase{"127.0.0.1:3306", Endpoint{"127.0.0.1", 3306}},
                    EndpointCase{"mail.example.org:587", Endpoint{"mail.example.org", 587}},
                    EndpointCase{"localhost:65535", Endpoint{"localhost", 65535}},
                    EndpointCase{"[::1]:25", Endpoint{"::1", 25}},
                    EndpointCase{"[2001:db8::1]:1", Endpoint{"2001:db8::1", 1}},
                    EndpointCase{"host:0", std::nullopt}, EndpointCase{"host:65536", std::nullopt},
                    EndpointCase{"host:-1", std::nullopt}, EndpointCase{"host:+25", std::nullopt},
                    EndpointCase{"host:25x", std::nullopt}, EndpointCase{"host:", std::nullopt},
                    EndpointCase{"host", std::nullopt}, EndpointCase{":25", std::nullopt},
                    EndpointCase{"", std::nullopt},
                    EndpointCase{"::1:25", std::nullopt},        // IPv6 needs brackets
                    EndpointCase{"[::1]", std::nullopt},         // no port
                    EndpointCase{"[1.2.3.4]:25", std::nullopt},  // brackets are for IPv6
                    EndpointCase{"[nonsense]:25", std::nullopt},
                    EndpointCase{"ho st:25", std::nullopt},
                    EndpointCase{"host :25", std::nullopt}));

TEST(Endpoint, ToStringBracketsIpv6) {
  EXPECT_EQ((Endpoint{"0.0.0.0", 25}).to_string(), "0.0.0.0:25");
  EXPECT_EQ((Endpoint{"::1", 995}).to_string(), "[::1]:995");
  EXPECT_EQ(parse_endpoint("[2001:db8::1]:25")->to_string(), "[2001:db8::1]:25");
}

TEST(ParseIp, Ipv4IsStoredV4Mapped) {
  const auto address = parse_ip("192.0.2.7");
  ASSERT_TRUE(address);
  EXPECT_TRUE(address->is_v4());
  const IpAddress expected{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7}};
  EXPECT_EQ(*address, expected);
  EXPECT_EQ(address->to_string(), "192.0.2.7");
  EXPECT_EQ(parse_ip("::ffff:192.0.2.7"), address);
}

TEST(ParseIp, Ipv6) {
  const auto address = parse_ip("2001:db8::1");
  ASSERT_TRUE(address);
  EXPECT_FALSE(address->is_v4());
  EXPECT_EQ(address->bytes[0], 0x20);
  EXPECT_EQ(address->bytes[1], 0x01);
  EXPECT_EQ(address->bytes[15], 0x01);
  EXPECT_EQ(address->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_ip("::1")->to_string(), "::1");
}

TEST(ParseIp, RefusesWhatIsNotAnAddress) {
  for (const std::string_view text : {"", "1.2.3", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "::g",
                                      "[::1]", "example.org", "1.2.3.4/8"}) {
    EXPECT_EQ(parse_ip(text), std::nullopt) << text;
  }
  EXPECT_EQ(parse_ip(std::string_view("1.2.3.4\0junk", 12)), std::nullopt);
}

TEST(ParseNetwork, Ipv4PrefixIsStoredInIpv6Terms) {
  const auto network = parse_network("127.0.0.0/8");
  ASSERT_TRUE(network);
  EXPECT_EQ(network->prefix, 104U);
  EXPECT_EQ(network->base, *parse_ip("127.0.0.0"));
  EXPECT_EQ(network->to_string(), "127.0.0.0/8");
}

TEST(ParseNetwork, BareAddressIsAHostRoute) {
  EXPECT_EQ(parse_network("192.0.2.1"), (Network{*parse_ip("192.0.2.1"), 128}));
  EXPECT_EQ(parse_network("192.0.2.1")->to_string(), "192.0.2.1/32");
  EXPECT_EQ(parse_network("::1"), (Network{*parse_ip("::1"), 128}));
  EXPECT_EQ(parse_network("::1")->to_string(), "::1/128");
}

TEST(ParseNetwork, HostBitsAreDropped) {
  EXPECT_EQ(parse_network("10.1.2.3/8"), parse_network("10.0.0.0/8"));
  EXPECT_EQ(parse_network("2001:db8::1/32")->to_string(), "2001:db8::/32");
}

TEST(ParseNetwork, RefusesBadPrefixes) {
  for (const std::string_view text : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1",
                                      "10.0.0.0/8x", "/8", "", "10.0.0/8", "10.0.0.0/8/8"}) {
    EXPECT_EQ(parse_network(text), std::nullopt) << text;
  }
}

struct ContainsCase {
  std::string_view network;
  std::string_view address;
  bool contained;
};

class NetworkContains : public testing::TestWithParam<ContainsCase> {};

TEST_P(NetworkContains, MatchesOnThePrefixOnly) {
  const auto& c = GetParam();
  const auto network = parse_network(c.network);
  const auto address = parse_ip(c.address);
  ASSERT_TRUE(network && address) << c.network << " " << c.address;
  EXPECT_EQ(network->contains(*address), c.contained) << c.network << " " << c.address;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NetworkContains,
    testing::Values(ContainsCase{"127.0.0.0/8", "127.0.0.1", true},
                    ContainsCase{"127.0.0.0/8", "127.255.255.255", true},
                    ContainsCase{"127.0.0.0/8", "128.0.0.1", false},
                    ContainsCase{"192.0.2.0/25", "192.0.2.127", true},
                    ContainsCase{"192.0.2.0/25", "192.0.2.128", false},
                    ContainsCase{"0.0.0.0/0", "203.0.113.9", true},
                    ContainsCase{"0.0.0.0/0", "::1", false},  // IPv4 "everything" is not IPv6
                    ContainsCase{"192.0.2.1", "192.0.2.1", true},
                    ContainsCase{"192.0.2.1", "192.0.2.2", false},
                    ContainsCase{"::1/128", "::1", true}, ContainsCase{"::1/128", "::2", false},
                    ContainsCase{"::1/128", "127.0.0.1", false},
                    ContainsCase{"2001:db8::/32", "2001:db8:ffff::1", true},
                    ContainsCase{"2001:db8::/32", "2001:db9::1", false},
                    ContainsCase{"2001:db8::/33", "2001:db8:8000::1", false},
                    ContainsCase{"::/0", "2001:db8::1", true},
                    ContainsCase{"::/0", "10.0.0.1", true},
                    ContainsCase{"::ffff:0:0/96", "10.0.0.1", true}));

}  // namespace
}  // namespace maild
