// One c-ares channel run by the Asio loop: c-ares' sockets are watched by the
// reactor (stream_descriptors that are released, never closed: c-ares owns the
// fds), its retransmissions by one timer, and every c-ares call happens on one
// strand. Lookups hand back raw answers; resolver.cpp parses them.
// Trust: answers are untrusted bytes (at most 64 KiB, c-ares' TCP limit); each
// lookup ends by its deadline whatever the servers do.
#pragma once

#include <ares.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "maild/config/settings.hpp"

namespace maild::dns {

enum RecordType : int { type_a = 1, type_ptr = 12, type_mx = 15, type_aaaa = 28 };

// One query's outcome: a c-ares status (ARES_ETIMEOUT when the deadline came
// first, ARES_EDESTRUCTION when the channel was shut down) and, on success,
// the whole DNS message.
struct Answer {
  int status = ARES_ETIMEOUT;
  std::vector<unsigned char> message;
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  using Clock = std::chrono::steady_clock;

  Channel(const config::DnsSettings& settings, const boost::asio::any_io_executor& executor);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // How long one lookup may take in all ([dns] timeout).
  Clock::duration budget() const { return budget_; }

  // Asks one query per entry of `types` for `name` at once; completes, on the
  // caller's executor, when all have answered or at `deadline`, with one
  // Answer per type in the same order.
  boost::asio::awaitable<std::vector<Answer>> ask(const std::string& name,
                                                  std::span<const int> types,
                                                  Clock::time_point deadline);

  // Cancels everything in flight (those lookups complete with
  // ARES_EDESTRUCTION) and refuses later ones. Callable from any thread.
  void shutdown();

 private:
  struct Lookup;
  struct QueryRef;
  struct Watch;
  using Strand = boost::asio::strand<boost::asio::any_io_executor>;

  void start(const std::shared_ptr<Lookup>& lookup, const std::string& name,
             const std::vector<int>& types, Clock::time_point deadline);
  void close();
  void process(ares_socket_t readable, ares_socket_t writable);
  void reschedule();
  void on_socket(ares_socket_t fd, bool readable, bool writable);
  void arm(const std::shared_ptr<Watch>& watch);

  static void socket_state_callback(void* data, ares_socket_t fd, int readable, int writable);
  static void answer_callback(void* arg, int status, int timeouts, unsigned char* message,
                              int length);

  Strand strand_;
  Clock::duration budget_;
  ares_channel channel_ = nullptr;
  bool closing_ = false;             // inside close(): c-ares calls back, we do not call in
  bool abandoned_ = false;           // destroyed without close(): drop completions
  boost::asio::steady_timer timer_;  // c-ares' next retransmission or timeout
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
};

}  // namespace maild::dns
