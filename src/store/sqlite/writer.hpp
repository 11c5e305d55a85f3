// The single writer thread: every write is a job, and all the jobs queued while
// the previous commit ran share one transaction and one fsync (group commit).
// Trust: jobs are the store's own code; a job that throws is rolled back alone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "maild/store/store.hpp"
#include "store/sqlite/connection.hpp"

namespace maild::store::sqlite {

class Writer {
 public:
  struct Job {
    std::function<void(Connection&)> run;  // inside its own SAVEPOINT; throw to fail alone
    std::function<void(std::exception_ptr)>
        finish;  // on the writer thread, after COMMIT or failure
  };

  explicit Writer(std::unique_ptr<Connection> connection);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void submit(Job job);  // StoreError once closed

  // Runs `work` in the next group and blocks until it is committed; returns its result or rethrows.
  template <class Work>
  auto call(Work work) -> std::invoke_result_t<Work&, Connection&>;

  void close();  // runs what is queued, then stops the thread
  WriterStats stats() const;

 private:
  void loop();
  void run_group(std::vector<Job>& jobs);
  void refuse_writer_thread() const;

  std::unique_ptr<Connection> connection_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool closing_ = false;
  std::atomic<std::uint64_t> transactions_{0};
  std::atomic<std::uint64_t> jobs_{0};
  std::thread thread_;
};

template <class Work>
auto Writer::call(Work work) -> std::invoke_result_t<Work&, Connection&> {
  using Result = std::invoke_result_t<Work&, Connection&>;
  refuse_writer_thread();
  // The promise lives in the job, not on this stack: set_value may still be running when we wake.
  auto promise = std::make_shared<std::promise<Result>>();
  auto future = promise->get_future();
  if constexpr (std::is_void_v<Result>) {
    submit({[work = std::move(work)](Connection& c) mutable { work(c); },
            [promise](std::exception_ptr error) {
              if (error)
                promise->set_exception(error);
              else
                promise->set_value();
            }});
  } else {
    auto result = std::make_shared<std::optional<Result>>();
    submit({[work = std::move(work), result](Connection& c) mutable { result->emplace(work(c)); },
            [promise, result](std::exception_ptr error) {
              if (error)
                promise->set_exception(error);
              else
                promise->set_value(std::move(**result));
            }});
  }
  return future.get();
}

}  // namespace maild::store::sqlite
