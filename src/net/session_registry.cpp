// The registry of live sessions; see session.hpp.
#include <boost/asio/post.hpp>

#include "net/session.hpp"

namespace maild::net {

std::uint64_t SessionRegistry::add(std::shared_ptr<SessionControl> control) {
  std::lock_guard lock(mutex_);
  const auto key = next_key_++;
  sessions_.emplace(key, std::move(control));
  return key;
}

void SessionRegistry::remove(std::uint64_t key) {
  std::lock_guard lock(mutex_);
  sessions_.erase(key);
}

void SessionRegistry::request_stop() {
  std::lock_guard lock(mutex_);
  for (auto& [key, weak] : sessions_) {
    if (auto control = weak.lock()) {
      boost::asio::post(control->executor, [control] {
        control->stopping = true;
        // Wakes a session waiting for a command; one busy with a command finishes it first.
        if (control->interrupt) control->interrupt(false);
      });
    }
  }
}

void SessionRegistry::close_all() {
  std::lock_guard lock(mutex_);
  for (auto& [key, weak] : sessions_) {
    if (auto control = weak.lock()) {
      boost::asio::post(control->executor, [control] {
        if (control->interrupt) control->interrupt(true);
      });
    }
  }
}

std::size_t SessionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

}  // namespace maild::net
