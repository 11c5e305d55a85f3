// A protocol session under test, in one process: the session coroutine on one
// end of a socketpair, a blocking client (optionally TLS) on the other, a real
// SQLite store in a temp folder, a real TLS certificate. Tests read like
// transcripts: send(), expect().
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "maild/core/password.hpp"
#include "maild/store/store.hpp"
#include "net/auth_throttle.hpp"
#include "net/credential_cache.hpp"
#include "net/session.hpp"
#include "net/session_env.hpp"
#include "net/tls.hpp"
#include "reverse/source_get.hpp"
#include "smtp/extension.hpp"

namespace maild::testing {

namespace asio = boost::asio;
using LocalSocket = asio::local::stream_protocol::socket;

// Every wait of a test client is bounded.
inline constexpr std::chrono::seconds client_timeout{10};

// The client end: blocking, with a deadline on every read.
class Client {
 public:
  explicit Client(LocalSocket socket) : socket_(std::move(socket)) {}

  void send(const std::string& data) {
    if (tls_)
      asio::write(*tls_, asio::buffer(data));
    else
      asio::write(socket_, asio::buffer(data));
  }

  // The next CRLF line without its CRLF; "" with closed() true at EOF or timeout.
  std::string line() {
    for (;;) {
      const auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        auto text = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return text;
      }
      if (!fill()) {
        closed_ = true;
        return {};
      }
    }
  }

  // A whole SMTP reply, all its lines.
  std::vector<std::string> reply() {
    std::vector<std::string> lines{line()};
    while (lines.back().size() > 3 && lines.back()[3] == '-') lines.push_back(line());
    return lines;
  }

  // The next reply's last line, which must start with prefix.
  std::string expect(const std::string& prefix) {
    const auto lines = reply();
    EXPECT_EQ(lines.back().rfind(prefix, 0), 0u)
        << "expected " << prefix << ", got " << lines.back();
    return lines.back();
  }

  bool closed() {
    if (closed_) return true;
    if (!buffer_.empty()) return false;
    closed_ = !fill();
    return closed_;
  }

  // max_version (e.g. TLS1_2_VERSION) caps the protocol; 0 takes the newest both sides speak.
  void start_tls(int max_version = 0) {
    context_.emplace(asio::ssl::context::tls_client);
    context_->set_verify_mode(asio::ssl::verify_none);
    if (max_version != 0) SSL_CTX_set_max_proto_version(context_->native_handle(), max_version);
    tls_.emplace(socket_, *context_);
    tls_->handshake(asio::ssl::stream_base::client);
  }
  bool tls_active() const { return tls_.has_value(); }
  // Sends close_notify and reads the server's: true when the server sent its own.
  bool close_tls() {
    boost::system::error_code ec;
    tls_->shutdown(ec);
    return !ec;
  }

  // Bytes the client has received but not read yet (pipelining checks).
  const std::string& unread() const { return buffer_; }

 private:
  // Reads without blocking first: under TLS, bytes may already wait in the
  // stream's own buffer (read along with the handshake), out of poll's sight.
  bool fill() {
    char chunk[4096];
    for (;;) {
      boost::system::error_code ec;
      boost::system::error_code ignored;
      socket_.non_blocking(true, ignored);
      const std::size_t n = tls_ ? tls_->read_some(asio::buffer(chunk), ec)
                                 : socket_.read_some(asio::buffer(chunk), ec);
      socket_.non_blocking(false, ignored);
      if (ec == asio::error::would_block) {
        pollfd fd{socket_.native_handle(), POLLIN, 0};
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(client_timeout).count();
        if (::poll(&fd, 1, static_cast<int>(ms)) <= 0) return false;
        continue;
      }
      if (ec || n == 0) return false;
      buffer_.append(chunk, n);
      return true;
    }
  }

  LocalSocket socket_;
  std::optional<asio::ssl::context> context_;
  std::optional<asio::ssl::stream<LocalSocket&>> tls_;
  std::string buffer_;
  bool closed_ = false;
};

