#include "net/worker_slots.hpp"

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace maild::net {

namespace asio = boost::asio;

WorkerSlots::Slot& WorkerSlots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    other.owner_ = nullptr;
  }
  return *this;
}

void WorkerSlots::Slot::release() {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->give_back();
}

asio::awaitable<WorkerSlots::Slot> WorkerSlots::acquire() {
  if (busy_ < limit_ || stopped_) {
    ++busy_;
    co_return Slot(this);
  }
  auto waiter =
      std::make_shared<asio::steady_timer>(strand_, asio::steady_timer::time_point::max());
  waiting_.push_back(waiter);
  boost::system::error_code ec;
  co_await waiter->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  // give_back() handed its slot over (busy_ unchanged) and removed the waiter,
  // or stop() woke every waiter: then the waiter is still listed.
  const auto listed = std::find(waiting_.begin(), waiting_.end(), waiter);
  if (listed != waiting_.end()) {
    waiting_.erase(listed);
    ++busy_;
  }
  co_return Slot(this);
}

void WorkerSlots::give_back() {
  if (!waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    next->cancel();  // its slot now: busy_ stays
  } else {
    --busy_;
  }
}

void WorkerSlots::stop() {
  stopped_ = true;
  for (auto& waiter : waiting_) waiter->cancel();
}

}  // namespace maild::net
