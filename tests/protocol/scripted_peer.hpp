// A scripted SMTP server for the outbound client's tests: it listens on a
// loopback TCP address and plays one script per accepted connection, each on
// its own thread, checking what the client sent byte for byte. Scripts read
// like the dialogue: say(), expect(), expect_closed(). Every wait is bounded.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace maild::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// How long a script waits for the client's next bytes or connection.
inline constexpr std::chrono::seconds peer_timeout{10};

class PeerConnection {
 public:
  explicit PeerConnection(tcp::socket socket) : socket_(std::move(socket)) {}

  void say(std::string_view text) {
    boost::system::error_code ec;
    if (tls_)
      asio::write(*tls_, asio::buffer(text), ec);
    else
      asio::write(socket_, asio::buffer(text), ec);
  }

  // The next expected.size() octets must be `expected`; read before
  // anything is answered, so pipelined commands must all arrive unprompted.
  void expect(std::string_view expected) {
    while (buffer_.size() < expected.size() && fill()) {
    }
    const auto got = buffer_.substr(0, expected.size());
    buffer_.erase(0, got.size());
    EXPECT_EQ(got, expected);
  }

  // The next CRLF line, for what is not byte-exact (e.g. AUTH's base64 is checked apart).
  std::string line() {
    for (;;) {
      const auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        auto text = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return text;
      }
      if (!fill()) return {};
    }
  }

  // The client closes without sending anything more.
  void expect_closed() {
    while (fill()) {
    }
    EXPECT_TRUE(closed_) << "the client did not close within " << peer_timeout.count() << "s";
    EXPECT_EQ(buffer_, "") << "the client sent more before closing";
  }

  // Waits without answering (the client's timeout must end this first).
  void stall(std::chrono::milliseconds how_long) { std::this_thread::sleep_for(how_long); }

  // The server side of STARTTLS.
  bool start_tls(asio::ssl::context& context) {
    tls_.emplace(socket_, context);
    boost::system::error_code ec;
    tls_->handshake(asio::ssl::stream_base::server, ec);
    if (ec) return false;
    const char* name = SSL_get_servername(tls_->native_handle(), TLSEXT_NAMETYPE_host_name);
    sni_ = name == nullptr ? "" : name;
    return true;
  }
  bool tls_active() const { return tls_.has_value(); }
  const std::string& sni() const { return sni_; }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  bool fill() {
    if (closed_) return false;
    const bool ssl_pending = tls_ && SSL_pending(tls_->native_handle()) > 0;
    if (!ssl_pending) {
      pollfd fd{socket_.native_handle(), POLLIN, 0};
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(peer_timeout).count();
      if (::poll(&fd, 1, static_cast<int>(ms)) <= 0) return false;
    }
    char chunk[16384];
    boost::system::error_code ec;
    const std::size_t n = tls_ ? tls_->read_some(asio::buffer(chunk), ec)
                               : socket_.read_some(asio::buffer(chunk), ec);
    if (ec || n == 0) {
      closed_ = true;
      return false;
    }
    buffer_.append(chunk, n);
    return true;
  }

  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  std::string buffer_;
  std::string sni_;
  bool closed_ = false;
};

class ScriptedPeer {
 public:
  using Script = std::function<void(PeerConnection&)>;

  // Listens on address:port at once (port 0: any free one).
  explicit ScriptedPeer(const std::string& address, std::uint16_t port = 0)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address(address), port)) {}
  ~ScriptedPeer() { finish(); }
  ScriptedPeer(const ScriptedPeer&) = delete;
  ScriptedPeer& operator=(const ScriptedPeer&) = delete;

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Each connection plays the next script; once all have played, no more are accepted.
  void play(std::vector<Script> scripts) {
    scripts_ = std::move(scripts);
    acceptor_thread_ = std::thread([this] { accept_all(); });
  }

  // Waits for every script to end (each is bounded) and stops listening.
  void finish() {
    stop_ = true;
    if (acceptor_thread_.joinable()) acceptor_thread_.join();
    std::lock_guard lock(mutex_);
    for (auto& thread : script_threads_) thread.join();
    script_threads_.clear();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

  int connections() const { return accepted_; }
  int most_at_once() const { return most_at_once_; }
  // Scripts that never got a connection.
  int unplayed() const { return static_cast<int>(scripts_.size()) - accepted_; }

 private:
  void accept_all() {
    const auto deadline = std::chrono::steady_clock::now() + peer_timeout * 3;
    while (accepted_ < static_cast<int>(scripts_.size()) &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd fd{acceptor_.native_handle(), POLLIN, 0};
      if (::poll(&fd, 1, 50) <= 0) {
        if (stop_) return;
        continue;
      }
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec) continue;
      const auto index = static_cast<std::size_t>(accepted_++);
      std::lock_guard lock(mutex_);
      script_threads_.emplace_back([this, index, s = std::move(socket)]() mutable {
        const int now = ++active_;
        int seen = most_at_once_.load();
        while (now > seen && !most_at_once_.compare_exchange_weak(seen, now)) {
        }
        PeerConnection connection(std::move(s));
        scripts_[index](connection);
        --active_;
      });
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<Script> scripts_;
  std::thread acceptor_thread_;
  std::mutex mutex_;
  std::vector<std::thread> script_threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> active_{0};
  std::atomic<int> most_at_once_{0};
};

// An EHLO reply from mx.example.org listing `extensions`.
inline std::string ehlo_reply(const std::vector<std::string>& extensions) {
  std::string reply = "250";
  reply += extensions.empty() ? " " : "-";
  reply += "mx.example.org\r\n";
  for (std::size_t i = 0; i < extensions.size(); ++i)
    reply += (i + 1 == extensions.size() ? "250 " : "250-") + extensions[i] + "\r\n";
  return reply;
}

// The dialogue up to the first MAIL: greeting, EHLO and its reply.
inline void greet(PeerConnection& peer, const std::vector<std::string>& extensions) {
  peer.say("220 mx.example.org ESMTP\r\n");
  peer.expect("EHLO client.example.test\r\n");
  peer.say(ehlo_reply(extensions));
}

inline void quit(PeerConnection& peer) {
  peer.expect("QUIT\r\n");
  peer.say("221 2.0.0 Bye\r\n");
  peer.expect_closed();
}

}  // namespace maild::testing
