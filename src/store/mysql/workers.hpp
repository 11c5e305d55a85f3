// The threads that run MailStore::deliver_async: each job is a whole delivery (its own
// transaction on a pooled connection) and its completion, in the order they were queued, several
// at once. MySQL groups concurrent commits into one log flush itself, so no job waits for another.
// Trust: jobs are the store's own code; a job never throws out of its thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace maild::store::mysql {

class Workers {
 public:
  explicit Workers(std::size_t threads);  // started on the first submit
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void submit(std::function<void()> job);  // StoreError once closed
  void close();                            // runs everything queued, then stops the threads

 private:
  void loop();

  std::size_t threads_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::size_t idle_ = 0;
  bool closing_ = false;
  std::vector<std::thread> running_;
};

}  // namespace maild::store::mysql
