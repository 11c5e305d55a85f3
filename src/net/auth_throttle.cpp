// Sliding-window failure counts; see auth_throttle.hpp.
#include "net/auth_throttle.hpp"

#include <string_view>

namespace maild::net {
namespace {
// Every so many records, addresses whose failures all expired are dropped,
// so the map stays bounded by the clients of one window.
constexpr std::size_t sweep_every = 1024;
}  // namespace

AuthThrottle::AuthThrottle(unsigned max_failures, Clock::duration window)
    : max_failures_(max_failures), window_(window) {}

std::size_t AuthThrottle::Hash::operator()(const IpAddress& ip) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(ip.bytes.data()), ip.bytes.size()));
}

void AuthThrottle::forget_old(std::deque<Clock::time_point>& failures,
                              Clock::time_point now) const {
  while (!failures.empty() && now - failures.front() >= window_) failures.pop_front();
}

bool AuthThrottle::blocked(const IpAddress& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(address);
  if (it == failures_.end()) return false;
  forget_old(it->second, now);
  return it->second.size() >= max_failures_;
}

unsigned AuthThrottle::failures(const IpAddress& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(address);
  if (it == failures_.end()) return 0;
  forget_old(it->second, now);
  return static_cast<unsigned>(it->second.size());
}

void AuthThrottle::record_failure(const IpAddress& address, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto& failures = failures_[address];
  forget_old(failures, now);
  failures.push_back(now);
  while (failures.size() > max_failures_) failures.pop_front();  // older ones no longer matter
  if (++records_since_sweep_ < sweep_every) return;
  records_since_sweep_ = 0;
  for (auto it = failures_.begin(); it != failures_.end();) {
    forget_old(it->second, now);
    it = it->second.empty() ? failures_.erase(it) : std::next(it);
  }
}

}  // namespace maild::net
