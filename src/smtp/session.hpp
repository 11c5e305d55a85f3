// The SMTP server session (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
// ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN, SMTPUTF8, CHUNKING, DSN):
// one coroutine per connection that reads like the dialogue.
// Talks to: one untrusted client; the store (recipients, logins, delivery)
// through the worker pool and the group-commit writer; the extensions
// registered with it (extension.hpp: checks at each stage, extension verbs
// such as SOURCE and GET). Nothing is acknowledged with 250 before the
// store's commit returned.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "net/session.hpp"
#include "net/session_env.hpp"
#include "smtp/extension.hpp"

namespace maild::smtp {

// Serves one admitted connection until QUIT, an error limit, a timeout or shutdown.
template <class Socket>
boost::asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                                   const SessionExtensions& extensions,
                                   std::shared_ptr<net::SessionControl> control);

// The reply for a connection refused by admission control.
std::string busy_reply(const config::Settings& settings);

}  // namespace maild::smtp
