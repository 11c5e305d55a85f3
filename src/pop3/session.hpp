// The POP3 server session: one coroutine per connection (RFC 1939).
// Talks to: one untrusted client. Every read and write has a deadline; every
// line is bounded.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "net/session.hpp"
#include "net/session_env.hpp"

namespace maild::pop3 {

// RFC 2449 section 4: a command line is at most 255 octets including CRLF.
inline constexpr std::size_t command_line_max = 255;
// Bad commands before the session is closed (RFC 1939 leaves this to the server).
inline constexpr unsigned max_bad_commands = 10;

template <class Socket>
boost::asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                                   std::shared_ptr<net::SessionControl> control);

// The reply for a connection refused by admission control (RFC 3206 SYS/TEMP).
std::string busy_reply();

}  // namespace maild::pop3
