// The verified-credentials cache: only successes are kept, the stored hash is
// part of the key, entries expire, the size is bounded, ttl 0 turns it off.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "maild/core/password.hpp"
#include "net/credential_cache.hpp"

namespace maild {
namespace {

using namespace std::chrono_literals;
using net::CredentialCache;

class CredentialCacheTest : public ::testing::Test {
 protected:
  // SHA-512 crypt: a real hash, quicker than yescrypt under the sanitizers.
  const std::string hash = password::hash("secret", password::Scheme::sha512_crypt);
  const CredentialCache::Clock::time_point t0 = CredentialCache::Clock::now();
};

TEST_F(CredentialCacheTest, RemembersOnlySuccesses) {
  CredentialCache cache(5min);
  EXPECT_FALSE(cache.check("bob@example.test", "wrong", hash, t0));
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.check("bob@example.test", "secret", hash, t0));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.check("bob@example.test", "secret", hash, t0 + 1min));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_FALSE(cache.check("bob@example.test", "secreT", hash, t0 + 1min));
  EXPECT_FALSE(cache.check("bob@example.test", "", hash, t0 + 1min));
}

TEST_F(CredentialCacheTest, TheStoredHashIsPartOfTheKey) {
  CredentialCache cache(5min);
  ASSERT_TRUE(cache.check("bob@example.test", "secret", hash, t0));
  const std::string changed = password::hash("other", password::Scheme::sha512_crypt);
  EXPECT_FALSE(cache.check("bob@example.test", "secret", changed, t0));
  EXPECT_TRUE(cache.check("bob@example.test", "other", changed, t0));
  // The same password under a new salt is a new entry, verified again.
  const std::string resalted = password::hash("secret", password::Scheme::sha512_crypt);
  EXPECT_TRUE(cache.check("bob@example.test", "secret", resalted, t0));
  EXPECT_EQ(cache.size(), 3u);
}

TEST_F(CredentialCacheTest, AddressIsPartOfTheKey) {
  CredentialCache cache(5min);
  ASSERT_TRUE(cache.check("bob@example.test", "secret", hash, t0));
  EXPECT_TRUE(cache.check("carol@example.test", "secret", hash, t0));  // verified, not found
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(CredentialCacheTest, AHitSkipsTheSlowCheck) {
  CredentialCache cache(5min);
  const std::string slow = password::hash("secret");  // yescrypt: tens of milliseconds
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(cache.check("bob@example.test", "secret", slow));
  const auto miss = std::chrono::steady_clock::now() - started;
  const auto again = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cache.check("bob@example.test", "secret", slow));
  const auto hits = std::chrono::steady_clock::now() - again;
  EXPECT_LT(hits, miss) << "ten hits should cost less than one yescrypt check";
}

TEST_F(CredentialCacheTest, EntriesExpire) {
  CredentialCache cache(1min);
  ASSERT_TRUE(cache.check("bob@example.test", "secret", hash, t0));
  // Expired: verified again (still right), and remembered anew.
  EXPECT_TRUE(cache.check("bob@example.test", "secret", hash, t0 + 2min));
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(CredentialCacheTest, SizeIsBounded) {
  CredentialCache cache(5min, 2);
  for (const char* who : {"a@example.test", "b@example.test", "c@example.test", "d@example.test"})
    EXPECT_TRUE(cache.check(who, "secret", hash, t0));
  EXPECT_LE(cache.size(), 2u);
  EXPECT_GE(cache.size(), 1u);
}

TEST_F(CredentialCacheTest, ZeroTtlTurnsItOff) {
  CredentialCache cache(0s);
  EXPECT_TRUE(cache.check("bob@example.test", "secret", hash, t0));
  EXPECT_FALSE(cache.check("bob@example.test", "wrong", hash, t0));
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace maild
