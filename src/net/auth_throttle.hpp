// Failures per client address in a sliding window: failed logins (one per
// protocol) and GETs of unknown tokens, each with its own mail.conf limit.
// Trust: the address comes from accept(2); counts only, no credentials.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "maild/core/net_types.hpp"

namespace maild::net {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  AuthThrottle(unsigned max_failures, Clock::duration window);

  // True when the address already failed max_failures times within the window.
  bool blocked(const IpAddress& address, Clock::time_point now = Clock::now());
  void record_failure(const IpAddress& address, Clock::time_point now = Clock::now());
  // How many failures of the address are within the window (at most max_failures).
  unsigned failures(const IpAddress& address, Clock::time_point now = Clock::now());

 private:
  struct Hash {
    std::size_t operator()(const IpAddress& ip) const noexcept;
  };
  void forget_old(std::deque<Clock::time_point>& failures, Clock::time_point now) const;

  const unsigned max_failures_;
  const Clock::duration window_;
  std::mutex mutex_;
  std::unordered_map<IpAddress, std::deque<Clock::time_point>, Hash> failures_;
  std::size_t records_since_sweep_ = 0;
};

}  // namespace maild::net
