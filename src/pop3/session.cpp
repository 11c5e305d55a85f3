// POP3 server session; see session.hpp. Foundation scope: greeting, CAPA, QUIT,
// -ERR for the rest, the idle timeout and shutdown; the maildrop comes with the POP3 issue.
#include "pop3/session.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "net/connection.hpp"
#include "net/tls.hpp"

namespace maild::pop3 {
namespace asio = boost::asio;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
  });
}

template <class Socket>
class Session {
 public:
  Session(Socket& socket, const net::SessionEnv& env, std::shared_ptr<net::SessionControl> control)
      : env_(env), settings_(env.parts.settings),
        io_(socket, std::move(control), net::SessionLog(env.id), command_line_max) {}

  asio::awaitable<void> run() {
    io_.log().info("pop3 connect from {}", env_.remote_text);
    if (net::implicit_tls(env_.service)) {
      const auto context = env_.parts.tls.current();
      if (!context) co_return;
      const bool secured = co_await io_.start_tls(*context, settings_.pop3.idle_timeout);
      if (!secured) co_return;
    }
    const bool greeted = co_await send("+OK maild POP3 server ready\r\n");
    if (!greeted) co_return;
    for (;;) {
      auto input = co_await io_.read_line(settings_.pop3.idle_timeout);
      switch (input.status) {
        case net::ReadStatus::closed:
          io_.log().info("disconnect from {}", env_.remote_text);
          co_return;
        case net::ReadStatus::timed_out:
          // RFC 1939 section 3: the autologout timer closes without a response.
          io_.log().info("idle timeout, closing");
          co_return;
        case net::ReadStatus::stopping:
          co_await say_shutting_down();
          co_return;
        case net::ReadStatus::too_long:
          if (const auto flow = co_await bad_command("-ERR line too long\r\n"); flow == Flow::close)
            co_return;
          continue;
        case net::ReadStatus::line:
          break;
      }
      if (io_.stopping()) {
        co_await say_shutting_down();
        co_return;
      }
      const auto flow = co_await dispatch(input.text);
      if (flow == Flow::close) co_return;
    }
  }

 private:
  enum class Flow { proceed, close };
  using Handler = asio::awaitable<Flow> (Session::*)(std::string_view args);
  struct Verb {
    std::string_view name;
    Handler handler;
  };
  static constexpr std::array<Verb, 2> verbs{{
      {"CAPA", &Session::capa},
      {"QUIT", &Session::quit},
  }};

  asio::awaitable<Flow> dispatch(std::string_view line) {
    const auto name = line.substr(0, line.find(' '));
    const auto verb = std::find_if(verbs.begin(), verbs.end(),
                                   [&](const Verb& v) { return iequals(v.name, name); });
    if (verb == verbs.end()) {
      const auto flow = co_await bad_command("-ERR command not available\r\n");
      co_return flow;
    }
    const auto args = name.size() < line.size() ? line.substr(name.size() + 1) : std::string_view{};
    const auto flow = co_await (this->*(verb->handler))(args);
    co_return flow;
  }

  asio::awaitable<Flow> capa(std::string_view) {
    const bool sent =
        co_await send("+OK capability list follows\r\nRESP-CODES\r\nIMPLEMENTATION maild\r\n.\r\n");
    co_return sent ? Flow::proceed : Flow::close;
  }

  asio::awaitable<Flow> quit(std::string_view) {
    co_await send("+OK maild POP3 server signing off\r\n");
    io_.log().info("quit");
    co_return Flow::close;
  }

  asio::awaitable<Flow> bad_command(std::string_view reply) {
    const bool sent = co_await send(reply);
    if (!sent) co_return Flow::close;
    if (++bad_commands_ < max_bad_commands) co_return Flow::proceed;
    io_.log().info("too many bad commands, closing");
    co_await send("-ERR too many bad commands, closing\r\n");
    co_return Flow::close;
  }

  asio::awaitable<void> say_shutting_down() {
    io_.log().info("closing for shutdown");
    co_await send("-ERR [SYS/TEMP] server shutting down, try again later\r\n");
  }

  asio::awaitable<bool> send(std::string_view text) {
    const bool sent = co_await io_.send(text, settings_.pop3.idle_timeout);
    co_return sent;
  }

  const net::SessionEnv& env_;
  const config::Settings& settings_;
  net::Connection<Socket> io_;
  unsigned bad_commands_ = 0;
};

}  // namespace

template <class Socket>
asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                            std::shared_ptr<net::SessionControl> control) {
  Session<Socket> session(socket, env, std::move(control));
  co_await session.run();
}

std::string busy_reply() { return "-ERR [SYS/TEMP] too many connections, try again later\r\n"; }

template asio::awaitable<void> serve(asio::ip::tcp::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(asio::local::stream_protocol::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);

}  // namespace maild::pop3
