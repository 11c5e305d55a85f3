// SMTP server session; see session.hpp. Foundation scope: greeting, NOOP, QUIT,
// 502 for every other verb, the error limit, timeouts and shutdown.
#include "smtp/session.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include <boost/asio/ssl/stream.hpp>

#include "smtp/limits.hpp"
#include "smtp/reply.hpp"

namespace maild::smtp {
namespace asio = boost::asio;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
  });
}

template <class Stream>
class Session {
 public:
  Session(Stream& stream, asio::ip::tcp::socket& socket, const net::SessionEnv& env,
          const net::RegisteredSession& registration)
      : env_(env), settings_(env.settings), io_(stream, socket, net::SessionLog(env.id),
                                                 command_line_max, registration) {}

  asio::awaitable<void> run() {
    io_.log().info("connect from {}", env_.remote_text);
    const bool greeted = co_await reply(220, "", hostname() + " ESMTP maild");
    if (!greeted) co_return;
    for (;;) {
      auto input = co_await io_.read_line(settings_.smtp.command_timeout);
      switch (input.status) {
        case net::ReadStatus::closed:
          io_.log().info("disconnect from {}", env_.remote_text);
          co_return;
        case net::ReadStatus::timed_out:
          io_.log().info("timeout waiting for a command");
          co_await reply(421, "4.4.2", hostname() + " timeout exceeded, closing connection");
          co_return;
        case net::ReadStatus::stopping:
          co_await say_shutting_down();
          co_return;
        case net::ReadStatus::too_long:
          if (const auto flow = co_await error_reply(500, "5.5.2", "line too long");
              flow == Flow::close)
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
  // The verb table: each verb is one small awaitable function.
  static constexpr std::array<Verb, 2> verbs{{
      {"NOOP", &Session::noop},
      {"QUIT", &Session::quit},
  }};

  asio::awaitable<Flow> dispatch(std::string_view line) {
    const auto space = line.find(' ');
    const auto name = line.substr(0, space);
    const auto args = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    const auto verb = std::find_if(verbs.begin(), verbs.end(),
                                   [&](const Verb& v) { return iequals(v.name, name); });
    if (verb == verbs.end()) {
      const auto flow = co_await error_reply(502, "5.5.1", "command not implemented");
      co_return flow;
    }
    const auto flow = co_await (this->*(verb->handler))(args);
    co_return flow;
  }

  asio::awaitable<Flow> noop(std::string_view) {
    const bool sent = co_await reply(250, "2.0.0", "OK");
    co_return sent ? Flow::proceed : Flow::close;
  }

  asio::awaitable<Flow> quit(std::string_view) {
    co_await reply(221, "2.0.0", hostname() + " closing connection");
    io_.log().info("quit");
    co_return Flow::close;
  }

  // A reply that counts toward max_errors; at the limit it is followed by 421 and a close.
  asio::awaitable<Flow> error_reply(int code, std::string_view enhanced, std::string text) {
    const bool sent = co_await reply(code, enhanced, std::move(text));
    if (!sent) co_return Flow::close;
    if (++errors_ < settings_.smtp.max_errors) co_return Flow::proceed;
    io_.log().info("too many errors ({}), closing", errors_);
    co_await reply(421, "4.7.0", hostname() + " too many errors, closing connection");
    co_return Flow::close;
  }

  asio::awaitable<void> say_shutting_down() {
    io_.log().info("closing for shutdown");
    co_await reply(421, "4.3.2", hostname() + " service shutting down, try again later");
  }

  // The one reply choke point.
  asio::awaitable<bool> reply(int code, std::string_view enhanced, std::string text) {
    const auto wire = format_reply(code, enhanced, text);
    io_.log().debug("> {}", std::string_view(wire).substr(0, wire.size() - 2));
    const bool sent = co_await io_.write(wire, settings_.smtp.command_timeout);
    co_return sent;
  }

  const std::string& hostname() const { return settings_.server.hostname; }

  const net::SessionEnv& env_;
  const config::Settings& settings_;
  net::SessionIo<Stream> io_;
  unsigned errors_ = 0;
};

}  // namespace

template <class Stream>
asio::awaitable<void> serve(Stream& stream, asio::ip::tcp::socket& socket,
                            const net::SessionEnv& env,
                            const net::RegisteredSession& registration) {
  Session<Stream> session(stream, socket, env, registration);
  co_await session.run();
}

std::string busy_reply(const config::Settings& settings) {
  return format_reply(421, "4.3.2", settings.server.hostname + " too many connections, try again later");
}

template asio::awaitable<void> serve(asio::ip::tcp::socket&, asio::ip::tcp::socket&,
                                     const net::SessionEnv&, const net::RegisteredSession&);
template asio::awaitable<void> serve(asio::ssl::stream<asio::ip::tcp::socket>&,
                                     asio::ip::tcp::socket&, const net::SessionEnv&,
                                     const net::RegisteredSession&);

}  // namespace maild::smtp
