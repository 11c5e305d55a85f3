// Admission: total and per-address limits, at and past the edge, and release.
#include <gtest/gtest.h>

#include <vector>

#include "net/admission.hpp"

namespace maild::net {
namespace {

IpAddress ip(const char* text) { return *parse_ip(text); }

TEST(Admission, TotalLimitAtAndPastTheEdge) {
  Admission admission(3, 100);
  std::vector<Admission::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto decision = admission.admit(ip(i % 2 ? "127.0.0.1" : "::1"));
    ASSERT_TRUE(decision.ticket) << i;
    held.push_back(std::move(*decision.ticket));
  }
  auto refused = admission.admit(ip("127.0.0.2"));
  EXPECT_FALSE(refused.ticket);
  EXPECT_EQ(refused.refusal, Admission::Refusal::total);
  EXPECT_EQ(admission.active(), 3u);
  held.pop_back();
  EXPECT_EQ(admission.active(), 2u);
  EXPECT_TRUE(admission.admit(ip("127.0.0.2")).ticket);
}

TEST(Admission, PerAddressLimitLeavesOthersAlone) {
  Admission admission(100, 2);
  auto a = admission.admit(ip("127.0.0.1"));
  auto b = admission.admit(ip("127.0.0.1"));
  ASSERT_TRUE(a.ticket && b.ticket);
  auto c = admission.admit(ip("127.0.0.1"));
  EXPECT_FALSE(c.ticket);
  EXPECT_EQ(c.refusal, Admission::Refusal::per_ip);
  EXPECT_TRUE(admission.admit(ip("127.0.0.9")).ticket);
  a.ticket.reset();
  EXPECT_TRUE(admission.admit(ip("127.0.0.1")).ticket);
}

TEST(Admission, Ipv4AndMappedIpv6AreTheSameClient) {
  Admission admission(100, 1);
  auto a = admission.admit(ip("127.0.0.1"));
  ASSERT_TRUE(a.ticket);
  EXPECT_FALSE(admission.admit(ip("::ffff:127.0.0.1")).ticket);
}

}  // namespace
}  // namespace maild::net
