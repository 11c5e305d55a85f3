// The writer thread: owns the only write connection and groups queued jobs into one transaction.
// Trust: SQLite reports every failure; a failed COMMIT fails every job in the group (nothing is
// acknowledged).
#include "store/sqlite/writer.hpp"

#include <iterator>

namespace maild::store::sqlite {
namespace {

// Bounds one transaction's size, so the first job in a burst does not wait for thousands more.
constexpr std::size_t max_group = 1024;

}  // namespace

Writer::Writer(std::unique_ptr<Connection> connection)
    : connection_(std::move(connection)), thread_([this] { loop(); }) {}

Writer::~Writer() { close(); }

void Writer::submit(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (closing_) throw StoreError("the store is closed");
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void Writer::close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  connection_.reset();
}

WriterStats Writer::stats() const { return WriterStats{transactions_.load(), jobs_.load()}; }

void Writer::refuse_writer_thread() const {
  // A completion that waited for the writer would wait for itself.
  if (std::this_thread::get_id() == thread_.get_id()) {
    throw StoreError("a blocking store write was called on the writer thread (from a completion)");
  }
}

void Writer::loop() {
  for (;;) {
    std::vector<Job> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing, and everything queued has run
      const auto count = std::min(queue_.size(), max_group);
      const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(count);
      group.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
      queue_.erase(queue_.begin(), end);
    }
    run_group(group);
  }
}

void Writer::run_group(std::vector<Job>& jobs) {
  Connection& db = *connection_;
  std::vector<std::exception_ptr> errors(jobs.size());
  std::exception_ptr group_error;

  try {
    db.exec("BEGIN IMMEDIATE");
  } catch (...) {
    group_error = std::current_exception();
  }

  for (std::size_t i = 0; i < jobs.size() && !group_error; ++i) {
    try {
      db.exec("SAVEPOINT job");
    } catch (...) {
      group_error = std::current_exception();
      break;
    }
    try {
      jobs[i].run(db);
      db.exec("RELEASE job");
    } catch (...) {
      errors[i] = std::current_exception();
      bool contained = false;
      // Some errors (disk full, I/O) make SQLite roll back the whole transaction itself.
      if (db.in_transaction()) {
        try {
          db.exec("ROLLBACK TO job; RELEASE job");
          contained = true;
        } catch (...) {
        }
      }
      if (!contained) group_error = errors[i];
    }
  }

  if (!group_error) {
    try {
      db.exec("COMMIT");
      transactions_.fetch_add(1);
    } catch (...) {
      group_error = std::current_exception();
    }
  }
  if (group_error && db.in_transaction()) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {
      // Nothing more to do: every job below is told it failed, and nothing was acknowledged.
    }
  }
  jobs_.fetch_add(jobs.size());

  for (std::size_t i = 0; i < jobs.size(); ++i) {
    try {
      jobs[i].finish(errors[i] ? errors[i] : group_error);
    } catch (...) {
      // A completion that throws must not stop the writer or starve the rest of the group.
    }
  }
}

}  // namespace maild::store::sqlite