// The world a session runs in: settings, store, TLS, pools, I/O thread.
class SessionFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/maild-protocol-XXXXXX";
    suite_dir_ = ::mkdtemp(pattern);
    const auto command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -keyout " +
        (suite_dir_ / "key.pem").string() + " -out " + (suite_dir_ / "cert.pem").string() +
        " -days 2 -subj /CN=mx.example.test 2>/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(suite_dir_); }

  void SetUp() override {
    char pattern[] = "/tmp/maild-session-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    settings_.server.hostname = "mx.example.test";
    settings_.store.path = dir_ / "mail.db";
    settings_.store.workers = 2;
    settings_.smtp.relay_networks = {*parse_network("127.0.0.0/8")};
    settings_.pop3.plaintext_networks = {*parse_network("127.0.0.0/8")};
    settings_.tls.cert = suite_dir_ / "cert.pem";
    settings_.tls.key = suite_dir_ / "key.pem";
  }

  void TearDown() override {
    for (auto& control : controls_) {
      asio::post(control->executor, [control] {
        if (control->interrupt) control->interrupt(true);
      });
    }
    if (io_thread_.joinable()) {
      work_.reset();
      io_.stop();
      io_thread_.join();
    }
    if (pool_) pool_->join();
    if (store_) store_->close();
    std::filesystem::remove_all(dir_);
  }

  // Opens the store with example.test, bob@ and carol@ (password "secret"), and starts the I/O
  // thread.
  void start_world() {
    store_ = store::open_store(settings_);
    store_->migrate();
    auto& admin = store_->admin();
    admin.add_domain("example.test");
    const auto hash = password::hash("secret");
    admin.add_user("bob@example.test", hash);
    admin.add_user("carol@example.test", hash);
    tls_.emplace(settings_.tls.cert, settings_.tls.key);
    pool_.emplace(2);
    smtp_throttle_.emplace(settings_.smtp.max_auth_failures, std::chrono::minutes(1));
    pop3_throttle_.emplace(settings_.pop3.max_auth_failures, std::chrono::minutes(1));
    credentials_.emplace(settings_.server.auth_cache_ttl);
    token_throttle_.emplace(settings_.reverse.max_unknown_tokens, std::chrono::minutes(1));
    parts_.emplace(net::ServerParts{settings_, *tls_, store_->directory(), store_->mail(),
                                    store_->maildrops(), pool_->get_executor(), *smtp_throttle_,
                                    *pop3_throttle_, *credentials_, [this] { ++queue_wakeups_; }});
    source_get_.emplace(settings_, store_->retrieval_intake(), store_->pickup_window(),
                        store_->policies(), *token_throttle_, resolver_,
                        [this] { ++retrieval_wakeups_; });
    smtp_extensions_ = {&*source_get_};
    for (const auto* extension : extra_extensions_) smtp_extensions_.push_back(extension);
    io_thread_ = std::thread([this] { io_.run(); });
  }

  // Connects a client to a new session of `serve` (smtp::serve<LocalSocket>, with the
  // SOURCE/GET extension as maild registers it, or pop3's).
  template <class Serve>
  Client connect(Serve serve, net::Service service, const char* remote = "127.0.0.1",
                 const std::string& early_bytes = {}) {
    auto server = std::make_shared<LocalSocket>(new_strand());
    LocalSocket client(client_io_);
    asio::local::connect_pair(*server, client);
    if (!early_bytes.empty()) asio::write(client, asio::buffer(early_bytes));
    spawn(server, serve, service, remote, asio::detached);
    return Client(std::move(client));
  }

  // The server's parts, for a test to shorten a built-in limit before it connects.
  net::ServerParts& parts() {
    if (!store_) start_world();
    return *parts_;
  }

  // A strand on the sessions' I/O thread, for a session's server end.
  asio::strand<asio::io_context::executor_type> new_strand() {
    if (!store_) start_world();
    return asio::make_strand(io_);
  }

  // Runs `serve` on `server` (made on new_strand()) as a new session; `ended`
  // completes co_spawn (it gets the std::exception_ptr) once the session returned.
  // Returns the session's control (to interrupt it on its strand).
  template <class Stream, class Serve, class Ended>
  std::shared_ptr<net::SessionControl> spawn(std::shared_ptr<Stream> server, Serve serve,
                                             net::Service service, const char* remote,
                                             Ended ended) {
    if (!store_) start_world();
    auto env = std::make_shared<net::SessionEnv>(
        net::SessionEnv{*parts_, service, "TEST" + std::to_string(envs_.size()), *parse_ip(remote),
                        std::string(remote) + ":1025", remote});
    envs_.push_back(env);
    auto control = std::make_shared<net::SessionControl>();
    control->executor = server->get_executor();
    controls_.push_back(control);
    asio::co_spawn(
        server->get_executor(),
        [this, server, env, control, serve]() -> asio::awaitable<void> {
          if constexpr (std::is_invocable_v<Serve, Stream&, const net::SessionEnv&,
                                            const smtp::SessionExtensions&,
                                            std::shared_ptr<net::SessionControl>>)
            co_await serve(*server, *env, smtp_extensions_, control);
          else
            co_await serve(*server, *env, control);
          boost::system::error_code ignored;
          server->shutdown(asio::socket_base::shutdown_both, ignored);
        },
        std::move(ended));
    return control;
  }

  // Asks every session to stop, as SIGTERM does.
  void request_stop() {
    for (auto& control : controls_) {
      asio::post(control->executor, [control] {
        control->stopping = true;
        if (control->interrupt) control->interrupt(false);
      });
    }
  }

  store::Store& store() { return *store_; }
  int queue_wakeups() const { return queue_wakeups_; }
  int retrieval_wakeups() const { return retrieval_wakeups_; }
  bool world_started() const { return store_ != nullptr; }
  // Runs `work` on the sessions' I/O thread (e.g. to make a dns::Resolver there).
  asio::io_context& io() { return io_; }

  // Plugs `extension` into every SMTP session after SOURCE/GET; before the first connect().
  void add_smtp_extension(const smtp::Extension& extension) {
    extra_extensions_.push_back(&extension);
  }

  // The resolver sessions use for GET authorisation; set before the first connect().
  dns::Resolver* resolver_ = nullptr;

  config::Settings settings_;
  std::filesystem::path dir_;
  inline static std::filesystem::path suite_dir_;

 private:
  asio::io_context io_;
  asio::io_context client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::thread io_thread_;
  std::unique_ptr<store::Store> store_;
  std::optional<net::TlsContext> tls_;
  std::optional<asio::thread_pool> pool_;
  std::optional<net::AuthThrottle> smtp_throttle_;
  std::optional<net::AuthThrottle> pop3_throttle_;
  std::optional<net::CredentialCache> credentials_;
  std::optional<net::AuthThrottle> token_throttle_;
  std::optional<net::ServerParts> parts_;
  std::optional<reverse::SourceGet> source_get_;
  smtp::SessionExtensions smtp_extensions_;
  std::vector<const smtp::Extension*> extra_extensions_;
  std::atomic<int> queue_wakeups_{0};      // how often a session said it queued mail
  std::atomic<int> retrieval_wakeups_{0};  // how often a session accepted a SOURCE
  std::vector<std::shared_ptr<net::SessionEnv>> envs_;
  std::vector<std::shared_ptr<net::SessionControl>> controls_;
};

}  // namespace maild::testing
