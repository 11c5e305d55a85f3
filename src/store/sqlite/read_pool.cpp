// The pool of read connections: a mutex guards only the idle list, never an open or a query.
// Trust: connections come back from leases in a clean state (no open transaction).
#include "store/sqlite/read_pool.hpp"

#include "maild/store/types.hpp"

namespace maild::store::sqlite {

ReadPool::ReadPool(std::filesystem::path path, std::size_t max_idle)
    : path_(std::move(path)), max_idle_(max_idle) {}

ReadPool::Lease ReadPool::lease() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw StoreError("the store is closed");
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
  }
  // Opened outside the lock: an open can wait on the busy timeout.
  return Lease(*this, std::make_unique<Connection>(path_, false));
}

void ReadPool::give_back(std::unique_ptr<Connection> connection) {
  // A lease that ended mid-transaction (an exception) is not reused.
  if (connection->in_transaction()) return;
  std::unique_lock lock(mutex_);
  if (closed_ || idle_.size() >= max_idle_) {
    lock.unlock();
    return;  // `connection` closes here, outside the lock
  }
  idle_.push_back(std::move(connection));
}

void ReadPool::close() {
  std::vector<std::unique_ptr<Connection>> closing;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    closing.swap(idle_);
  }
}

}  // namespace maild::store::sqlite
