// Builds OpenSSL server contexts from PEM files, and the outbound client context; see tls.hpp.
#include "net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

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

}  // namespace

TlsContext::TlsContext(std::filesystem::path cert, std::filesystem::path key)
    : cert_(std::move(cert)), key_(std::move(key)) {
  if (enabled()) reload();
}

void TlsContext::reload() {
  if (!enabled()) return;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_.string(), ec);
  if (ec) throw std::runtime_error("tls.cert " + cert_.string() + ": " + ec.message());
  context->use_private_key_file(key_.string(), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("tls.key " + key_.string() + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("tls.key " + key_.string() + " does not match tls.cert " +
                             cert_.string());
  auto description = describe_certificate(native);
  std::lock_guard lock(mutex_);
  context_ = std::move(context);
  description_ = std::move(description);
}

std::shared_ptr<ssl::context> TlsContext::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::string TlsContext::describe() const {
  std::lock_guard lock(mutex_);
  return enabled() ? description_ : "TLS disabled";
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
