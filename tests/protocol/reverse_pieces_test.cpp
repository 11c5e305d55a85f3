// The pure pieces of SOURCE/GET: tokens and their redaction, policy choices,
// when a pickup may be served, and dot-stuffing split at every position.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "net/auth_throttle.hpp"
#include "reverse/policy.hpp"
#include "reverse/token.hpp"
#include "smtp/dot_stuffer.hpp"
#include "smtp/token.hpp"

namespace maild {
namespace {

using config::UnverifiedPolicy;

TEST(ReverseToken, ValidTokensAre32LowercaseHexCharacters) {
  EXPECT_TRUE(smtp::valid_token("5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"));
  EXPECT_FALSE(smtp::valid_token("5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8"));
  EXPECT_FALSE(smtp::valid_token("5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a0"));
  EXPECT_FALSE(smtp::valid_token("5F0C2E8A9B1D4C7E8F6A3B2C1D0E9F8A"));
  EXPECT_FALSE(smtp::valid_token("5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8g"));
  EXPECT_FALSE(smtp::valid_token(""));
}

TEST(ReverseToken, NewTokensAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto token = reverse::new_token();
    EXPECT_TRUE(smtp::valid_token(token)) << token;
    seen.insert(token);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ReverseToken, LogsShowEightCharacters) {
  const std::string token = "5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a";
  EXPECT_EQ(smtp::shown_token(token), "5f0c2e8a...");
  EXPECT_EQ(smtp::shown_token("abc"), "abc");
  EXPECT_EQ(smtp::redact_token("250 2.0.0 " + token + " accepted, " + token, token),
            "250 2.0.0 5f0c2e8a... accepted, 5f0c2e8a...");
  EXPECT_EQ(smtp::redact_token("no token here", token), "no token here");
  EXPECT_EQ(smtp::redact_token("kept", ""), "kept");
}

TEST(ReversePolicy, TheStricterPolicyWins) {
  using P = UnverifiedPolicy;
  EXPECT_EQ(reverse::stricter(P::accept, P::tag), P::tag);
  EXPECT_EQ(reverse::stricter(P::tag, P::accept), P::tag);
  EXPECT_EQ(reverse::stricter(P::reject, P::tag), P::reject);
  EXPECT_EQ(reverse::stricter(P::accept, P::reject), P::reject);
  EXPECT_EQ(reverse::stricter(P::accept, P::accept), P::accept);
}

TEST(ReversePolicy, ADomainRowOverridesTheDefault) {
  config::ReverseSettings settings;
  settings.unverified_policy = UnverifiedPolicy::tag;
  EXPECT_EQ(reverse::effective({"example.test", {}, {}}, settings), UnverifiedPolicy::tag);
  EXPECT_EQ(reverse::effective({"example.test", UnverifiedPolicy::accept, {}}, settings),
            UnverifiedPolicy::accept);
}

TEST(ReversePolicy, AuthenticationResults) {
  EXPECT_EQ(reverse::unverified_result("d.example"),
            "Authentication-Results: d.example; source-get=none\r\n");
  EXPECT_EQ(reverse::verified_result("d.example", "o.example"),
            "Authentication-Results: d.example; source-get=pass smtp.mailfrom=o.example\r\n");
}

TEST(ReversePolicy, WhenAPickupIsServable) {
  config::ReverseSettings settings;
  settings.pickup_max_age = Seconds{100};
  settings.retain_after_fetch = Seconds{10};
  store::Pickup p;
  p.created_at = store::UnixTime{Seconds{1000}};
  p.state = store::PickupState::offered;
  EXPECT_TRUE(reverse::servable(p, 1099, settings));
  EXPECT_FALSE(reverse::servable(p, 1100, settings));
  p.state = store::PickupState::awaiting;
  p.confirmed_at = store::UnixTime{Seconds{1050}};  // the age counts from the confirmation
  EXPECT_TRUE(reverse::servable(p, 1149, settings));
  EXPECT_FALSE(reverse::servable(p, 1150, settings));
  p.state = store::PickupState::transferred;
  p.first_fetched_at = store::UnixTime{Seconds{1200}};
  EXPECT_TRUE(reverse::servable(p, 1209, settings));
  EXPECT_FALSE(reverse::servable(p, 1210, settings));
  for (const auto state : {store::PickupState::expired, store::PickupState::purged}) {
    p.state = state;
    EXPECT_FALSE(reverse::servable(p, 1000, settings));
  }
}

TEST(UnknownTokenThrottle, CountsFailuresInTheWindowPerAddress) {
  net::AuthThrottle throttle(3, std::chrono::seconds(60));
  const auto a = *parse_ip("192.0.2.1");
  const auto b = *parse_ip("192.0.2.2");
  const auto t0 = net::AuthThrottle::Clock::now();
  EXPECT_EQ(throttle.failures(a, t0), 0u);
  throttle.record_failure(a, t0);
  throttle.record_failure(a, t0 + std::chrono::seconds(30));
  EXPECT_EQ(throttle.failures(a, t0 + std::chrono::seconds(31)), 2u);
  EXPECT_EQ(throttle.failures(b, t0), 0u);
  EXPECT_EQ(throttle.failures(a, t0 + std::chrono::seconds(61)), 1u);  // the first one aged out
  throttle.record_failure(a, t0 + std::chrono::seconds(62));
  throttle.record_failure(a, t0 + std::chrono::seconds(63));
  EXPECT_TRUE(throttle.blocked(a, t0 + std::chrono::seconds(64)));
  EXPECT_EQ(throttle.failures(a, t0 + std::chrono::seconds(64)), 3u);
}

std::string stuffed(const std::string& content, std::size_t split) {
  smtp::DotStuffer stuffer;
  const auto cut = std::min(split, content.size());
  std::string out = stuffer.stuff(content.substr(0, cut));
  out += stuffer.stuff(content.substr(cut));
  return out + stuffer.finish();
}

TEST(DotStuffer, DoublesLeadingDotsAtEverySplit) {
  const std::string content = ".one\r\ntwo.\r\n..three\r\n.\r\nbare\n.dot\r\n";
  const std::string expected = "..one\r\ntwo.\r\n...three\r\n..\r\nbare\n.dot\r\n.\r\n";
  for (std::size_t split = 0; split <= content.size(); ++split)
    EXPECT_EQ(stuffed(content, split), expected) << "split at " << split;
}

TEST(DotStuffer, EndsAnUnterminatedLineAndAnEmptyMessage) {
  EXPECT_EQ(stuffed("no end", 3), "no end\r\n.\r\n");
  EXPECT_EQ(stuffed("", 0), ".\r\n");
  EXPECT_EQ(stuffed("x\r", 1), "x\r\r\n.\r\n");
}

}  // namespace
}  // namespace maild
