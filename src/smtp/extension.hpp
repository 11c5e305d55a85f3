// The seam between the SMTP session and what plugs into it (STYLE.md 2, 3):
// checks at every stage of the dialogue (connect, HELO/EHLO, MAIL, each RCPT,
// the end of the content, and the end of content fetched later by GET) and
// extension verbs with their own handlers, so
// that SOURCE/GET, policy checks and filters live in their own modules and
// the session's dialogue stays the same. The session does the cross-cutting
// checks of an extension verb (its VerbFlags) once, in its dispatch, and
// counts errors once, at its reply choke point.
// Talks to: whatever registers here (modules above smtp/ in the layering);
// the session trusts them as its own code. What they see of the client is
// untrusted and already parsed.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "maild/core/units.hpp"
#include "net/session_env.hpp"
#include "net/session_log.hpp"
#include "net/store_calls.hpp"
#include "smtp/command.hpp"
#include "smtp/status.hpp"
#include "smtp/transaction.hpp"
#include "smtp/transcript.hpp"

namespace maild::smtp {

enum class Flow { proceed, close };

// What dispatch checks before a verb's handler runs, each once.
struct VerbFlags {
  bool before_starttls = false;      // allowed where TLS is required but not started yet
  bool mx_only = false;              // only on the MX listener ([smtp] listen): 502 elsewhere
  bool needs_hello = false;          // HELO or EHLO first
  bool needs_ehlo = false;           // EHLO first
  bool needs_transaction = false;    // MAIL first
  bool outside_transaction = false;  // never during a mail transaction
  bool ends_group = false;           // must be the last command of a pipelined group (RFC 2920)
  bool counts_errors = true;         // its 5xx replies count toward [smtp] max_errors
};

// What a session shows of itself to checks and extension verbs.
class SessionView {
 public:
  virtual const net::SessionEnv& env() const = 0;
  virtual const net::SessionLog& log() const = 0;
  virtual const std::string& hostname() const = 0;
  // The HELO/EHLO domain; null before one was accepted.
  virtual const std::string* helo() const = 0;
  virtual bool esmtp() const = 0;
  virtual bool tls_active() const = 0;
  // The AUTH identity; null when not authenticated.
  virtual const std::string* authenticated() const = 0;
  // Our own client (authenticated or in [smtp] relay_networks).
  virtual bool relay_allowed() const = 0;
  virtual const Transcript& transcript() const = 0;

 protected:
  ~SessionView() = default;
};

// What an extension verb's handler may do: the session's reply choke point,
// its output, and its mail transaction.
class VerbContext : public SessionView {
 public:
  // Queues a reply. `secret`: a token inside the text, shortened in the log
  // and the transcript. 5xx replies count toward max_errors unless the verb
  // says otherwise.
  virtual void reply(Status status, const std::string& text, std::string_view secret = {}) = 0;
  // Queues raw bytes (content already framed) after the replies queued so far.
  virtual void queue(std::string_view bytes) = 0;
  // Sends everything queued under `timeout`; false when the connection failed.
  virtual boost::asio::awaitable<bool> flush(Seconds timeout) = 0;
  // The open transaction, or null.
  virtual Transaction* transaction() = 0;
  // Ends the open transaction (as the end of DATA does) and hands it over.
  virtual Transaction end_transaction() = 0;
  // Return-Path and Received, as a message accepted in `transaction` carries them.
  virtual std::string trace(const Transaction& transaction) = 0;

 protected:
  ~VerbContext() = default;
};

// A check's answer at one stage.
struct Verdict {
  enum class Action {
    proceed,  // go on (adding `headers`, if any, to the message)
    refuse,   // answer `status`/`text` (5xx) instead of going on
    defer,    // answer `status`/`text` (4xx) instead of going on
  };
  Action action = Action::proceed;
  Status status{};
  std::string text;
  std::string headers;  // header fields, CRLF lines

