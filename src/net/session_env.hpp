// What the server hands every new session.
// Trust: the remote address comes from accept(2); settings are validated.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <string>

#include "maild/config/limits.hpp"
#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"
#include "maild/store/store.hpp"

namespace maild::net {

class AuthThrottle;
class ContentBudget;
class CredentialCache;
class TlsContext;

enum class Service { smtp, submission, submissions, pop3, pop3s };

inline bool implicit_tls(Service s) { return s == Service::submissions || s == Service::pop3s; }

// Shared by every session of one maild; outlives them all.
struct ServerParts {
  const config::Settings& settings;
  TlsContext& tls;
  // The store as sessions see it: logins and recipients, acceptance, maildrops.
  store::Directory& directory;
  store::MailStore& mail;
  store::MaildropStore& maildrops;
  boost::asio::any_io_executor store_pool;  // where blocking store calls run
  AuthThrottle& smtp_auth_throttle;
  AuthThrottle& pop3_auth_throttle;
  CredentialCache& credentials;  // verified passwords, for POP3 and SMTP AUTH
  // Tells the outbound queue that a message was just queued (may be empty).
  std::function<void()> queue_wakeup;
  // The bound on message content held in memory by all sessions (may be null: no bound).
  ContentBudget* content_budget = nullptr;
  // How long one session may last (tests shorten them).
  Seconds smtp_session_max = limits::smtp_session_max;
  Seconds pop3_session_max = limits::pop3_session_max;
  ByteSize content_min_rate = limits::content_min_rate;
  Seconds content_rate_grace = limits::content_rate_grace;
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
