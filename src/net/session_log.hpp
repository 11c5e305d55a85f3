// Logging with the session id on every line of a session.
// Trust: callers must not pass secrets (AUTH data, tokens) as arguments.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace maild::net {

class SessionLog {
 public:
  explicit SessionLog(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }

  template <class... Args>
  void log(spdlog::level::level_enum level, fmt::format_string<Args...> format,
           Args&&... args) const {
    if (!spdlog::should_log(level)) return;
    spdlog::log(level, "{} {}", id_, fmt::format(format, std::forward<Args>(args)...));
  }
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) const {
    log(spdlog::level::debug, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) const {
    log(spdlog::level::info, f, std::forward<Args>(a)...);
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) const {
    log(spdlog::level::warn, f, std::forward<Args>(a)...);
  }

 private:
  std::string id_;
};

}  // namespace maild::net
