// The SMTP server session: one coroutine per connection that reads like the
// RFC 5321 dialogue. Talks to: one untrusted client over Stream (TCP or TLS).
// Every read and write has a deadline; every line is bounded.
#pragma once

#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "net/session.hpp"
#include "net/session_env.hpp"

namespace maild::smtp {

// Serves one admitted connection until QUIT, an error limit, a timeout or shutdown.
template <class Stream>
boost::asio::awaitable<void> serve(Stream& stream, boost::asio::ip::tcp::socket& socket,
                                   const net::SessionEnv& env,
                                   const net::RegisteredSession& registration);

// The reply for a connection refused by admission control.
std::string busy_reply(const config::Settings& settings);

}  // namespace maild::smtp
