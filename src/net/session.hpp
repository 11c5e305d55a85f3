// What every protocol session (SMTP, POP3) shares with the server: the stop
// request of a two-phase shutdown, and the registry that reaches every session.
// Trust: internal bookkeeping only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace maild::net {

// Shared between a session's coroutine and the registry. Fields are touched
// only on the session's strand (the registry posts there).
struct SessionControl {
  boost::asio::any_io_executor executor;
  // Set by the session's Connection: cancels its pending I/O (false) or closes it (true).
  std::function<void(bool close)> interrupt;
  bool stopping = false;  // shutdown asked the session to finish
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
  ~RegisteredSession() { registry_.remove(key_); }
  RegisteredSession(const RegisteredSession&) = delete;
  RegisteredSession& operator=(const RegisteredSession&) = delete;

  const std::shared_ptr<SessionControl>& control() const { return control_; }

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

}  // namespace maild::net
