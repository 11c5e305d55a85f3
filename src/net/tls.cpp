// Builds OpenSSL server contexts from PEM files, and the outbound client context; see tls.hpp.
#include "net/tls.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

#include "maild/config/limits.hpp"

namespace maild::net {
namespace ssl = boost::asio::ssl;

namespace {

std::string describe_certificate(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return "no certificate";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
  BIO_puts(bio.get(), ", expires ");
  ASN1_TIME_print(bio.get(), X509_get0_notAfter(cert));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

// OpenSSL's own text for its errors ("...:PEM routines::no start line"), which
// Asio's category renders only as "asio.ssl error".
std::string error_text(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return ec.message();
  char text[256];
  ERR_error_string_n(static_cast<unsigned long>(ec.value()), text, sizeof text);
  return text;
}

}  // namespace

PemFiles::~PemFiles() {
  if (!key.empty()) OPENSSL_cleanse(key.data(), key.size());
}

std::string read_pem_file(std::string_view setting, const std::filesystem::path& file) {
  const auto fail = [&](const std::string& why) {
    return std::runtime_error(std::string(setting) + " " + file.string() + ": " + why);
  };
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::strerror(errno));
  std::string text;
  char buffer[16384];
  for (;;) {
    const auto n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      throw fail(std::strerror(error));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limits::tls_file_max.bytes) {
      close(fd);
      OPENSSL_cleanse(text.data(), text.size());
      throw fail("larger than " + std::to_string(limits::tls_file_max.bytes) + " bytes");
    }
  }
  OPENSSL_cleanse(buffer, sizeof buffer);
  close(fd);
  return text;
}

// Mozilla's "intermediate" configuration (version 5.7) for TLS 1.2.
const char* const server_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

TlsContext::TlsContext(std::filesystem::path cert, std::filesystem::path key)
    : cert_(std::move(cert)), key_(std::move(key)), reader_([this] {
        PemFiles files;
        files.cert = read_pem_file("tls.cert", cert_);
        files.key = read_pem_file("tls.key", key_);
        return files;
      }) {
  if (enabled()) reload();
}

void TlsContext::set_reader(PemReader reader) {
  std::lock_guard lock(mutex_);
  reader_ = std::move(reader);
}

void TlsContext::reload() {
  if (!enabled()) return;
  PemReader reader;
  {
    std::lock_guard lock(mutex_);
    reader = reader_;
  }
  const PemFiles files = reader();
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // Every suite offered is strong, so the client's order wins (it knows
  // whether it has AES in hardware), as the profile says.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // SSL_CTX_set1_groups_list and SSL_CTX_set_dh_auto, without the macros' C casts.
  static char groups[] = "X25519:prime256v1:secp384r1";
  if (SSL_CTX_set_cipher_list(native, server_tls12_ciphers) != 1 ||
      SSL_CTX_ctrl(native, SSL_CTRL_SET_GROUPS_LIST, 0, groups) != 1)
    throw std::runtime_error("OpenSSL refuses the TLS cipher profile");
  SSL_CTX_ctrl(native, SSL_CTRL_SET_DH_AUTO, 1, nullptr);  // DHE groups sized to the key
  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(files.cert), ec);
  if (ec) throw std::runtime_error("tls.cert " + cert_.string() + ": " + error_text(ec));
  context->use_private_key(boost::asio::buffer(files.key), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("tls.key " + key_.string() + ": " + error_text(ec));
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("tls.key " + key_.string() + " does not match tls.cert " +
                             cert_.string());
  auto description = describe_certificate(native);
  X509* cert = SSL_CTX_get0_certificate(native);
  const auto not_before = to_time_point(cert ? X509_get0_notBefore(cert) : nullptr);
  const auto not_after = to_time_point(cert ? X509_get0_notAfter(cert) : nullptr);
  std::lock_guard lock(mutex_);
  context_ = std::move(context);
  description_ = std::move(description);
  not_before_ = not_before;
  not_after_ = not_after;
}

std::shared_ptr<ssl::context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::string TlsContext::describe() const {
  std::lock_guard lock(mutex_);
  return enabled() ? description_ : "TLS disabled";
}

std::string TlsContext::expiry_warning(std::chrono::system_clock::time_point now) const {
  if (!enabled()) return {};
  std::lock_guard lock(mutex_);
  const auto file = "tls.cert " + cert_.string() + " (" + description_ + ")";
  if (now >= not_after_) return file + " has expired";
  if (now < not_before_) return file + " is not valid yet";
  const auto left = std::chrono::floor<std::chrono::days>(not_after_ - now);
  if (not_after_ - now < limits::certificate_warning)
    return file + " expires in " + std::to_string(left.count()) + " days";
  return {};
}

std::shared_ptr<ssl::context> make_client_tls_context() {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Opportunistic: an unverifiable certificate beats plain text (RFC 7435).
  context->set_verify_mode(ssl::verify_none);
  return context;
}

}  // namespace maild::net
