// Session ids (format, uniqueness, across threads) and 128-bit random tokens.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "maild/core/ids.hpp"

namespace maild {
namespace {

bool is_session_id(const std::string& id) {
  return id.size() == 12 &&
         id.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos;
}

TEST(SessionId, FormatIsTwelveBase36Characters) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = next_session_id();
    ASSERT_TRUE(is_session_id(id)) << id;
  }
}

TEST(SessionId, SharesTheProcessPrefix) {
  const std::string a = next_session_id();
  const std::string b = next_session_id();
  EXPECT_EQ(a.substr(0, 4), b.substr(0, 4));
  EXPECT_NE(a, b);
}

TEST(SessionId, UniqueOverAHundredThousand) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 100'000; ++i) ASSERT_TRUE(seen.insert(next_session_id()).second);
}

TEST(SessionId, UniqueAcrossThreads) {
  constexpr int threads = 8, per_thread = 10'000;
  std::vector<std::vector<std::string>> made(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&made, t] {
      for (int i = 0; i < per_thread; ++i)
        made[static_cast<std::size_t>(t)].push_back(next_session_id());
    });
  }
  for (auto& w : workers) w.join();
  std::unordered_set<std::string> seen;
  for (auto& list : made) {
    for (auto& id : list) ASSERT_TRUE(seen.insert(id).second) << id;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(RandomHex128, FormatAndUniqueness) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string token = random_hex_128();
    ASSERT_EQ(token.size(), 32u);
    ASSERT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << token;
    ASSERT_TRUE(seen.insert(token).second);
  }
}

}  // namespace
}  // namespace maild
