// The listeners: accepts connections on every configured endpoint, applies
// admission control, and runs one session coroutine per connection on its own strand.
// Talks to: the network (untrusted clients) through the protocol sessions.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <list>
#include <string>
#include <vector>

#include "maild/config/settings.hpp"
#include "net/admission.hpp"
#include "net/session.hpp"
#include "net/session_env.hpp"
#include "net/tls.hpp"
#include "smtp/extension.hpp"

namespace maild::daemon {

class Server {
 public:
  Server(boost::asio::io_context& io, const config::Settings& settings, net::TlsContext& tls);

  // Opens every configured listener (before privileges are dropped).
  // Throws std::runtime_error naming the setting and endpoint that failed.
  void bind();
  // Starts the accept loops; sessions get `parts` (which must outlive them).
  // `smtp_extensions`: what plugs into every SMTP session (SOURCE/GET, checks); outlives the
  // server.
  void start(const net::ServerParts& parts, const smtp::SessionExtensions& smtp_extensions);
  // Shutdown phase one: no new connections.
  void stop_accepting();

  net::SessionRegistry& sessions() { return registry_; }
  std::size_t active_connections() const { return admission_.active(); }

 private:
  struct Listener {
    net::Service service;
    Endpoint endpoint;
    boost::asio::ip::tcp::acceptor acceptor;
  };

  boost::asio::awaitable<void> accept_loop(Listener& listener);
  void admit(net::Service service, boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket,
                                           net::Service service, net::Admission::Ticket ticket,
                                           IpAddress remote, std::string remote_address,
                                           std::uint16_t remote_port);
  boost::asio::awaitable<void> refuse(boost::asio::ip::tcp::socket socket, net::Service service,
                                      std::string remote_text);

  boost::asio::io_context& io_;
  const config::Settings& settings_;
  net::TlsContext& tls_;
  const net::ServerParts* parts_ = nullptr;
  const smtp::SessionExtensions* smtp_extensions_ = nullptr;
  net::Admission admission_;
  net::SessionRegistry registry_;
  std::list<Listener> listeners_;  // stable addresses for the accept loops
};

}  // namespace maild::daemon
