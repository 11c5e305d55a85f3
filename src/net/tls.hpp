// TLS server context from [tls] cert/key, replaced as a whole on SIGHUP, and
// the client context of outbound STARTTLS. The server offers Mozilla's
// "intermediate" profile: TLS 1.3, and TLS 1.2 with ECDHE/DHE key exchange and
// AEAD ciphers only (forward secrecy on every port).
// Trust: the files are the administrator's; OpenSSL validates them. Sessions
// already running keep the context they started with. Outbound, the peer's
// certificate is not verified (opportunistic TLS, RFC 7435): TLS there is
// protection against passive listening only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace maild::net {

// The contents of tls.cert and tls.key; the key's bytes are wiped when it goes.
struct PemFiles {
  PemFiles() = default;
  PemFiles(const PemFiles&) = delete;
  PemFiles& operator=(const PemFiles&) = delete;
  PemFiles(PemFiles&&) = default;
  PemFiles& operator=(PemFiles&&) = default;
  ~PemFiles();

  std::string cert;
  std::string key;
};

// Reads one file of at most limits::tls_file_max bytes. Throws std::runtime_error
// "<setting> <file>: <reason>", the reason being errno's text ("Permission denied").
std::string read_pem_file(std::string_view setting, const std::filesystem::path& file);

// Where reload() gets the files: by default this process reads them; after the
// privilege drop, maild's privileged helper does.
using PemReader = std::function<PemFiles()>;

class TlsContext {
 public:
  TlsContext(std::filesystem::path cert, std::filesystem::path key);

  const std::filesystem::path& cert_file() const { return cert_; }
  const std::filesystem::path& key_file() const { return key_; }
  // Replaces the reader reload() uses from now on.
  void set_reader(PemReader reader);

  bool enabled() const { return !cert_.empty(); }
  // Loads the files again. Throws std::runtime_error naming the file and the
  // reason; the previous context stays in use then.
  void reload();
  // The context for a new session (null when TLS is disabled).
  std::shared_ptr<boost::asio::ssl::context> current() const;
  // Subject and expiry of the loaded certificate, for the log.
  std::string describe() const;
  // Why the loaded certificate needs the administrator's attention at `now`
  // (expired, not yet valid, or expiring within limits::certificate_warning),
  // naming the file; empty when it is fine or TLS is disabled.
  std::string expiry_warning(std::chrono::system_clock::time_point now) const;

 private:
  std::filesystem::path cert_;
  std::filesystem::path key_;
  PemReader reader_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string description_;
  std::chrono::system_clock::time_point not_before_;
  std::chrono::system_clock::time_point not_after_;
};

// The TLS 1.2 cipher list the server offers (TLS 1.3's suites are all AEAD
// with forward secrecy and stay OpenSSL's default).
extern const char* const server_tls12_ciphers;

// A context for outbound STARTTLS: TLS 1.2 or later, no certificate check.
// Its ciphers stay OpenSSL's defaults: for opportunistic TLS to any MX, a
// weaker cipher beats falling back to plain text (RFC 7435).
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context();

}  // namespace maild::net
