// A deadline on every wait (STYLE.md 8): one reused timer per session that
// cancels the socket's operations when a read or write outlives it, so the
// session can still say goodbye (e.g. 421 4.4.2) under a fresh deadline.
// Trust: none needed. Must be used on the session's strand only.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "maild/core/units.hpp"

namespace maild::net {

template <class Socket>
class Watchdog {
 public:
  explicit Watchdog(Socket& socket)
      : timer_(socket.get_executor()), state_(std::make_shared<State>(State{&socket, false})) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    state_->socket = nullptr;  // a handler already queued must not touch the socket
    timer_.cancel();
  }

  // (Re)starts the countdown; call before each read or write.
  template <class Duration>
  void arm(Duration timeout) {
    state_->expired = false;
    timer_.expires_after(timeout);
    timer_.async_wait([state = state_](const boost::system::error_code& ec) {
      if (ec || state->socket == nullptr) return;
      state->expired = true;
      boost::system::error_code ignored;
      state->socket->cancel(ignored);
    });
  }
  void disarm() { timer_.cancel(); }

  // True when the last armed deadline passed and cancelled the socket's operations.
  bool expired() const { return state_->expired; }

 private:
  struct State {
    Socket* socket;
    bool expired;
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;  // shared with queued handlers, which may outlive this
};

}  // namespace maild::net
