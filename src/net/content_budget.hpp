// One bound on the message content all sessions hold in memory at once
// ([server] content_memory): each session takes a share as its content
// arrives and gives it back when the message is stored or dropped. Beyond
// the bound, a message is read to its end but not kept, and refused with
// 452 4.3.1, so memory stays bounded however many clients send at once.
// Trust: none needed; thread-safe (sessions run on several I/O threads).
#pragma once

#include <atomic>
#include <cstdint>

namespace maild::net {

class ContentBudget {
 public:
  explicit ContentBudget(std::uint64_t limit) : limit_(limit) {}
  ContentBudget(const ContentBudget&) = delete;
  ContentBudget& operator=(const ContentBudget&) = delete;

  // Takes n octets if they fit under the limit.
  bool take(std::uint64_t n) {
    auto used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ || used > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void give_back(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

// A session's share of the budget, given back when released or destroyed.
class ContentShare {
 public:
  explicit ContentShare(ContentBudget* budget) : budget_(budget) {}
  ~ContentShare() { release(); }
  ContentShare(const ContentShare&) = delete;
  ContentShare& operator=(const ContentShare&) = delete;

  // Grows the share by n octets; false (and nothing taken) beyond the budget.
  bool grow(std::uint64_t n) {
    if (budget_ == nullptr) return true;
    if (!budget_->take(n)) return false;
    held_ += n;
    return true;
  }
  // Takes over what `other` holds (it then holds nothing).
  void adopt(ContentShare& other) {
    held_ += other.held_;
    other.held_ = 0;
  }
  void release() {
    if (budget_ != nullptr && held_ > 0) budget_->give_back(held_);
    held_ = 0;
  }

 private:
  ContentBudget* budget_;
  std::uint64_t held_ = 0;
};

}  // namespace maild::net
