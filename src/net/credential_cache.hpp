// Passwords verified recently, so that a client that logs in again and again
// (POP3 polling, SMTP AUTH per message) pays the crypt(3) cost once per ttl.
// Trust: keeps neither passwords nor hashes, only an HMAC-SHA256 of (address,
// stored hash, password) under a random key made at start. The stored hash is
// part of it, so a changed password never matches an old entry. Only
// successes are kept: every failed login still pays the full check.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace maild::net {

class CredentialCache {
 public:
  using Clock = std::chrono::steady_clock;

  // ttl 0 disables the cache: check() is then password::verify() alone.
  explicit CredentialCache(Clock::duration ttl, std::size_t max_entries = 100'000);

  // password::verify(password, hash), answered from the cache when this address,
  // hash and password were verified within ttl. Thread-safe; called on store workers.
  bool check(std::string_view address, std::string_view password, std::string_view hash,
             Clock::time_point now = Clock::now());

  std::size_t size() const;

 private:
  using Digest = std::array<std::uint8_t, 32>;
  struct DigestHash {
    std::size_t operator()(const std::string& digest) const noexcept;
  };
  std::string digest(std::string_view address, std::string_view password,
                     std::string_view hash) const;

  const Clock::duration ttl_;
  const std::size_t max_entries_;
  std::array<std::uint8_t, 32> key_{};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Clock::time_point, DigestHash> verified_;  // digest -> expiry
};

}  // namespace maild::net
