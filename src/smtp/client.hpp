// The SMTP client of outbound delivery: one coroutine per connection that
// reads like the dialogue: the greeting, EHLO (HELO after a 5xx), STARTTLS
// and EHLO again, AUTH PLAIN towards a smarthost, then for each message MAIL,
// RCPT..., DATA (in one write when PIPELINING is offered, RFC 2920), the
// content dot-stuffed, and QUIT at the end. Towards a peer that offers SOURCE
// (docs/source-get.md) a token replaces DATA and the content, in a write of its own.
// Talks to: one remote SMTP server, untrusted: every reply goes through the
// pure reply parser, bounded in size (smtp/limits.hpp) and time
// (ClientTimeouts). The server's certificate is not verified; credentials go
// only over TLS and never into the log.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/core/units.hpp"
#include "net/connection.hpp"
#include "net/session.hpp"
#include "net/session_log.hpp"
#include "smtp/data_reader.hpp"
#include "smtp/outbound.hpp"
#include "smtp/reply_parser.hpp"
#include "smtp/source_offers.hpp"

namespace maild::smtp {

// Every wait of the client, declared once: RFC 5321 4.5.3.2's minimums where
// it sets them. Tests shorten them; nothing else should.
struct ClientTimeouts {
  Seconds connect = std::chrono::seconds(30);  // the TCP handshake (the RFC sets none)
  Seconds greeting = std::chrono::minutes(5);  // 4.5.3.2.1: the 220
  Seconds hello =
      std::chrono::minutes(5);             // EHLO/HELO; also STARTTLS (with its handshake) and AUTH
  Seconds mail = std::chrono::minutes(5);  // 4.5.3.2.2
  Seconds rcpt = std::chrono::minutes(5);  // 4.5.3.2.3
  Seconds data = std::chrono::minutes(2);  // 4.5.3.2.4: the 354
  Seconds data_block = std::chrono::minutes(3);    // 4.5.3.2.5: writing each block of content
  Seconds end_of_data = std::chrono::minutes(10);  // 4.5.3.2.6: the reply to the final dot
  Seconds rset =
      std::chrono::seconds(20);  // RSET and QUIT (the RFC sets none; nothing is at stake)
  Seconds source = std::chrono::minutes(10);  // SOURCE's reply: as end_of_data, which it replaces
  // The whole content of one GET (SOURCE-GET.md 6), however slowly it comes;
  // each block of it also within data_block.
  Seconds fetch = std::chrono::minutes(30);
};

// A smarthost login ([delivery] route_auth_file). The password is a secret.
struct Credentials {
  std::string user;
  std::string password;
};

struct ClientOptions {
  std::string helo_name;    // [server] hostname
  std::string server_name;  // the host as routed: SNI (unless an IP address) and messages
  std::string remote_host;  // "mx.example.org[127.0.0.2]": outcomes and the log
  config::TlsPolicy tls = config::TlsPolicy::may;  // encrypt: no STARTTLS, no mail
  bool try_starttls = true;  // false: the plain-text retry after a failed handshake (may only)
  boost::asio::ssl::context* tls_context = nullptr;  // null: never STARTTLS
  const Credentials* credentials = nullptr;          // AUTH PLAIN, only under TLS
  // Pickups for SOURCE ([reverse] use_source); null: always DATA.
  SourceOffers* pickups = nullptr;
  ClientTimeouts timeouts;
};

// Why a session is of no (further) use. The reply is always 4xx.
struct SessionTrouble {
  std::string reply;        // the server's 4xx ("421 4.3.2 ..."), or our own ("451 4.4.2 ...")
  std::string remote_host;  // the server's name once it answered anything; "" before
  bool tls_failed = false;  // the TLS handshake failed: with `may`, plain text may work
};

// What one GET brought (SOURCE-GET.md 3, 4).
struct Fetched {
  enum class Kind {
    content,    // the message, unstuffed, after the final 250
    permanent,  // a 5xx instead of 354, a refused final reply, or content we refuse
    temporary,  // a 4xx reply, or the session broke (then trouble() says why, too)
  };
  Kind kind = Kind::temporary;
  std::string content;  // Kind::content: CRLF lines, as the origin stored it
  std::string reply;    // otherwise: the server's reply ("550 5.1.0 ...") or our own reason
};

// One message's progress, across sessions: an outcome per recipient, in order.
// A session decides (settles) what it can; what stays unsettled carries the
// session's trouble and may go to the next server.
struct Transfer {
  explicit Transfer(const OutboundMessage& message);
  bool done() const;

