// One connection as the protocol sessions see it: CRLF lines in, replies (or
// commands) out, queued and flushed together as RFC 2920 pipelining wants,
// raw bytes for message content, and an upgrade to TLS (STARTTLS/STLS, or
// implicit TLS before the greeting; as the client for outbound STARTTLS).
// Generic over the socket, so protocol tests run over a socketpair.
// Trust: the peer is untrusted; every read is bounded in size and time.
#pragma once

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "maild/config/limits.hpp"
#include "maild/core/units.hpp"
#include "net/line_buffer.hpp"
#include "net/session.hpp"
#include "net/session_log.hpp"
#include "net/watchdog.hpp"

namespace maild::net {

template <class Socket>
class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(Socket& socket, std::shared_ptr<SessionControl> control, SessionLog log,
             std::size_t max_line)
      : socket_(socket),
        watchdog_(socket),
        lines_(max_line),
        log_(std::move(log)),
        control_(std::move(control)) {
    control_->interrupt = [this](bool close) {
      boost::system::error_code ignored;
      if (close)
        socket_.close(ignored);
      else
        socket_.cancel(ignored);
    };
  }
  ~Connection() { control_->interrupt = nullptr; }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const SessionLog& log() const { return log_; }
  LineBuffer& lines() { return lines_; }
  bool stopping() const { return control_->stopping; }

  // Output waits in a buffer until flush(); read_line() flushes before it waits.
  void queue(std::string_view text) { output_.append(text); }
  std::size_t queued() const { return output_.size(); }

