// The loop the queue manager and the retrieval worker share: one coroutine on
// a strand of its own looks at the store every poll (at once when woken),
// where its owner claims work by lease and runs it in worker slots; the
// leases of what is in flight are renewed every third of the lease time; on
// stop nothing more is claimed and what runs may finish. What is in flight
// leaves it (release()) before its outcome goes to the store, which ends the
// lease: a renewal that meets such a lease has not lost it.
// Talks to: nothing itself; its owner's round() and renew() reach the store.
// Trust: everything but start(), wake(), stop(), idle() and release() is on the strand.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "maild/core/units.hpp"
#include "net/worker_slots.hpp"

namespace maild::net {

class LeasedWorker {
 public:
  using Id = std::int64_t;  // a leased row: a queue recipient, a pending retrieval
  using Strand = boost::asio::strand<boost::asio::any_io_executor>;

  LeasedWorker(const LeasedWorker&) = delete;
  LeasedWorker& operator=(const LeasedWorker&) = delete;

  // The name its leases go by: "<hostname>/<pid>/<random>", unique per process.
  const std::string& owner() const { return owner_; }
  void start();
  // Something is due: look now instead of at the next poll. Any thread.
  void wake();
  // Shutdown: no more claims, waiting jobs get no slot, on_stop() cancels what
  // runs. Any thread.
  void stop();
  // True once stopped and every job has finished. Any thread.
  bool idle() const;

 protected:
  // `name` starts its log lines ("queue"); `leased` names what it leases
  // ("recipients"); `workers` jobs run at once.
  LeasedWorker(boost::asio::any_io_executor io, std::string name, std::string leased,
               const std::string& hostname, std::size_t workers, Seconds poll, Seconds lease_time);
  virtual ~LeasedWorker() = default;

  // Once, when the loop starts: says how it works, in the log.
  virtual void on_start() = 0;
  // One look at the store: claims and the like. Store trouble throws; the
  // loop logs it and looks again at the next poll.
  virtual boost::asio::awaitable<void> round() = 0;
  // Renews the leases on `ids` (in flight); false when one is no longer ours.
  virtual boost::asio::awaitable<bool> renew(const std::vector<Id>& ids) = 0;
  // On the strand when stop() arrives: cancel what runs.
  virtual void on_stop() = 0;

  // What follows is for round() and the jobs, on the strand only.
  // renew() for what is in flight when a third of the lease time has passed.
  // A lease counts as lost, and is logged so, only when what was released
  // while renew() ran does not explain it. False when one was lost.
  boost::asio::awaitable<bool> renew_leases();
  // Look again right after this round (or now, when waiting).
  void look_again();
  // A job (a batch, a group) was spawned / has ended.
  void job_started() { ++jobs_; }
  void job_finished();

  Strand& strand() { return strand_; }
  WorkerSlots& workers() { return workers_; }
  bool stopping() const { return stopping_; }

  // In flight: leased by this node and being worked on, so renewed.
  void hold(Id id);
  std::size_t in_flight() const;
  // Its outcome goes to the store now (which ends the lease): renewed no more.
  // Before the store call, from any thread; releasing twice is harmless.
  void release(Id id);

 private:
  boost::asio::awaitable<void> run();

  std::string name_;
  std::string leased_;
  Strand strand_;
  boost::asio::steady_timer wakeup_;
  std::string owner_;
  Seconds poll_;
  Seconds lease_time_;

  // On the strand only.
  bool stopping_ = false;
  bool running_ = false;
  bool woken_ = false;
  std::size_t jobs_ = 0;  // started and not yet finished
  WorkerSlots workers_;
  mutable std::mutex in_flight_mutex_;  // release() comes from the jobs' own strands too
  std::set<Id> in_flight_;
  std::chrono::steady_clock::time_point last_renewal_;
  std::atomic<bool> idle_{true};
};

}  // namespace maild::net