  static Verdict proceed_with(std::string headers) {
    return Verdict{Action::proceed, {}, {}, std::move(headers)};
  }
  static Verdict refuse(Status status, std::string text) {
    return Verdict{Action::refuse, status, std::move(text), {}};
  }
  static Verdict defer(Status status, std::string text) {
    return Verdict{Action::defer, status, std::move(text), {}};
  }
  bool proceeds() const { return action == Action::proceed; }
};

// A recipient as RCPT found it, before the session accepts it.
struct RecipientFacts {
  const Rcpt& rcpt;
  const std::string& address;  // what was looked up (postmaster@ our host for <postmaster>)
  const store::Resolution& resolution;
};

// One extension's part in one session: its checks and its verbs. Every
// default lets the dialogue go on. A check that cannot decide answers
// defer with status::check_failed, never proceed.
class ExtensionSession {
 public:
  virtual ~ExtensionSession() = default;
  virtual boost::asio::awaitable<Verdict> on_connect(SessionView&);
  virtual boost::asio::awaitable<Verdict> on_hello(SessionView&, const Hello&);
  // At each MAIL, after its own checks: a new transaction begins.
  virtual boost::asio::awaitable<Verdict> on_mail(SessionView&, const Mail&);
  virtual boost::asio::awaitable<Verdict> on_rcpt(SessionView&, const Transaction&,
                                                  const RecipientFacts&);
  // The content of DATA or BDAT LAST, complete and within every limit.
  virtual boost::asio::awaitable<Verdict> on_content(SessionView&, const Transaction&,
                                                     const std::string& content);
  // One of the verbs the extension declared; runs after dispatch's checks.
  virtual boost::asio::awaitable<Flow> handle(VerbContext&, Command&);
};

// A message fetched by GET for a SOURCE accepted earlier (SOURCE-GET.md 4):
// the end of its content, reached without an SMTP session, by the retrieval
// worker, before anything is stored.
struct FetchedMessage {
  const std::string& reverse_path;
  const std::vector<std::string>& recipients;  // the addresses SOURCE named
  const std::string& client_address;           // who sent SOURCE
  const std::string& helo;                     // what it said in HELO/EHLO
  const std::string& content;
};

struct ExtensionVerb {
  Verb verb;
  std::string_view name;  // as HELP lists it
  VerbFlags flags;
};

// An extension: made once per maild, it opens one ExtensionSession per SMTP session.
class Extension {
 public:
  virtual ~Extension() = default;
  virtual std::vector<ExtensionVerb> verbs() const { return {}; }
  // EHLO keywords it adds in this session.
  virtual void keywords(const SessionView&, std::vector<std::string>&) const {}
  virtual std::unique_ptr<ExtensionSession> open(const SessionView&) const = 0;
  // The end-of-content check for content fetched by GET. Refused: the
  // retrieval fails for good; deferred: it is fetched again later.
  virtual boost::asio::awaitable<Verdict> on_fetched(const FetchedMessage&) const;
};

// Every extension of one maild, in the order their checks run.
using SessionExtensions = std::vector<const Extension*>;

// Runs `call` (a blocking store call) on the store's worker pool; a store
// failure is logged with `what` and answered with `on_failure` and `text`
// (a temporary reply), and gives nothing (net::try_blocking). The one place
// that maps a store error to a reply for verbs. (string_view, not string:
// GCC 12 destroys temporaries in a co_await expression twice, PR 99576.)
template <class Call>
boost::asio::awaitable<net::StoreOutcome<std::invoke_result_t<Call&>>> store_call(
    VerbContext& context, const Call& call, std::string_view what, Status on_failure,
    std::string_view text) {
  auto outcome =
      co_await net::try_blocking(context.env().parts.store_pool, call, context.log(), what);
  if (!outcome) context.reply(on_failure, std::string(text));
  co_return outcome;
}

// The same for checks, which answer a failure with a deferral of their own.
template <class Call>
boost::asio::awaitable<net::StoreOutcome<std::invoke_result_t<Call&>>> store_call(
    const SessionView& view, const Call& call, std::string_view what) {
  auto outcome = co_await net::try_blocking(view.env().parts.store_pool, call, view.log(), what);
  co_return outcome;
}

}  // namespace maild::smtp
