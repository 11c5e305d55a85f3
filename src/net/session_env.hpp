// What the server hands every new session.
// Trust: the remote address comes from accept(2); settings are validated.
#pragma once

#include <string>

#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"

namespace maild::net {

class SessionRegistry;

enum class Service { smtp, submission, submissions, pop3, pop3s };

struct SessionEnv {
  const config::Settings& settings;
  SessionRegistry& registry;
  Service service;
  std::string id;           // the session id on every log line
  IpAddress remote;
  std::string remote_text;  // address:port, for the log
  bool tls = false;         // the stream is already TLS (implicit TLS listeners)
};

}  // namespace maild::net
