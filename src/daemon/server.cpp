// Listeners and session start-up; see server.hpp.
#include "daemon/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <stdexcept>

#include "maild/config/limits.hpp"
#include "maild/core/ids.hpp"
#include "net/watchdog.hpp"
#include "pop3/session.hpp"
#include "smtp/session.hpp"

namespace maild::daemon {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

bool is_pop3(net::Service s) { return s == net::Service::pop3 || s == net::Service::pop3s; }
using net::implicit_tls;
const char* service_name(net::Service s) {
  switch (s) {
    case net::Service::smtp:
      return "smtp.listen";
    case net::Service::submission:
      return "smtp.submission";
    case net::Service::submissions:
      return "smtp.submissions";
    case net::Service::pop3:
      return "pop3.listen";
    case net::Service::pop3s:
      return "pop3.pop3s";
  }
  return "?";
}

IpAddress to_ip(const asio::ip::address& address) {
  IpAddress ip;
  const auto v6 = address.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4())
                                  : address.to_v6();
  ip.bytes = v6.to_bytes();
  return ip;
}

// Logs what escaped a session coroutine instead of losing it.
auto log_failure(std::string what) {
  return [what = std::move(what)](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", what, e.what());
    }
  };
}

}  // namespace

Server::Server(asio::io_context& io, const config::Settings& settings, net::TlsContext& tls)
    : io_(io),
      settings_(settings),
      tls_(tls),
      admission_(settings.server.max_connections, settings.server.max_connections_per_ip) {}

void Server::bind() {
  const std::pair<net::Service, const std::vector<Endpoint>*> wanted[] = {
      {net::Service::smtp, &settings_.smtp.listen},
      {net::Service::submission, &settings_.smtp.submission},
      {net::Service::submissions, &settings_.smtp.submissions},
      {net::Service::pop3, &settings_.pop3.listen},
      {net::Service::pop3s, &settings_.pop3.pop3s},
  };
  for (const auto& [service, endpoints] : wanted) {
    const bool needs_tls = implicit_tls(service) || service == net::Service::submission;
    if (needs_tls && !tls_.enabled() && !endpoints->empty()) {
      spdlog::warn("{} is not opened: it needs tls.cert and tls.key", service_name(service));
      continue;
    }
    for (const auto& endpoint : *endpoints) {
      const auto fail = [&](const std::string& why) {
        throw std::runtime_error(std::string(service_name(service)) + " " + endpoint.to_string() +
                                 ": " + why);
      };
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(endpoint.host, ec);
      if (ec) fail("not an IP address");
      tcp::acceptor acceptor(asio::make_strand(io_));  // its loop and close() share the strand
      const tcp::endpoint where(address, endpoint.port);
      acceptor.open(where.protocol(), ec);
      if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor.bind(where, ec);
      if (!ec) acceptor.listen(static_cast<int>(settings_.server.listen_backlog), ec);
      if (ec) fail(ec.message());
      spdlog::info("listening on {} for {}", endpoint.to_string(), service_name(service));
      listeners_.push_back(Listener{service, endpoint, std::move(acceptor)});
    }
  }
}

void Server::start(const net::ServerParts& parts, const smtp::SessionExtensions& smtp_extensions) {
  parts_ = &parts;
  smtp_extensions_ = &smtp_extensions;
  for (auto& listener : listeners_)
    asio::co_spawn(listener.acceptor.get_executor(), accept_loop(listener),
                   log_failure("accept loop"));
}

void Server::stop_accepting() {
  for (auto& listener : listeners_) {
    // On the acceptor's strand: an acceptor is not thread-safe.
    asio::post(listener.acceptor.get_executor(), [&listener] {
      boost::system::error_code ignored;
      listener.acceptor.close(ignored);
    });
  }
}

asio::awaitable<void> Server::accept_loop(Listener& listener) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await listener.acceptor.async_accept(
        asio::make_strand(io_), asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      admit(listener.service, std::move(socket));
      continue;
    }
    if (ec == asio::error::operation_aborted || !listener.acceptor.is_open()) co_return;
    spdlog::warn("accept on {}: {}", listener.endpoint.to_string(), ec.message());
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory) {
      asio::steady_timer pause(io_, limits::accept_failure_pause);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

void Server::admit(net::Service service, tcp::socket socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const auto remote = to_ip(peer.address());
  auto executor = socket.get_executor();
  // Replies leave in whole flushes; Nagle would hold a flush's last segment back until the
  // client ACKs the one before, which a client in delayed-ACK waits up to 40 ms to do (RETR).
  socket.set_option(tcp::no_delay(true), ec);
  auto decision = admission_.admit(remote);
  if (!decision.ticket) {
    auto remote_text = peer.address().to_string() + ":" + std::to_string(peer.port());
    spdlog::info("refused {} on {}: {}", remote_text, service_name(service),
                 decision.refusal == net::Admission::Refusal::total
                     ? "max_connections reached"
                     : "max_connections_per_ip reached");
    asio::co_spawn(executor, refuse(std::move(socket), service, std::move(remote_text)),
                   log_failure("refusal"));
    return;
  }
  asio::co_spawn(executor,
                 run_session(std::move(socket), service, std::move(*decision.ticket), remote,
                             peer.address().to_string(), peer.port()),
                 log_failure("session"));
}

asio::awaitable<void> Server::run_session(tcp::socket socket, net::Service service,
                                          net::Admission::Ticket ticket, IpAddress remote,
                                          std::string remote_address, std::uint16_t remote_port) {
  net::Admission::Ticket place(std::move(ticket));  // held for the session's lifetime
  auto control = std::make_shared<net::SessionControl>();
  control->executor = socket.get_executor();
  net::RegisteredSession registration(registry_, control);
  const net::SessionEnv env{*parts_,
                            service,
                            next_session_id(),
                            remote,
                            remote_address + ":" + std::to_string(remote_port),
                            remote_address};
  if (is_pop3(service))
    co_await pop3::serve(socket, env, control);
  else
    co_await smtp::serve(socket, env, *smtp_extensions_, control);
  { auto released = std::move(place); }  // free before the client can see the close
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

asio::awaitable<void> Server::refuse(tcp::socket socket, net::Service service,
                                     std::string remote_text) {
  const auto reply = is_pop3(service) ? pop3::busy_reply() : smtp::busy_reply(settings_);
  net::Watchdog<tcp::socket> watchdog(socket);
  boost::system::error_code ec;
  watchdog.arm(limits::refusal_timeout);
  if (!implicit_tls(service)) {
    co_await asio::async_write(socket, asio::buffer(reply),
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {
    const auto context = tls_.current();
    asio::ssl::stream<tcp::socket&> stream(socket, *context);
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (!ec)
      co_await asio::async_write(stream, asio::buffer(reply),
                                 asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) spdlog::debug("busy reply to {} not delivered: {}", remote_text, ec.message());
  socket.shutdown(tcp::socket::shutdown_both, ec);
}

}  // namespace maild::daemon