  std::vector<RecipientOutcome> outcomes;
  std::vector<bool> settled;
};

class ClientSession {
 public:
  using Socket = boost::asio::ip::tcp::socket;

  // `socket` is connected; `control` lets the courier stop the session.
  ClientSession(Socket& socket, const ClientOptions& options,
                std::shared_ptr<net::SessionControl> control, net::SessionLog log);

  // The greeting, EHLO/HELO, STARTTLS, AUTH. False: trouble() says why.
  boost::asio::awaitable<bool> open();
  // One message to the transfer's unsettled recipients. Nothing is sent when
  // the peer cannot take it (SIZE, SMTPUTF8): those recipients fail at once.
  boost::asio::awaitable<void> send(const OutboundMessage& message, Transfer& transfer);
  // GET `token` (the SOURCE keyword was offered): the 354, the dot-stuffed
  // content read with DATA's framing and checks under `limits`, the final
  // 250. Content over the size limit aborts the session (unusable after it);
  // other refused content is read to its end and the session goes on.
  boost::asio::awaitable<Fetched> fetch(const std::string& token, const DataLimits& limits);
  // QUIT, unless the connection broke or the server closes it (421).
  boost::asio::awaitable<void> quit();

  bool usable() const { return !trouble_.has_value(); }
  const SessionTrouble& trouble() const { return *trouble_; }
  const Extensions& extensions() const { return extensions_; }
  bool tls_active() const { return conn_.tls_active(); }

 private:
  boost::asio::awaitable<bool> hello();
  boost::asio::awaitable<bool> start_tls();
  boost::asio::awaitable<bool> authenticate();
  enum class SourceStep {
    settled,     // the recipients have their outcomes (or the session its trouble)
    refused,     // 5xx: RSET and send the message with DATA
    unrecorded,  // no pickup could be recorded: DATA in the same transaction
  };
  boost::asio::awaitable<bool> transact(const OutboundMessage& message, Transfer& transfer,
                                        const std::vector<std::size_t>& sendable, bool by_source);
  boost::asio::awaitable<SourceStep> offer_source(const OutboundMessage& message,
                                                  Transfer& transfer,
                                                  const std::vector<std::size_t>& accepted);
  void note_relayed(const OutboundMessage& message, Transfer& transfer, std::size_t index) const;
  boost::asio::awaitable<void> reset();
  boost::asio::awaitable<bool> send_content(const std::string& text, bool& final_dot_sent);
  boost::asio::awaitable<bool> read_fetched(DataReader& reader, std::string_view shown);
  boost::asio::awaitable<std::optional<ServerReply>> read_reply(Seconds timeout,
                                                                std::string_view waiting_for);

  void command(const std::string& line);
  void fail(std::string reply);
  void fail_with(const ServerReply& reply, std::string_view in_reply_to);
  void decline(std::string reply);
  std::string mail_command(const OutboundMessage& message) const;
  std::string rcpt_command(const store::QueueRecipient& recipient) const;
  void settle(Transfer& transfer, std::size_t index, RecipientOutcome::Kind kind,
              std::string reply) const;
  void settle_by(Transfer& transfer, std::size_t index, const ServerReply& reply) const;
  void leave_unsettled(Transfer& transfer) const;
  const net::SessionLog& log() const { return conn_.log(); }

  ClientOptions options_;
  net::Connection<Socket> conn_;
  Extensions extensions_;
  bool esmtp_ = false;
  bool answered_ = false;  // the server sent something: its name goes into outcomes
  bool may_quit_ = false;  // unusable, but the connection is fine for QUIT
  std::optional<SessionTrouble> trouble_;
  std::string secret_;  // the token while a reply to SOURCE or GET is read: shortened in the log
};

// "552 5.3.4 ..." -> "452 4.3.4 ...": a server's refusal kept as a deferral
// (for trouble before any message, which never bounces mail).
std::string as_temporary(const ServerReply& reply);

}  // namespace maild::smtp
