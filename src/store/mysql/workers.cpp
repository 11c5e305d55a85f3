// deliver_async's threads: started as work arrives, up to their number, drained on close.
// Trust: only our own bookkeeping.
#include "store/mysql/workers.hpp"

#include <algorithm>

#include "maild/store/types.hpp"

namespace maild::store::mysql {

Workers::Workers(std::size_t threads) : threads_(std::max<std::size_t>(threads, 1)) {}

Workers::~Workers() { close(); }

void Workers::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (closing_) throw StoreError("mysql: the store is closed");
    queue_.push_back(std::move(job));
    // Another thread only when every one is busy: mailctl and quiet servers keep few.
    if (idle_ == 0 && running_.size() < threads_) running_.emplace_back([this] { loop(); });
  }
  wake_.notify_one();
}

void Workers::close() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    threads.swap(running_);
  }
  wake_.notify_all();
  for (auto& thread : threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // closed from a completion: this thread ends when it returns
    } else {
      thread.join();
    }
  }
}

void Workers::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      ++idle_;
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // closing, and everything queued has run
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace maild::store::mysql
