// SMTP server session; see session.hpp. Each verb is checked (state,
// arguments, policy) before it touches the transaction or the store.
#include "smtp/session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "maild/core/password.hpp"
#include "net/auth_throttle.hpp"
#include "net/connection.hpp"
#include "net/credential_cache.hpp"
#include "net/faulty_stream.hpp"
#include "net/store_calls.hpp"
#include "net/tls.hpp"
#include "reverse/get_authorization.hpp"
#include "reverse/policy.hpp"
#include "reverse/token.hpp"
#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"
#include "smtp/dot_stuffer.hpp"
#include "smtp/limits.hpp"
#include "smtp/received.hpp"
#include "smtp/reply.hpp"
#include "smtp/sasl.hpp"

namespace maild::smtp {
namespace asio = boost::asio;

namespace {

// RFC 4954 4: an AUTH response line may be up to 12288 octets.
constexpr std::size_t auth_line_max = 12288;

// A GET answer goes out in pieces of this size, each under the write deadline.
constexpr std::size_t get_chunk = 64 * 1024;
// Each unknown GET token from an address waits this much longer, up to the cap,
// before its 550: probing gets slow long before max_unknown_tokens closes it.
constexpr std::chrono::milliseconds unknown_token_delay{250};
constexpr std::chrono::milliseconds unknown_token_delay_max{2000};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Compared against when a login names no known user, so that an unknown user
// and a wrong password take the same time.
const std::string& decoy_hash() {
  static const std::string hash = password::hash("maild decoy password");
  return hash;
}

// Addresses compare without regard to ASCII case, as the store compares them.
bool same_address(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

store::DsnReturn dsn_return(Mail::Ret ret) {
  switch (ret) {
    case Mail::Ret::full:
      return store::DsnReturn::full;
    case Mail::Ret::hdrs:
      return store::DsnReturn::headers;
    case Mail::Ret::unspecified:
      break;
  }
  return store::DsnReturn::unspecified;
}

// The RCPT NOTIFY bits are stored as they are.
static_assert(notify_never == store::notify_never && notify_success == store::notify_success &&
              notify_failure == store::notify_failure && notify_delay == store::notify_delay);

// What RCPT asks the store in one call: the recipient, and its domain's policy.
struct RecipientLookup {
  store::Resolution resolution;
  store::DomainPolicy policy;  // unset fields: the mail.conf defaults
};

// What EHLO/HELO established.
struct Greeting {
  std::string domain;
  bool esmtp = false;
};

// The mail transaction: from MAIL to the end of DATA, BDAT LAST or SOURCE, or RSET.
struct Transaction {
  Mail mail;
  std::vector<Rcpt> recipients;                    // accepted ones, in order
  std::vector<store::MailboxId> mailboxes;         // their local mailboxes, each once
  std::vector<store::OutboundRecipient> outbound;  // relayed and forwarded, each once
  std::optional<DataReader> chunks;                // BDAT content received so far
  // Accepted recipients that resolved to local mailboxes: what SOURCE may take.
  // A recipient accepted for another server (relay, forward) has no entry.
  std::vector<store::RetrievalRecipient> local;
  // The strictest unverified-mail policy among the recipients' domains.
  config::UnverifiedPolicy unverified = config::UnverifiedPolicy::accept;
};

template <class Socket>
class Session {
 public:
  Session(Socket& socket, const net::SessionEnv& env, std::shared_ptr<net::SessionControl> control)
      : env_(env),
        settings_(env.parts.settings),
        conn_(socket, std::move(control), net::SessionLog(env.id), command_line_max) {}

  asio::awaitable<void> run() {
    log().info("connect from {} on {}", env_.remote_text, service_name());
    if (net::implicit_tls(env_.service)) {
      const bool secured = co_await start_tls();
      if (!secured) co_return;
    } else if (conn_.client_spoke_first()) {
      // A client must wait for the greeting (RFC 5321 3.1); bots that do not are refused.
      log().info("client spoke before the greeting; refused");
      reply(554, "5.5.1", hostname() + " protocol error: you spoke before my greeting");
      co_await conn_.flush(settings_.smtp.command_timeout);
      co_return;
    }
    reply(220, "", hostname() + " ESMTP maild");
    co_await converse();
    co_await conn_.flush(settings_.smtp.command_timeout);
    log().info("disconnect from {}", env_.remote_text);
  }

 private:
  enum class Flow { proceed, close };
  using Handler = asio::awaitable<Flow> (Session::*)(Command&);
  struct VerbEntry {
    Verb verb;
    Handler handler;
    bool before_starttls;  // allowed where TLS is required but not yet started
  };
  // The verb table. Cross-cutting checks happen once, in converse().
  static constexpr std::array<VerbEntry, 16> verbs{{
      {Verb::ehlo, &Session::hello, true},
      {Verb::helo, &Session::hello, true},
      {Verb::mail, &Session::mail, false},
      {Verb::rcpt, &Session::rcpt, false},
      {Verb::data, &Session::data, false},
      {Verb::bdat, &Session::bdat, false},
      {Verb::rset, &Session::rset, true},
      {Verb::noop, &Session::noop, true},
      {Verb::quit, &Session::quit, true},
      {Verb::vrfy, &Session::vrfy, false},
      {Verb::expn, &Session::expn, false},
      {Verb::help, &Session::help, true},
      {Verb::starttls, &Session::starttls, true},
      {Verb::auth, &Session::auth, false},
      {Verb::source, &Session::source, false},
      {Verb::get, &Session::get, false},
  }};

  asio::awaitable<void> converse() {
    for (;;) {
      auto input = co_await conn_.read_line(settings_.smtp.command_timeout);
      switch (input.status) {
        case net::ReadStatus::closed:
          co_return;
        case net::ReadStatus::timed_out:
          log().info("timeout waiting for a command");
          reply(421, "4.4.2", hostname() + " timeout exceeded, closing connection");
          co_return;
        case net::ReadStatus::stopping:
          say_shutting_down();
          co_return;
        case net::ReadStatus::too_long: {
          const auto flow = fail(500, "5.5.2", "line too long");
          if (flow == Flow::close) co_return;
          continue;
        }
        case net::ReadStatus::line:
          break;
      }
      if (conn_.stopping()) {
        say_shutting_down();
        co_return;
      }
      const auto flow = co_await dispatch(input.text);
      if (flow == Flow::close) co_return;
    }
  }

  asio::awaitable<Flow> dispatch(const std::string& line) {
    auto parsed = parse_command(line);
    if (auto* error = std::get_if<Reply>(&parsed)) {
      log().debug("< {}", redact(line));
      co_return fail(error->code, error->enhanced, error->text);
    }
    auto& command = std::get<Command>(parsed);
    log().debug("< {}", redact(line));
    const auto entry = std::find_if(verbs.begin(), verbs.end(),
                                    [&](const VerbEntry& e) { return e.verb == command.verb; });
    if (entry == verbs.end()) co_return fail(500, "5.5.1", "command unrecognized");
    if (tls_required() && !conn_.tls_active() && !entry->before_starttls)
      co_return fail(530, "5.7.0", "must issue a STARTTLS command first");
    const auto flow = co_await (this->*(entry->handler))(command);
    co_return flow;
  }

  // ---- the verbs ----

  asio::awaitable<Flow> hello(Command& command) {
    const auto& domain = std::get<Hello>(command.parsed).domain;
    transaction_.reset();
    greeting_ = Greeting{domain, command.verb == Verb::ehlo};
    if (!greeting_->esmtp) {
      reply(250, "", hostname());
      co_return Flow::proceed;
    }
    std::string text = hostname() + " greets " + domain;
    text += "\nPIPELINING";
    text += "\nSIZE " + std::to_string(settings_.smtp.max_message_size.bytes);
    text += "\n8BITMIME";
    text += "\nENHANCEDSTATUSCODES";
    if (env_.parts.tls.enabled() && !conn_.tls_active()) text += "\nSTARTTLS";
    if (auth_offered()) text += "\nAUTH PLAIN LOGIN";
    text += "\nSMTPUTF8\nCHUNKING\nDSN";
    if (source_offered()) text += "\nSOURCE";
    text += "\nHELP";
    reply(250, "", text);
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> mail(Command& command) {
    if (!greeting_) co_return fail(503, "5.5.1", "send HELO or EHLO first");
    if (transaction_) co_return fail(503, "5.5.1", "nested MAIL command");
    if (submission() && !authenticated_) co_return fail(530, "5.7.0", "authentication required");
    auto& mail = std::get<Mail>(command.parsed);
    const bool extended = mail.size || mail.body != Mail::Body::unspecified || mail.smtputf8 ||
                          mail.ret != Mail::Ret::unspecified || !mail.envid.empty() || mail.auth;
    if (extended && !greeting_->esmtp) co_return fail(555, "5.5.4", "MAIL parameters need EHLO");
    if (mail.size && *mail.size > settings_.smtp.max_message_size.bytes)
      co_return fail(552, "5.3.4", "message size exceeds fixed maximum message size");
    if (mail.reverse_path.has_utf8() && !mail.smtputf8)
      co_return fail(553, "5.6.7", "a non-ASCII address needs the SMTPUTF8 parameter");
    transaction_.emplace();
    transaction_->mail = std::move(mail);
    reply(250, "2.1.0", "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> rcpt(Command& command) {
    if (!transaction_) co_return fail(503, "5.5.1", "need MAIL before RCPT");
    auto& rcpt = std::get<Rcpt>(command.parsed);
    if (transaction_->recipients.size() >= settings_.smtp.max_recipients) {
      reply(452, "4.5.3", "too many recipients");
      co_return Flow::proceed;
    }
    if (rcpt.forward_path.has_utf8() && !transaction_->mail.smtputf8)
      co_return fail(553, "5.6.7", "a non-ASCII address needs the SMTPUTF8 parameter");
    // <postmaster> without a domain (RFC 5321 4.5.1) must always be accepted:
    // postmaster@ this host, else @ its parent domain (mx.example.test -> example.test).
    std::vector<std::string> candidates;
    if (rcpt.forward_path.is_postmaster()) {
      candidates.push_back("postmaster@" + hostname());
      if (const auto dot = hostname().find('.'); dot != std::string::npos)
        candidates.push_back("postmaster@" + hostname().substr(dot + 1));
    } else {
      candidates.push_back(rcpt.forward_path.address());
    }
    const auto& address = candidates.front();
    // Our own clients' mail is not subject to the policy for unverified mail.
    const bool policy_applies = !relay_allowed();
    const auto lookup = [&store = env_.parts.store, candidates, policy_applies] {
      RecipientLookup found;
      for (const auto& candidate : candidates) {
        found.resolution = store.directory().resolve(candidate);
        if (found.resolution.kind != store::Resolution::Kind::mailboxes) continue;
        if (policy_applies)
          found.policy = store.reverse().policy(candidate.substr(candidate.rfind('@') + 1));
        break;
      }
      return found;
    };
    store::Resolution resolution;
    store::DomainPolicy policy;
    try {
      auto found = co_await net::run_blocking(env_.parts.store_pool, lookup);
      resolution = std::move(found.resolution);
      policy = std::move(found.policy);
    } catch (const std::exception& e) {
      log().warn("store error resolving a recipient: {}", e.what());
      reply(451, "4.3.0", "temporary failure looking up the recipient, try again later");
      co_return Flow::proceed;
    }
    if (rcpt.forward_path.is_postmaster() && resolution.kind == store::Resolution::Kind::not_local)
      resolution.kind = store::Resolution::Kind::unknown_local;  // never relayed
    switch (resolution.kind) {
      case store::Resolution::Kind::unknown_local:
        co_return fail(550, "5.1.1", "<" + address + ">: mailbox unavailable");
      case store::Resolution::Kind::not_local:
        if (!relay_allowed())
          co_return fail(554, "5.7.1", "<" + address + ">: relay access denied");
        add_outbound(address, rcpt);
        break;
      case store::Resolution::Kind::mailboxes:
        break;
    }
    auto& mailboxes = transaction_->mailboxes;
    for (const auto id : resolution.mailboxes)
      if (std::find(mailboxes.begin(), mailboxes.end(), id) == mailboxes.end())
        mailboxes.push_back(id);
    // Forwarding aliases queue a copy for their outside targets.
    for (const auto& target : resolution.forwards) add_outbound(target, rcpt);
    // Only a recipient whose every copy stays here can be fetched by SOURCE.
    if (resolution.kind == store::Resolution::Kind::mailboxes && resolution.forwards.empty())
      transaction_->local.push_back({address, resolution.mailboxes});
    transaction_->unverified =
        reverse::stricter(transaction_->unverified, reverse::effective(policy, settings_.reverse));
    transaction_->recipients.push_back(std::move(rcpt));
    reply(250, "2.1.5", "OK");
    co_return Flow::proceed;
  }

  // Queues `address` for delivery elsewhere, with the RCPT's DSN parameters.
  void add_outbound(const std::string& address, const Rcpt& rcpt) {
    auto& outbound = transaction_->outbound;
    const auto same = [&](const store::OutboundRecipient& r) {
      return same_address(r.address, address);
    };
    if (std::any_of(outbound.begin(), outbound.end(), same)) return;
    outbound.push_back({address, rcpt.notify, rcpt.orcpt});
  }

  asio::awaitable<Flow> data(Command&) {
    if (!transaction_) co_return fail(503, "5.5.1", "need MAIL before DATA");
    if (transaction_->chunks) co_return fail(503, "5.5.1", "DATA after BDAT");
    if (transaction_->recipients.empty()) co_return fail(554, "5.5.1", "no valid recipients");
    reply(354, "", "end data with <CR><LF>.<CR><LF>");
    auto reader = DataReader::dot_terminated(data_limits());
    const auto status = co_await read_content(reader);
    if (status != net::ReadStatus::line) co_return content_interrupted(status);
    co_return co_await finish_message(reader);
  }

  asio::awaitable<Flow> bdat(Command& command) {
    const auto chunk = std::get<Bdat>(command.parsed);
    // RFC 3030 2: the chunk is read even when it is refused.
    const char* refusal = !transaction_                      ? "need MAIL before BDAT"
                          : transaction_->recipients.empty() ? "no valid recipients"
                                                             : nullptr;
    if (refusal != nullptr) {
      auto discard =
          DataReader::chunked(DataLimits{ByteSize{0}, text_line_max, BareNewline::normalize});
      discard.begin_chunk(chunk.size, chunk.last);
      const auto status = co_await read_content(discard);
      if (status != net::ReadStatus::line) co_return content_interrupted(status);
      const int code = transaction_ ? 554 : 503;
      if (chunk.last) transaction_.reset();
      co_return fail(code, "5.5.1", refusal);
    }
    if (!transaction_->chunks) transaction_->chunks = DataReader::chunked(data_limits());
    auto& reader = *transaction_->chunks;
    reader.begin_chunk(chunk.size, chunk.last);
    const auto status = co_await read_content(reader);
    if (status != net::ReadStatus::line) co_return content_interrupted(status);
    if (chunk.last) co_return co_await finish_message(reader);
    if (reader.problem() == DataReader::Problem::too_big) {
      transaction_.reset();
      reply(552, "5.3.4", "message size exceeds fixed maximum message size");
      co_return Flow::proceed;
    }
    reply(250, "2.0.0", std::to_string(chunk.size) + " octets received");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> rset(Command&) {
    transaction_.reset();
    reply(250, "2.0.0", "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> noop(Command&) {
    reply(250, "2.0.0", "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> quit(Command&) {
    reply(221, "2.0.0", hostname() + " closing connection");
    co_return Flow::close;
  }

  asio::awaitable<Flow> vrfy(Command&) {
    // Never confirms addresses: VRFY must not enumerate mailboxes.
    reply(252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> expn(Command&) { co_return fail(502, "5.5.1", "EXPN not available"); }

  asio::awaitable<Flow> help(Command&) {
    reply(214, "2.0.0",
          "maild commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH "
          "SOURCE GET");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> starttls(Command&) {
    if (!env_.parts.tls.enabled()) co_return fail(454, "4.7.0", "TLS not available");
    if (conn_.tls_active()) co_return fail(503, "5.5.1", "TLS already active");
    reply(220, "2.0.0", "ready to start TLS");
    const bool secured = co_await start_tls();
    if (!secured) co_return Flow::close;
    // RFC 3207 4.2: everything known before the handshake is forgotten.
    greeting_.reset();
    transaction_.reset();
    authenticated_.reset();
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> auth(Command& command) {
    if (!greeting_ || !greeting_->esmtp) co_return fail(503, "5.5.1", "send EHLO first");
    if (authenticated_) co_return fail(503, "5.5.1", "already authenticated");
    if (transaction_) co_return fail(503, "5.5.1", "AUTH is not allowed during a mail transaction");
    if (!auth_offered())
      co_return fail(538, "5.7.11", "encryption required for requested authentication mechanism");
    auto& throttle = env_.parts.smtp_auth_throttle;
    if (throttle.blocked(env_.remote)) {
      log().info("AUTH refused: too many failures from {}", env_.remote_address);
      reply(421, "4.7.0", hostname() + " too many failed authentications, try again later");
      co_return Flow::close;
    }
    const auto& request = std::get<Auth>(command.parsed);
    std::string user;
    std::string secret;
    conn_.lines().set_max_line(auth_line_max);
    const auto outcome = co_await read_credentials(request, user, secret);
    conn_.lines().set_max_line(command_line_max);
    if (outcome) co_return *outcome;
    const auto check = [&store = env_.parts.store, &credentials = env_.parts.credentials, user,
                        secret] {
      const auto hash = store.directory().password_hash(user);
      if (!hash) {
        // The same full check as for a wrong password, so that timing tells nothing.
        password::verify(secret, decoy_hash());
        return false;
      }
      return credentials.check(user, secret, *hash);
    };
    bool accepted = false;
    try {
      accepted = co_await net::run_blocking(env_.parts.store_pool, check);
    } catch (const std::exception& e) {
      log().warn("store error during AUTH: {}", e.what());
      reply(454, "4.7.0", "temporary authentication failure");
      co_return Flow::proceed;
    }
    if (!accepted) {
      throttle.record_failure(env_.remote);
      log().info("AUTH {} failed", request.mechanism);
      co_return fail(535, "5.7.8", "authentication credentials invalid");
    }
    authenticated_ = user;
    log().info("AUTH {} as {}", request.mechanism, user);
    reply(235, "2.7.0", "authentication successful");
    co_return Flow::proceed;
  }

  // SOURCE-GET.md 2: the envelope is recorded durably, the message is fetched
  // later by GET from the MX of the sender's domain. Ends the transaction like DATA.
  asio::awaitable<Flow> source(Command& command) {
    const auto& token = std::get<Token>(command.parsed).value;
    if (env_.service != net::Service::smtp)
      co_return fail(502, "5.5.1", "SOURCE is only accepted on the MX port");
    if (!transaction_) co_return fail(503, "5.5.1", "need MAIL before SOURCE");
    if (transaction_->chunks) co_return fail(503, "5.5.1", "SOURCE after BDAT");
    if (transaction_->recipients.empty()) co_return fail(503, "5.5.1", "no valid recipients");
    // RFC 2920 3.1 / SOURCE-GET.md 2: the client must see this reply before it goes on.
    if (conn_.lines().has_pending())
      co_return fail(503, "5.5.1", "SOURCE must be the last command of a pipelined group");
    const auto& sender = transaction_->mail.reverse_path;
    if (sender.is_null())
      co_return fail(501, "5.5.4", "a bounce cannot be fetched back: send it with DATA");
    if (!settings_.reverse.accept_source)
      co_return fail(550, "5.7.1", "SOURCE is not accepted here: send the message with DATA");
    if (sender.domain.empty() || sender.domain.front() == '[')
      co_return fail(550, "5.7.1", "SOURCE needs a sender domain with an MX: send it with DATA");
    // D is the MX of the recipients' domains: it fetches for its own mailboxes only.
    if (transaction_->local.size() != transaction_->recipients.size())
      co_return fail(550, "5.7.1", "SOURCE is for local recipients only: send it with DATA");
    if (transaction_->mail.size && *transaction_->mail.size > settings_.smtp.max_message_size.bytes)
      co_return fail(552, "5.3.4", "message size exceeds fixed maximum message size");

    auto transaction = std::move(*transaction_);
    transaction_.reset();
    const auto& from = transaction.mail.reverse_path;
    store::NewRetrieval retrieval;
    retrieval.token = token;
    retrieval.reverse_path = from.address();
    retrieval.recipients = std::move(transaction.local);
    retrieval.declared_size = transaction.mail.size;
    retrieval.client_address = env_.remote_address;
    retrieval.helo = greeting_ ? greeting_->domain : "";
    retrieval.trace = return_path_line(from) + received(transaction);
    const auto add = [&store = env_.parts.store, &retrieval,
                      limit = settings_.reverse.max_pending_per_domain] {
      return store.reverse().add_retrieval(retrieval, limit);
    };
    store::RetrievalAdded added;
    try {
      added = co_await net::run_blocking(env_.parts.store_pool, add);
    } catch (const std::exception& e) {
      log().warn("store error recording SOURCE {}: {}", reverse::shown_token(token), e.what());
      reply(451, "4.3.0", "temporary failure recording the retrieval, try again later");
      co_return Flow::proceed;
    }
    using Outcome = store::RetrievalAdded::Outcome;
    switch (added.outcome) {
      case Outcome::added:
      case Outcome::already_added:
        break;
      case Outcome::token_taken:
        log().info("SOURCE {} from <{}> refused: the token is taken", reverse::shown_token(token),
                   retrieval.reverse_path);
        co_return fail(550, "5.7.1", "token refused: send the message with DATA");
      case Outcome::domain_full:
        log().info("SOURCE {} from <{}> deferred: too many pending retrievals for {}",
                   reverse::shown_token(token), retrieval.reverse_path, from.domain);
        reply(452, "4.3.1", "too many pending retrievals for your domain, try again later");
        co_return Flow::proceed;
    }
    log().info("SOURCE {} from <{}>: {} recipients, retrieval {}{}", reverse::shown_token(token),
               retrieval.reverse_path, retrieval.recipients.size(), added.id,
               added.outcome == Outcome::already_added ? " (again)" : "");
    reply(250, "2.0.0", token + " accepted for retrieval", token);
    if (env_.parts.retrieval_wakeup) env_.parts.retrieval_wakeup();
    co_return Flow::proceed;
  }

  // SOURCE-GET.md 3: sends a message we offered by SOURCE to an MX of one of
  // its recipient domains, framed like DATA in the other direction.
  asio::awaitable<Flow> get(Command& command) {
    const auto& token = std::get<Token>(command.parsed).value;
    if (env_.service != net::Service::smtp)
      co_return fail(502, "5.5.1", "GET is only answered on the MX port");
    if (!greeting_ || !greeting_->esmtp) co_return fail(503, "5.5.1", "send EHLO first");
    if (transaction_) co_return fail(503, "5.5.1", "GET is not allowed during a mail transaction");
    auto& throttle = env_.parts.unknown_token_throttle;
    if (throttle.blocked(env_.remote)) {
      log().info("GET refused: too many unknown tokens from {}", env_.remote_address);
      reply(421, "4.7.0", hostname() + " too many unknown tokens, closing connection");
      co_return Flow::close;
    }
    const auto find = [&store = env_.parts.store, &token] {
      return store.reverse().find_pickup(token);
    };
    std::optional<store::Pickup> pickup;
    try {
      pickup = co_await net::run_blocking(env_.parts.store_pool, find);
    } catch (const std::exception& e) {
      log().warn("store error looking up GET {}: {}", reverse::shown_token(token), e.what());
      reply(450, "4.3.0", "temporarily unavailable, try again later");
      co_return Flow::proceed;
    }
    if (!pickup || !reverse::servable(*pickup, unix_now(), settings_.reverse)) {
      const auto flow = co_await unknown_token(token);
      co_return flow;
    }

    std::vector<std::string> domains;
    for (const auto& recipient : pickup->recipients) domains.push_back(recipient.domain);
    // A fetcher usually sends many GETs for its own domains: one DNS check
    // per domain and session is enough (the client's address cannot change).
    const auto known = std::find_first_of(domains.begin(), domains.end(),
                                          authorised_domains_.begin(), authorised_domains_.end());
    reverse::Authorization authorization{reverse::Authorization::Verdict::granted, "", ""};
    if (known != domains.end()) {
      authorization.detail = "MX of " + *known + ", checked before";
      authorization.domain = *known;
    } else {
      const auto checked = co_await reverse::authorize_get(
          env_.parts.resolver, settings_.reverse.trusted_peers, domains, env_.remote);
      authorization = checked;
      if (!authorization.domain.empty()) authorised_domains_.push_back(authorization.domain);
    }
    switch (authorization.verdict) {
      case reverse::Authorization::Verdict::granted:
        break;
      case reverse::Authorization::Verdict::refused:
        log().info("GET {} from {} refused: {}", reverse::shown_token(token), env_.remote_address,
                   authorization.detail);
        co_return fail(550, "5.7.1", "you are not authorised to fetch this message");
      case reverse::Authorization::Verdict::unknown:
        log().info("GET {} from {} deferred: {}", reverse::shown_token(token), env_.remote_address,
                   authorization.detail);
        reply(450, "4.3.0", "cannot check your authorisation now, try again later");
        co_return Flow::proceed;
    }

    const auto read = [&store = env_.parts.store, id = pickup->id] {
      return store.reverse().pickup_text(id);
    };
    std::optional<store::MessageText> text;
    try {
      text = co_await net::run_blocking(env_.parts.store_pool, read);
    } catch (const std::exception& e) {
      log().warn("store error reading GET {}: {}", reverse::shown_token(token), e.what());
      reply(450, "4.3.0", "temporarily unavailable, try again later");
      co_return Flow::proceed;
    }
    if (!text) {  // purged between the two reads
      const auto flow = co_await unknown_token(token);
      co_return flow;
    }

    reply(354, "2.0.0", token + " message follows", token);
    DotStuffer stuffer;
    const std::array<const std::string*, 2> parts{&text->trace, &text->content};
    for (const std::string* part : parts) {
      for (std::size_t at = 0; at < part->size(); at += get_chunk) {
        conn_.queue(stuffer.stuff(std::string_view(*part).substr(at, get_chunk)));
        const bool sent = co_await conn_.flush(settings_.smtp.data_timeout);
        if (!sent) {
          log().info("GET {}: the connection failed while sending", reverse::shown_token(token));
          co_return Flow::close;
        }
      }
    }
    conn_.queue(stuffer.finish());
    reply(250, "2.0.0", token + " transferred", token);
    const bool sent = co_await conn_.flush(settings_.smtp.data_timeout);
    if (!sent) {
      log().info("GET {}: the connection failed before the final reply",
                 reverse::shown_token(token));
      co_return Flow::close;
    }
    // Only now, after the final 250 went out, is the message the receiver's.
    const auto mark = [&store = env_.parts.store, id = pickup->id] {
      return store.reverse().mark_transferred(id);
    };
    try {
      const bool marked = co_await net::run_blocking(env_.parts.store_pool, mark);
      log().info("GET {} from {} ({}): {} octets transferred{}", reverse::shown_token(token),
                 env_.remote_address, authorization.detail, pickup->size,
                 marked ? "" : " (the pickup had expired meanwhile)");
    } catch (const std::exception& e) {
      log().warn("GET {}: transferred, but the store did not record it: {}",
                 reverse::shown_token(token), e.what());
    }
    co_return Flow::proceed;
  }

  // ---- pieces of the verbs ----

  // The same 550 for unknown, expired and purged tokens, slower with each
  // one from this address; at max_unknown_tokens the connection ends.
  asio::awaitable<Flow> unknown_token(const std::string& token) {
    auto& throttle = env_.parts.unknown_token_throttle;
    throttle.record_failure(env_.remote);
    log().info("GET {} from {}: unknown token", reverse::shown_token(token), env_.remote_address);
    if (throttle.blocked(env_.remote)) {
      reply(550, "5.1.0", "unknown token");
      reply(421, "4.7.0", hostname() + " too many unknown tokens, closing connection");
      co_return Flow::close;
    }
    const auto delay =
        std::min(unknown_token_delay * throttle.failures(env_.remote), unknown_token_delay_max);
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, delay);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    co_return fail(550, "5.1.0", "unknown token");
  }

  // Reads the SASL exchange; returns a Flow when it ended without credentials.
  asio::awaitable<std::optional<Flow>> read_credentials(const Auth& request, std::string& user,
                                                        std::string& secret) {
    if (request.mechanism == "PLAIN") {
      std::string response;
      if (request.initial_response) {
        response = *request.initial_response == "=" ? "" : *request.initial_response;
      } else {
        auto answer = co_await challenge("");
        if (!answer) co_return Flow::close;
        if (*answer == "*") co_return fail(501, "5.0.0", "authentication cancelled");
        response = std::move(*answer);
      }
      auto credentials = decode_plain(response);
      if (!credentials) co_return fail(501, "5.5.2", "malformed PLAIN response");
      user = std::move(credentials->authcid);
      secret = std::move(credentials->password);
      co_return std::nullopt;
    }
    if (request.mechanism == "LOGIN") {
      std::optional<std::string> name;
      if (request.initial_response) {
        name = decode_login_field(*request.initial_response);
      } else {
        auto answer = co_await challenge(login_username_challenge);
        if (!answer) co_return Flow::close;
        if (*answer == "*") co_return fail(501, "5.0.0", "authentication cancelled");
        name = decode_login_field(*answer);
      }
      if (!name) co_return fail(501, "5.5.2", "malformed LOGIN response");
      auto answer = co_await challenge(login_password_challenge);
      if (!answer) co_return Flow::close;
      if (*answer == "*") co_return fail(501, "5.0.0", "authentication cancelled");
      auto password = decode_login_field(*answer);
      if (!password) co_return fail(501, "5.5.2", "malformed LOGIN response");
      user = std::move(*name);
      secret = std::move(*password);
      co_return std::nullopt;
    }
    co_return fail(504, "5.5.4", "unrecognized authentication mechanism");
  }

  // "334 text", then the client's answer (never logged), or nothing when it is gone.
  asio::awaitable<std::optional<std::string>> challenge(std::string_view text) {
    reply(334, "", std::string(text));
    auto answer = co_await conn_.read_line(settings_.smtp.command_timeout);
    if (answer.status == net::ReadStatus::line) co_return std::move(answer.text);
    if (answer.status == net::ReadStatus::too_long) co_return std::string("!");  // not base64
    co_return std::nullopt;
  }

  // Feeds the reader until its chunk (BDAT) or the message (DATA) is complete;
  // bytes after it stay for the command reader.
  asio::awaitable<net::ReadStatus> read_content(DataReader& reader) {
    std::string bytes;
    while (!reader.chunk_done()) {
      bytes.clear();
      const auto status = co_await conn_.read_raw(bytes, settings_.smtp.data_timeout);
      if (status != net::ReadStatus::line) co_return status;
      const auto used = reader.feed(bytes);
      if (used < bytes.size()) conn_.unread(std::string_view(bytes).substr(used));
    }
    co_return net::ReadStatus::line;
  }

  Flow content_interrupted(net::ReadStatus status) {
    transaction_.reset();
    if (status == net::ReadStatus::timed_out) {
      log().info("timeout while receiving message content");
      reply(421, "4.4.2", hostname() + " timeout exceeded, closing connection");
    }
    return Flow::close;
  }

  // The end of the content: refuse it, or store it and only then say 250.
  // `reader` may belong to the transaction, so it is read before that ends.
  asio::awaitable<Flow> finish_message(DataReader& reader) {
    const auto problem = reader.problem();
    auto content = reader.take_content();
    auto transaction = std::move(*transaction_);
    transaction_.reset();
    switch (problem) {
      case DataReader::Problem::none:
        break;
      case DataReader::Problem::too_big:
        reply(552, "5.3.4", "message size exceeds fixed maximum message size");
        co_return Flow::proceed;
      case DataReader::Problem::bare_newline:
        reply(550, "5.5.2", "message contains a bare CR or LF");
        co_return Flow::proceed;
      case DataReader::Problem::nul:
        reply(550, "5.6.0", "message contains a NUL character");
        co_return Flow::proceed;
      case DataReader::Problem::line_too_long:
        reply(550, "5.6.0", "message has a line longer than 1000 octets");
        co_return Flow::proceed;
    }
    // SOURCE-GET.md 5: mail by plain DATA is unverified. Bounces cannot be
    // verified at all (they travel by DATA), so reject only tags them.
    auto policy = transaction.unverified;
    if (policy == config::UnverifiedPolicy::reject && transaction.mail.reverse_path.is_null())
      policy = config::UnverifiedPolicy::tag;
    if (policy == config::UnverifiedPolicy::reject) {
      log().info("refused unverified mail from <{}>: policy reject",
                 transaction.mail.reverse_path.address());
      reply(550, "5.7.1", "unverified mail is refused here: send it with SOURCE");
      co_return Flow::proceed;
    }
    store::NewMessage message;
    message.reverse_path = transaction.mail.reverse_path.address();
    message.mailboxes = std::move(transaction.mailboxes);
    message.trace =
        return_path_line(transaction.mail.reverse_path) +
        (policy == config::UnverifiedPolicy::tag ? reverse::unverified_result(hostname())
                                                 : std::string()) +
        received(transaction);
    message.content = std::move(content);
    if (!transaction.outbound.empty()) {
      message.outbound = std::move(transaction.outbound);
      message.outbound_trace = received(transaction);
      message.envid = transaction.mail.envid;
      message.ret = dsn_return(transaction.mail.ret);
      message.smtputf8 = transaction.mail.smtputf8;
      message.eight_bit = transaction.mail.body == Mail::Body::eight_bit_mime;
    }
    const auto size = message.content.size();
    const auto outbound = message.outbound.size();
    try {
      const auto stored = co_await net::deliver(env_.parts.store.mail(), message);
      log().info("stored {} from <{}>: {} octets, {} mailboxes, {} queued",
                 stored.content_hash.substr(0, 16), transaction.mail.reverse_path.address(), size,
                 stored.deliveries.size(), outbound);
      if (stored.queued && env_.parts.queue_wakeup) env_.parts.queue_wakeup();
      reply(250, "2.0.0", "OK stored as " + stored.content_hash.substr(0, 16));
    } catch (const std::exception& e) {
      // A storage failure is a temporary failure: the sender keeps the message and retries.
      log().warn("store error at delivery: {}", e.what());
      reply(451, "4.3.0", "temporary failure storing the message, try again later");
    }
    co_return Flow::proceed;
  }

  std::string received(const Transaction& transaction) {
    ReceivedInfo info;
    info.helo = greeting_ ? greeting_->domain : "";
    info.client_ip = env_.remote_address;
    info.hostname = hostname();
    info.session_id = env_.id;
    info.esmtp = greeting_ && greeting_->esmtp;
    info.tls = conn_.tls_active();
    info.authenticated = authenticated_.has_value();
    info.utf8 = transaction.mail.smtputf8;
    if (conn_.tls_active()) info.tls_summary = TlsSummary{conn_.tls_version(), conn_.tls_cipher()};
    if (authenticated_ && settings_.smtp.received_auth_user)
      info.authenticated_user = *authenticated_;
    if (transaction.recipients.size() == 1)
      info.recipient = transaction.recipients.front().forward_path;
    info.time = std::chrono::system_clock::now();
    return received_header(info);
  }

  asio::awaitable<bool> start_tls() {
    const auto context = env_.parts.tls.current();
    if (!context) co_return false;
    const bool secured = co_await conn_.start_tls(*context, settings_.smtp.command_timeout);
    co_return secured;
  }

  DataLimits data_limits() const {
    return DataLimits{settings_.smtp.max_message_size, text_line_max,
                      settings_.smtp.bare_newline == config::BareNewlinePolicy::reject
                          ? BareNewline::reject
                          : BareNewline::normalize};
  }

  // ---- policy ----

  bool submission() const {
    return env_.service == net::Service::submission || env_.service == net::Service::submissions;
  }
  bool tls_required() const { return env_.service == net::Service::submission; }
  // The keyword stands for both verbs: we answer GET whenever we may send
  // SOURCE, and SOURCE itself is refused with 550 when accept_source is off.
  bool source_offered() const {
    return env_.service == net::Service::smtp &&
           (settings_.reverse.accept_source || settings_.reverse.use_source);
  }
  bool auth_offered() { return conn_.tls_active() || !settings_.smtp.require_tls_for_auth; }
  bool relay_allowed() const {
    if (authenticated_) return true;
    const auto& networks = settings_.smtp.relay_networks;
    return std::any_of(networks.begin(), networks.end(),
                       [&](const Network& n) { return n.contains(env_.remote); });
  }

  // ---- replies: the one way out ----

  // `token`: a SOURCE/GET token in the text, shortened in the transcript.
  void reply(int code, std::string_view enhanced, const std::string& text,
             std::string_view token = {}) {
    const auto wire = format_reply(code, enhanced, text);
    if (spdlog::should_log(spdlog::level::debug))
      log().debug("> {}",
                  reverse::redact_token(std::string_view(wire).substr(0, wire.size() - 2), token));
    conn_.queue(wire);
  }

  // A reply that counts toward max_errors; at the limit it is followed by 421 and a close.
  Flow fail(int code, std::string_view enhanced, const std::string& text) {
    reply(code, enhanced, text);
    if (++errors_ < settings_.smtp.max_errors) return Flow::proceed;
    log().info("too many errors ({}), closing", errors_);
    reply(421, "4.7.0", hostname() + " too many errors, closing connection");
    return Flow::close;
  }

  void say_shutting_down() {
    log().info("closing for shutdown");
    reply(421, "4.3.2", hostname() + " service shutting down, try again later");
  }

  // AUTH lines carry credentials: only the verb and mechanism reach the log.
  // SOURCE and GET carry tokens: only their first 8 characters do.
  static std::string redact(const std::string& line) {
    const auto starts_with = [&line](std::string_view verb) {
      if (line.size() < verb.size()) return false;
      for (std::size_t i = 0; i < verb.size(); ++i)
        if ((line[i] | 0x20) != verb[i]) return false;
      return true;
    };
    if (starts_with("auth")) {
      const auto mechanism_end = line.find(' ', 5);
      return line.substr(0, std::min(mechanism_end, line.size())) + " ...";
    }
    for (const std::string_view verb : {std::string_view("source"), std::string_view("get")}) {
      if (!starts_with(verb)) continue;
      const auto argument = line.find_first_not_of(" \t", verb.size());
      if (argument == std::string::npos) return line;
      return line.substr(0, argument) + reverse::shown_token(line.substr(argument));
    }
    return line;
  }

  const char* service_name() const {
    switch (env_.service) {
      case net::Service::submission:
        return "submission";
      case net::Service::submissions:
        return "submissions";
      default:
        return "smtp";
    }
  }

  const net::SessionLog& log() const { return conn_.log(); }
  const std::string& hostname() const { return settings_.server.hostname; }

  const net::SessionEnv& env_;
  const config::Settings& settings_;
  net::Connection<Socket> conn_;
  std::optional<Greeting> greeting_;
  std::optional<Transaction> transaction_;
  std::optional<std::string> authenticated_;
  std::vector<std::string> authorised_domains_;  // GET: recipient domains this client is an MX of
  unsigned errors_ = 0;
};

}  // namespace

template <class Socket>
asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                            std::shared_ptr<net::SessionControl> control) {
  Session<Socket> session(socket, env, std::move(control));
  co_await session.run();
}

std::string busy_reply(const config::Settings& settings) {
  return format_reply(421, "4.3.2",
                      settings.server.hostname + " too many connections, try again later");
}

template asio::awaitable<void> serve(asio::ip::tcp::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(asio::local::stream_protocol::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(net::FaultyStream&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);

}  // namespace maild::smtp
