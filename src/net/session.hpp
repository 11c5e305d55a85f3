// What every protocol session (SMTP, POP3) shares: its id and log, the client
// address, one deadline for every wait, the line reader, and the stop request
// of a two-phase shutdown.
// Trust: the peer is untrusted; every read is bounded in size and time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "maild/core/net_types.hpp"
#include "maild/core/units.hpp"
#include "net/line_buffer.hpp"
#include "net/session_log.hpp"
#include "net/watchdog.hpp"

namespace maild::net {

// Shared between a session's coroutine and the registry. Fields are touched
// only on the session's strand (the registry posts there).
struct SessionControl {
  boost::asio::any_io_executor executor;
  boost::asio::ip::tcp::socket* socket = nullptr;  // null once the session ended
  bool stopping = false;                           // shutdown asked the session to finish
};

// Every live session, so that shutdown can reach them.
class SessionRegistry {
 public:
  std::uint64_t add(std::shared_ptr<SessionControl> control);
  void remove(std::uint64_t key);
  // Phase one: each session finishes what it is doing and says goodbye (421 / -ERR).
  void request_stop();
  // Phase two, after the grace period: close whatever is left.
  void close_all();
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_key_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<SessionControl>> sessions_;
};

// Registers a session for its lifetime.
class RegisteredSession {
 public:
  RegisteredSession(SessionRegistry& registry, std::shared_ptr<SessionControl> control)
      : registry_(registry), control_(std::move(control)), key_(registry_.add(control_)) {}
  ~RegisteredSession() {
    control_->socket = nullptr;
    registry_.remove(key_);
  }
  RegisteredSession(const RegisteredSession&) = delete;
  RegisteredSession& operator=(const RegisteredSession&) = delete;
  bool stopping() const { return control_->stopping; }

 private:
  SessionRegistry& registry_;
  std::shared_ptr<SessionControl> control_;
  std::uint64_t key_;
};

enum class ReadStatus { line, too_long, closed, timed_out, stopping };

struct ReadResult {
  ReadStatus status;
  std::string text;  // the line without CRLF when status == line
};

// The I/O half of a session over Stream (a TCP socket or a TLS stream on one).
template <class Stream>
class SessionIo {
 public:
  SessionIo(Stream& stream, boost::asio::ip::tcp::socket& socket, SessionLog log,
            std::size_t max_line, const RegisteredSession& registration)
      : stream_(stream), watchdog_(socket), lines_(max_line), log_(std::move(log)),
        registration_(registration) {}

  const SessionLog& log() const { return log_; }
  LineBuffer& lines() { return lines_; }
  bool stopping() const { return registration_.stopping(); }
  bool timed_out() const { return watchdog_.expired(); }

  // The next CRLF line, waiting at most `timeout` for each chunk of it.
  boost::asio::awaitable<ReadResult> read_line(Seconds timeout) {
    for (;;) {
      if (auto line = lines_.next()) {
        if (line->too_long) co_return ReadResult{ReadStatus::too_long, {}};
        co_return ReadResult{ReadStatus::line, std::move(line->text)};
      }
      if (stopping()) co_return ReadResult{ReadStatus::stopping, {}};
      watchdog_.arm(timeout);
      boost::system::error_code ec;
      auto space = lines_.prepare(read_chunk);
      const std::size_t n = co_await stream_.async_read_some(
          boost::asio::buffer(space.data(), space.size()),
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      lines_.commit(n);
      watchdog_.disarm();
      if (ec) {
        if (watchdog_.expired()) co_return ReadResult{ReadStatus::timed_out, {}};
        if (stopping() && ec == boost::asio::error::operation_aborted)
          co_return ReadResult{ReadStatus::stopping, {}};
        co_return ReadResult{ReadStatus::closed, {}};
      }
    }
  }

  // Writes all of text; false when the peer is gone or too slow.
  boost::asio::awaitable<bool> write(std::string_view text, Seconds timeout) {
    watchdog_.arm(timeout);
    boost::system::error_code ec;
    co_await boost::asio::async_write(stream_, boost::asio::buffer(text.data(), text.size()),
                                      boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    watchdog_.disarm();
    co_return !ec;
  }

 private:
  static constexpr std::size_t read_chunk = 1024;
  Stream& stream_;
  Watchdog watchdog_;
  LineBuffer lines_;
  SessionLog log_;
  const RegisteredSession& registration_;
};

}  // namespace maild::net
