// At most N tasks at once, the others waiting in order: the worker slots of
// the queue manager's batches and the retrieval worker's groups. A slot is
// held by a Slot guard and given back when the guard goes, however the task
// ends (an exception included), straight to the oldest waiter if any.
// Trust: used only on the strand given at construction; nothing crosses it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <deque>
#include <memory>

namespace maild::net {

class WorkerSlots {
 public:
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }
    void release();  // early; the guard's end then does nothing

   private:
    friend class WorkerSlots;
    explicit Slot(WorkerSlots* owner) : owner_(owner) {}
    WorkerSlots* owner_ = nullptr;
  };

  // `strand`: where acquire() is awaited and slots are given back.
  WorkerSlots(boost::asio::any_io_executor strand, std::size_t limit)
      : strand_(std::move(strand)), limit_(limit) {}
  WorkerSlots(const WorkerSlots&) = delete;
  WorkerSlots& operator=(const WorkerSlots&) = delete;

  // A slot now, or once one is given back (first come, first served). After
  // stop() it returns at once: the caller checks its own stop flag.
  boost::asio::awaitable<Slot> acquire();
  // Wakes every waiter; later acquire() calls wait no more.
  void stop();
  std::size_t busy() const { return busy_; }

 private:
  void give_back();

  boost::asio::any_io_executor strand_;
  std::size_t limit_;
  std::size_t busy_ = 0;  // slots held
  std::deque<std::shared_ptr<boost::asio::steady_timer>> waiting_;
  bool stopped_ = false;
};

}  // namespace maild::net
