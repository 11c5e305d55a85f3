// Read connections shared by the threads that query the store at the same time.
// Trust: the pool trusts nothing but its own bookkeeping; SQLite errors surface as StoreError.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "store/sqlite/connection.hpp"

namespace maild::store::sqlite {

class ReadPool {
 public:
  class Lease;

  ReadPool(std::filesystem::path path, std::size_t max_idle);

  // A connection for this thread alone until the lease ends; opens one when none is idle.
  Lease lease();
  void close();  // drops idle connections; later leases fail

 private:
  void give_back(std::unique_ptr<Connection> connection);

  std::filesystem::path path_;
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  bool closed_ = false;
};

class ReadPool::Lease {
 public:
  Lease(ReadPool& pool, std::unique_ptr<Connection> connection)
      : pool_(&pool), connection_(std::move(connection)) {}
  ~Lease() {
    if (connection_) pool_->give_back(std::move(connection_));
  }
  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  Connection& operator*() const { return *connection_; }
  Connection* operator->() const { return connection_.get(); }

 private:
  ReadPool* pool_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace maild::store::sqlite