  boost::asio::awaitable<bool> flush(Seconds timeout) {
    if (output_.empty()) co_return true;
    watchdog_.arm(timeout);
    boost::system::error_code ec;
    if (tls_)
      co_await boost::asio::async_write(
          *tls_, boost::asio::buffer(output_),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    else
      co_await boost::asio::async_write(
          socket_, boost::asio::buffer(output_),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    watchdog_.disarm();
    output_.clear();
    co_return !ec;
  }

  boost::asio::awaitable<bool> send(std::string_view text, Seconds timeout) {
    queue(text);
    const bool sent = co_await flush(timeout);
    co_return sent;
  }

  // The session may last until `deadline` (limits::session_max); every wait
  // ends by then, and session_expired() says why it did.
  void set_session_deadline(Clock::time_point deadline) { session_deadline_ = deadline; }
  bool session_expired() const { return Clock::now() >= session_deadline_; }

  // The next CRLF line. Waits at most `timeout` for its first byte, and all
  // of it must have come within `timeout` of that byte: a peer that trickles
  // bytes cannot hold the reader any longer.
  boost::asio::awaitable<ReadResult> read_line(Seconds timeout) {
    const auto result = co_await read_line_by(timeout, Clock::time_point::max());
    co_return result;
  }

  // The same, and all of the line must have come by `deadline`.
  boost::asio::awaitable<ReadResult> read_line_by(Seconds timeout, Clock::time_point deadline) {
    deadline = std::min(deadline, session_deadline_);
    std::optional<Clock::time_point> started;  // when the line's first byte was here
    for (;;) {
      if (auto line = lines_.next()) {
        if (line->too_long) co_return ReadResult{ReadStatus::too_long, {}};
        co_return ReadResult{ReadStatus::line, std::move(line->text)};
      }
      const bool flushed = co_await flush(timeout);
      if (!flushed) co_return ReadResult{ReadStatus::closed, {}};
      // Checked right before the read starts: a stop request that came while
      // the flush completed found no read to cancel.
      if (stopping()) co_return ReadResult{ReadStatus::stopping, {}};
      const auto now = Clock::now();
      if (!started && lines_.has_pending()) started = now;
      const auto line_deadline = started ? std::min(deadline, *started + timeout) : deadline;
      if (now >= line_deadline) co_return ReadResult{ReadStatus::timed_out, {}};
      const auto wait = std::min<Clock::duration>(timeout, line_deadline - now);
      auto space = lines_.prepare(read_chunk);
      boost::system::error_code ec;
      const std::size_t n = co_await read_some(space.data(), space.size(), wait, ec);
      lines_.commit(n);
      if (ec) co_return ReadResult{failure_status(ec), {}};
    }
  }

  // Raw bytes (message content): what the line buffer holds first, then
  // whatever the peer sends next (by `deadline` at the latest), appended to `out`.
  boost::asio::awaitable<ReadStatus> read_raw(
      std::string& out, Seconds timeout, Clock::time_point deadline = Clock::time_point::max()) {
    if (lines_.has_pending()) {
      out += lines_.take_buffered();
      co_return ReadStatus::line;
    }
    const bool flushed = co_await flush(timeout);
    if (!flushed) co_return ReadStatus::closed;
    deadline = std::min(deadline, session_deadline_);
    const auto now = Clock::now();
    if (now >= deadline) co_return ReadStatus::timed_out;
    const auto wait = std::min<Clock::duration>(timeout, deadline - now);
    const auto old_size = out.size();
    out.resize(old_size + raw_chunk);
    boost::system::error_code ec;
    std::size_t n = co_await read_some(out.data() + old_size, raw_chunk, wait, ec);
    // A stop request cancels waits for commands; message content in flight is finished.
    while (ec == boost::asio::error::operation_aborted && stopping() && !watchdog_.expired()) {
      ec.clear();
      n = co_await read_some(out.data() + old_size, raw_chunk, wait, ec);
    }
    out.resize(old_size + n);
    if (ec) co_return failure_status(ec);
    co_return ReadStatus::line;
  }

  // Bytes read past the end of message content go back to the line reader.
  void unread(std::string_view bytes) { lines_.unread(bytes); }

  // The end of a session: what is queued goes out, then TLS is closed with
  // close_notify (RFC 8446 6.1; peers log a truncation attack without it),
  // waiting at most limits::tls_close_wait for the peer's own, or its close.
  boost::asio::awaitable<void> close(Seconds timeout) {
    const bool flushed = co_await flush(timeout);
    if (!flushed || !tls_) co_return;
    watchdog_.arm(std::min<Seconds>(timeout, limits::tls_close_wait));
    boost::system::error_code ignored;
    co_await tls_->async_shutdown(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    watchdog_.disarm();
  }

  // Handshake as the server. Input buffered before it is dropped: nothing a
  // client sent in clear may be taken as said under TLS (CVE-2011-0411).
  boost::asio::awaitable<bool> start_tls(boost::asio::ssl::context& context, Seconds timeout) {
    const std::string no_name;  // a named variable: no temporary in a co_await (GCC PR 99576)
    const bool secured =
        co_await handshake(boost::asio::ssl::stream_base::server, context, no_name, timeout);
    co_return secured;
  }

  // Handshake as the client (outbound STARTTLS), naming `server_name` in SNI
  // unless it is an IP address (RFC 6066 3). Whatever the server sent in clear
  // after its 220 is dropped, as on the server side.
  boost::asio::awaitable<bool> start_tls_client(boost::asio::ssl::context& context,
                                                const std::string& server_name, Seconds timeout) {
    const bool secured =
        co_await handshake(boost::asio::ssl::stream_base::client, context, server_name, timeout);
    co_return secured;
  }

  bool tls_active() const { return tls_.has_value(); }
  std::string tls_version() { return tls_ ? SSL_get_version(tls_->native_handle()) : ""; }
  std::string tls_cipher() { return tls_ ? SSL_get_cipher_name(tls_->native_handle()) : ""; }

  // True when the client has sent bytes nobody asked for yet (before the greeting).
  bool client_spoke_first() {
    boost::system::error_code ec;
    return socket_.available(ec) > 0 && !ec;
  }

 private:
  static constexpr std::size_t read_chunk = 1024;

  boost::asio::awaitable<bool> handshake(boost::asio::ssl::stream_base::handshake_type type,
                                         boost::asio::ssl::context& context,
                                         const std::string& server_name, Seconds timeout) {
    const bool flushed = co_await flush(timeout);
    if (!flushed) co_return false;
    lines_.clear();
    tls_.emplace(socket_, context);
    if (!server_name.empty()) {
      boost::system::error_code not_an_address;
      boost::asio::ip::make_address(server_name, not_an_address);
      // SSL_set_tlsext_host_name, without the macro's C cast.
      if (not_an_address)
        SSL_ctrl(tls_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(server_name.c_str()));
    }
    watchdog_.arm(timeout);
    boost::system::error_code ec;
    co_await tls_->async_handshake(type,
                                   boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    watchdog_.disarm();
    if (ec) {
      log_.info("TLS handshake failed: {}", watchdog_.expired() ? "timeout" : ec.message());
      co_return false;
    }
    log_.info("TLS {} with cipher {}", tls_version(), tls_cipher());
    co_return true;
  }
  static constexpr std::size_t raw_chunk = 16 * 1024;

  boost::asio::awaitable<std::size_t> read_some(char* data, std::size_t size,
                                                Clock::duration timeout,
                                                boost::system::error_code& ec) {
    watchdog_.arm(timeout);
    std::size_t n = 0;
    if (tls_)
      n = co_await tls_->async_read_some(
          boost::asio::buffer(data, size),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    else
      n = co_await socket_.async_read_some(
          boost::asio::buffer(data, size),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    watchdog_.disarm();
    co_return n;
  }

  ReadStatus failure_status(const boost::system::error_code& ec) const {
    if (watchdog_.expired()) return ReadStatus::timed_out;
    if (stopping() && ec == boost::asio::error::operation_aborted) return ReadStatus::stopping;
    return ReadStatus::closed;
  }

  Socket& socket_;
  Clock::time_point session_deadline_ = Clock::time_point::max();
  std::optional<boost::asio::ssl::stream<Socket&>> tls_;
  Watchdog<Socket> watchdog_;
  LineBuffer lines_;
  std::string output_;
  SessionLog log_;
  std::shared_ptr<SessionControl> control_;
};

}  // namespace maild::net
