// A local stream socket that fails on purpose, for the protocol tests that
// fail every I/O step of a session in turn (the sessions are instantiated for
// it): the N-th read or write started on it (TLS handshake included) and every
// one after it fail with connection_reset, and the peer sees the connection drop.
// Trust: none needed; it only ever wraps one end of a socketpair in a test.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <utility>

namespace maild::net {

class FaultyStream {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using executor_type = Socket::executor_type;
  using lowest_layer_type = Socket::lowest_layer_type;

  // Fails step `fail_at` (counted from 1) and all later ones; 0 never fails.
  FaultyStream(Socket socket, std::size_t fail_at)
      : socket_(std::move(socket)), fail_at_(fail_at) {}

  // Reads and writes started so far, the failed ones included.
  std::size_t steps() const { return steps_; }
  bool failed() const { return fail_at_ != 0 && steps_ >= fail_at_; }

  executor_type get_executor() { return socket_.get_executor(); }
  lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return socket_.lowest_layer(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& to) {
          if (fails_now())
            fail(std::move(handler));
          else
            socket_.async_read_some(to, std::move(handler));
        },
        token, buffers);
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& from) {
          if (fails_now())
            fail(std::move(handler));
          else
            socket_.async_write_some(from, std::move(handler));
        },
        token, buffers);
  }

  std::size_t available(boost::system::error_code& ec) { return socket_.available(ec); }
  void cancel(boost::system::error_code& ec) { socket_.cancel(ec); }
  void shutdown(Socket::shutdown_type what, boost::system::error_code& ec) {
    socket_.shutdown(what, ec);
  }
  void close(boost::system::error_code& ec) { socket_.close(ec); }

 private:
  bool fails_now() {
    ++steps_;
    return failed();
  }

  // Completes the operation with the error, as the socket would: later, on the handler's executor.
  template <class Handler>
  void fail(Handler handler) {
    boost::system::error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    const auto executor = boost::asio::get_associated_executor(handler, socket_.get_executor());
    boost::asio::post(executor, [handler = std::move(handler)]() mutable {
      handler(boost::system::error_code(boost::asio::error::connection_reset), std::size_t{0});
    });
  }

  Socket socket_;
  std::size_t fail_at_;
  std::size_t steps_ = 0;
};

}  // namespace maild::net
