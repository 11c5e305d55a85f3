// What the server hands every new session.
// Trust: the remote address comes from accept(2); settings are validated.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <string>

#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"
#include "maild/store/store.hpp"

namespace maild::dns {
class Resolver;
}

namespace maild::net {

class AuthThrottle;
class TlsContext;

enum class Service { smtp, submission, submissions, pop3, pop3s };

inline bool implicit_tls(Service s) { return s == Service::submissions || s == Service::pop3s; }

// Shared by every session of one maild; outlives them all.
struct ServerParts {
  const config::Settings& settings;
  TlsContext& tls;
  store::Store& store;
  boost::asio::any_io_executor store_pool;  // where blocking store calls run
  AuthThrottle& smtp_auth_throttle;
  AuthThrottle& pop3_auth_throttle;
  AuthThrottle& unknown_token_throttle;  // GETs of unknown tokens per client address
  dns::Resolver* resolver = nullptr;     // GET authorisation by MX; null: trusted peers only
};

struct SessionEnv {
  const ServerParts& parts;
  Service service;
  std::string id;  // the session id on every log line
  IpAddress remote;
  std::string remote_text;     // address:port, for the log
  std::string remote_address;  // the address alone, for Received
};

}  // namespace maild::net
