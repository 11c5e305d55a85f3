// TLS server context from [tls] cert/key, replaced as a whole on SIGHUP, and
// the client context of outbound STARTTLS.
// Trust: the files are the administrator's; OpenSSL validates them. Sessions
// already running keep the context they started with. Outbound, the peer's
// certificate is not verified (opportunistic TLS, RFC 7435): TLS there is
// protection against passive listening only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace maild::net {

class TlsContext {
 public:
  TlsContext(std::filesystem::path cert, std::filesystem::path key);

  bool enabled() const { return !cert_.empty(); }
  // Loads the files again. Throws std::runtime_error naming the file and the
  // reason; the previous context stays in use then.
  void reload();
  // The context for a new session (null when TLS is disabled).
  std::shared_ptr<boost::asio::ssl::context> current() const;
  // Subject and expiry of the loaded certificate, for the log.
  std::string describe() const;

 private:
  std::filesystem::path cert_;
  std::filesystem::path key_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string description_;
};

// A context for outbound STARTTLS: TLS 1.2 or later, no certificate check.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context();

}  // namespace maild::net
