// SMTP server session; see session.hpp. The dialogue lives here; what plugs
// into it (SOURCE/GET, checks) comes through the seam of extension.hpp. Each
// verb is checked (state, arguments, policy) before it touches the
// transaction or the store: the state-order checks once, in dispatch(), from
// the verb table's flags; the rest in the verb's handler.
#include "smtp/session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cctype>
#include <chrono>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "maild/core/password.hpp"
#include "maild/core/text.hpp"
#include "net/auth_throttle.hpp"
#include "net/connection.hpp"
#include "net/content_budget.hpp"
#include "net/credential_cache.hpp"
#include "net/faulty_stream.hpp"
#include "net/sasl.hpp"
#include "net/store_calls.hpp"
#include "net/tls.hpp"
#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"
#include "smtp/header_section.hpp"
#include "smtp/limits.hpp"
#include "smtp/received.hpp"
#include "smtp/reply.hpp"
#include "smtp/token.hpp"
#include "smtp/transcript.hpp"

namespace maild::smtp {
namespace asio = boost::asio;

namespace {

// RFC 4954 4: an AUTH response line may be up to 12288 octets.
constexpr std::size_t auth_line_max = 12288;

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

// What RCPT found: the recipient, and which candidate address it was found as.
struct RecipientLookup {
  store::Resolution resolution;
  std::size_t candidate = 0;
};

// What EHLO/HELO established.
struct Greeting {
  std::string domain;
  bool esmtp = false;
};

// The session's state: each alternative holds only what is valid in it.
// Whether the client authenticated is apart: it outlives transactions.
struct AwaitingHello {};
struct Greeted {
  Greeting greeting;
};
struct InTransaction {
  Greeting greeting;
  Transaction transaction;
};
using State = std::variant<AwaitingHello, Greeted, InTransaction>;

// The extension verbs of one session, with the extension session that answers each.
struct ExtensionVerbEntry {
  ExtensionVerb verb;
  ExtensionSession* session;
};

template <class Socket>
class Session final : public VerbContext {
 public:
  Session(Socket& socket, const net::SessionEnv& env, const SessionExtensions& extensions,
          std::shared_ptr<net::SessionControl> control)
      : env_(env),
        settings_(env.parts.settings),
        extensions_(extensions),
        conn_(socket, std::move(control), net::SessionLog(env.id), command_line_max) {
    for (const auto* extension : extensions_) {
      hooks_.push_back(extension->open(*this));
      for (const auto& verb : extension->verbs())
        extension_verbs_.push_back({verb, hooks_.back().get()});
    }
  }

  asio::awaitable<void> run() {
    conn_.set_session_deadline(Clock::now() + env_.parts.smtp_session_max);
    log().info("connect from {} on {}", env_.remote_text, service_name());
    if (net::implicit_tls(env_.service)) {
      const bool secured = co_await start_tls();
      if (!secured) co_return;
    } else if (conn_.client_spoke_first()) {
      // A client must wait for the greeting (RFC 5321 3.1); bots that do not are refused.
      log().info("client spoke before the greeting; refused");
      reply(status::protocol_error, hostname() + " protocol error: you spoke before my greeting");
      co_await conn_.flush(settings_.smtp.command_timeout);
      co_return;
    }
    for (auto& hook : hooks_) {
      auto verdict = co_await hook->on_connect(*this);
      if (!verdict.proceeds()) {
        refuse("connection", verdict);
        co_await conn_.close(settings_.smtp.command_timeout);
        co_return;
      }
      session_headers_ += verdict.headers;
    }
    reply(status::greeting, hostname() + " ESMTP maild");
    co_await converse();
    co_await conn_.close(settings_.smtp.command_timeout);
    log().info("disconnect from {}", env_.remote_text);
  }

  // ---- SessionView and VerbContext ----

  const net::SessionEnv& env() const override { return env_; }
  const net::SessionLog& log() const override { return conn_.log(); }
  const std::string& hostname() const override { return settings_.server.hostname; }
  const std::string* helo() const override {
    const auto* greeting = current_greeting();
    return greeting ? &greeting->domain : nullptr;
  }
  bool esmtp() const override {
    const auto* greeting = current_greeting();
    return greeting && greeting->esmtp;
  }
  bool tls_active() const override { return conn_.tls_active(); }
  const std::string* authenticated() const override {
    return authenticated_ ? &*authenticated_ : nullptr;
  }
  bool relay_allowed() const override {
    if (authenticated_) return true;
    const auto& networks = settings_.smtp.relay_networks;
    return std::any_of(networks.begin(), networks.end(),
                       [&](const Network& n) { return n.contains(env_.remote); });
  }
  const Transcript& transcript() const override { return transcript_; }

  // The one way out (STYLE.md 6): the log, the transcript, the error count.
  void reply(Status status, const std::string& text, std::string_view secret = {}) override {
    const auto wire = format_reply(status.code, status.enhanced, text);
    std::string redacted;
    if (!secret.empty()) redacted = redact_token(wire, secret);
    const std::string& shown = secret.empty() ? wire : redacted;
    transcript_.server(shown);
    if (spdlog::should_log(spdlog::level::debug))
      log().debug("> {}", std::string_view(shown).substr(0, shown.size() - 2));
    if (counting_ && status.permanent()) ++errors_;
    conn_.queue(wire);
  }
  void queue(std::string_view bytes) override { conn_.queue(bytes); }
  asio::awaitable<bool> flush(Seconds timeout) override {
    const bool sent = co_await conn_.flush(timeout);
    co_return sent;
  }
  Transaction* transaction() override {
    auto* in = std::get_if<InTransaction>(&state_);
    return in ? &in->transaction : nullptr;
  }
  Transaction end_transaction() override {
    content_share_.release();  // the transaction's content goes with it
    auto& in = std::get<InTransaction>(state_);
    auto transaction = std::move(in.transaction);
    state_ = Greeted{std::move(in.greeting)};
    return transaction;
  }
  std::string trace(const Transaction& transaction) override {
    return return_path_line(transaction.mail.reverse_path) + session_headers_ +
           transaction.headers + received(transaction);
  }

 private:
  using Handler = asio::awaitable<Flow> (Session::*)(Command&);
  using Clock = std::chrono::steady_clock;
  struct VerbEntry {
    Verb verb;
    std::string_view name;
    VerbFlags flags;
    Handler handler;
  };
  // The verb table; extensions add theirs. Cross-cutting checks happen once, in dispatch().
  static constexpr std::array<VerbEntry, 14> verbs{{
      {Verb::ehlo, "EHLO", {.before_starttls = true}, &Session::hello},
      {Verb::helo, "HELO", {.before_starttls = true}, &Session::hello},
      {Verb::mail, "MAIL", {.needs_hello = true, .outside_transaction = true}, &Session::mail},
      {Verb::rcpt, "RCPT", {.needs_transaction = true}, &Session::rcpt},
      {Verb::data, "DATA", {.needs_transaction = true}, &Session::data},
      // BDAT reads its chunk even when it refuses it (RFC 3030 2): its own checks.
      {Verb::bdat, "BDAT", {}, &Session::bdat},
      {Verb::rset, "RSET", {.before_starttls = true}, &Session::rset},
      {Verb::noop, "NOOP", {.before_starttls = true}, &Session::noop},
      {Verb::quit, "QUIT", {.before_starttls = true}, &Session::quit},
      {Verb::vrfy, "VRFY", {}, &Session::vrfy},
      {Verb::expn, "EXPN", {}, &Session::expn},
      {Verb::help, "HELP", {.before_starttls = true}, &Session::help},
      {Verb::starttls, "STARTTLS", {.before_starttls = true}, &Session::starttls},
      {Verb::auth, "AUTH", {.needs_ehlo = true, .outside_transaction = true}, &Session::auth},
  }};
  static constexpr std::string_view own_help =
      "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH";

  asio::awaitable<void> converse() {
    for (;;) {
      auto input = co_await conn_.read_line(settings_.smtp.command_timeout);
      counting_ = true;
      switch (input.status) {
        case net::ReadStatus::closed:
          co_return;
        case net::ReadStatus::timed_out:
          say_timed_out(conn_.session_expired() ? "the session's time limit" : "a command");
          co_return;
        case net::ReadStatus::stopping:
          say_shutting_down();
          co_return;
        case net::ReadStatus::too_long: {
          transcript_.client("[line too long]");
          reply(status::line_too_long, "line too long");
          if (settle(Flow::proceed) == Flow::close) co_return;
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
      if (settle(flow) == Flow::close) co_return;
    }
  }

  asio::awaitable<Flow> dispatch(const std::string& line) {
    const auto shown = redact_command(line);
    log().debug("< {}", shown);
    transcript_.client(shown);
    auto parsed = parse_command(line);
    if (auto* error = std::get_if<Reply>(&parsed)) {
      reply(Status{error->code, error->enhanced}, error->text);
      co_return Flow::proceed;
    }
    auto& command = std::get<Command>(parsed);
    const auto own = std::find_if(verbs.begin(), verbs.end(),
                                  [&](const VerbEntry& e) { return e.verb == command.verb; });
    if (own != verbs.end()) {
      counting_ = own->flags.counts_errors;
      if (!admissible(own->name, own->flags)) co_return Flow::proceed;
      const auto flow = co_await (this->*(own->handler))(command);
      co_return flow;
    }
    const auto added =
        std::find_if(extension_verbs_.begin(), extension_verbs_.end(),
                     [&](const ExtensionVerbEntry& e) { return e.verb.verb == command.verb; });
    if (added == extension_verbs_.end()) {
      reply(status::unrecognized, "command unrecognized");
      co_return Flow::proceed;
    }
    counting_ = added->verb.flags.counts_errors;
    if (!admissible(added->verb.name, added->verb.flags)) co_return Flow::proceed;
    const auto flow = co_await added->session->handle(*this, command);
    co_return flow;
  }

  // The cross-cutting checks of the verb table, in this order; false after a refusal.
  bool admissible(std::string_view name, const VerbFlags& flags) {
    const auto named = [name](std::string_view text) {
      return std::string(name) + std::string(text);
    };
    if (tls_required() && !conn_.tls_active() && !flags.before_starttls)
      return refused(status::tls_or_auth_required, "must issue a STARTTLS command first");
    if (flags.mx_only && env_.service != net::Service::smtp)
      return refused(status::not_implemented, named(" is only accepted on the MX port"));
    if (flags.needs_hello && !current_greeting())
      return refused(status::bad_sequence, "send HELO or EHLO first");
    if (flags.needs_ehlo && !esmtp()) return refused(status::bad_sequence, "send EHLO first");
    if (flags.needs_transaction && !transaction())
      return refused(status::bad_sequence, "need MAIL before " + std::string(name));
    if (flags.outside_transaction && transaction())
      return refused(status::bad_sequence,
                     name == "MAIL" ? std::string("nested MAIL command")
                                    : named(" is not allowed during a mail transaction"));
    // RFC 2920 3.1: the client must see this reply before it goes on.
    if (flags.ends_group && conn_.lines().has_pending())
      return refused(status::bad_sequence, named(" must be the last command of a pipelined group"));
    return true;
  }
  bool refused(Status status, const std::string& text) {
    reply(status, text);
    return false;
  }

  // At max_errors, the error reply is followed by 421 and a close.
  Flow settle(Flow flow) {
    if (flow == Flow::close || errors_ < settings_.smtp.max_errors) return flow;
    log().info("too many errors ({}), closing", errors_);
    reply(status::closing_abuse, hostname() + " too many errors, closing connection");
    return Flow::close;
  }

  // A check said no: its reply goes out instead of ours.
  void refuse(std::string_view stage, const Verdict& verdict) {
    log().info("{} at {}: {} {} {}",
               verdict.action == Verdict::Action::refuse ? "refused" : "deferred", stage,
               verdict.status.code, verdict.status.enhanced, verdict.text);
    reply(verdict.status, verdict.text);
  }

  // ---- the verbs ----

  asio::awaitable<Flow> hello(Command& command) {
    const auto& request = std::get<Hello>(command.parsed);
    if (transaction()) end_transaction();
    for (auto& hook : hooks_) {
      auto verdict = co_await hook->on_hello(*this, request);
      if (!verdict.proceeds()) {
        refuse("HELO", verdict);
        co_return Flow::proceed;
      }
      session_headers_ += verdict.headers;
    }
    const auto& domain = request.domain;
    state_ = Greeted{Greeting{domain, command.verb == Verb::ehlo}};
    if (command.verb != Verb::ehlo) {
      reply(status::hello, hostname());
      co_return Flow::proceed;
    }
    std::vector<std::string> keywords{
        "PIPELINING", "SIZE " + std::to_string(settings_.smtp.max_message_size.bytes), "8BITMIME",
        "ENHANCEDSTATUSCODES"};
    if (env_.parts.tls.enabled() && !conn_.tls_active()) keywords.emplace_back("STARTTLS");
    if (auth_offered()) keywords.emplace_back("AUTH PLAIN LOGIN");
    for (const char* keyword : {"SMTPUTF8", "CHUNKING", "DSN"}) keywords.emplace_back(keyword);
    for (const auto* extension : extensions_) extension->keywords(*this, keywords);
    keywords.emplace_back("HELP");
    std::string text = hostname() + " greets " + domain;
    for (const auto& keyword : keywords) text += "\n" + keyword;
    reply(status::hello, text);
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> mail(Command& command) {
    if (submission() && !authenticated_)
      co_return refuse_with(status::tls_or_auth_required, "authentication required");
    auto& mail = std::get<Mail>(command.parsed);
    const bool extended = mail.size || mail.body != Mail::Body::unspecified || mail.smtputf8 ||
                          mail.ret != Mail::Ret::unspecified || !mail.envid.empty() || mail.auth;
    if (extended && !esmtp())
      co_return refuse_with(status::bad_parameters, "MAIL parameters need EHLO");
    if (mail.size && *mail.size > settings_.smtp.max_message_size.bytes)
      co_return refuse_with(status::too_big, "message size exceeds fixed maximum message size");
    if (mail.reverse_path.has_utf8() && !mail.smtputf8)
      co_return refuse_with(status::needs_smtputf8,
                            "a non-ASCII address needs the SMTPUTF8 parameter");
    std::string headers;
    for (auto& hook : hooks_) {
      auto verdict = co_await hook->on_mail(*this, mail);
      if (!verdict.proceeds()) {
        refuse("MAIL", verdict);
        co_return Flow::proceed;
      }
      headers += verdict.headers;
    }
    auto& greeted = std::get<Greeted>(state_);
    InTransaction next{std::move(greeted.greeting), Transaction{}};
    next.transaction.mail = std::move(mail);
    next.transaction.headers = std::move(headers);
    state_ = std::move(next);
    reply(status::sender_ok, "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> rcpt(Command& command) {
    auto& rcpt = std::get<Rcpt>(command.parsed);
    if (transaction()->recipients.size() >= settings_.smtp.max_recipients) {
      reply(status::too_many_recipients, "too many recipients");
      co_return Flow::proceed;
    }
    if (rcpt.forward_path.has_utf8() && !transaction()->mail.smtputf8)
      co_return refuse_with(status::needs_smtputf8,
                            "a non-ASCII address needs the SMTPUTF8 parameter");
    // RFC 5321 4.5.1: postmaster must be accepted, bare or at any of our domains.
    const auto candidates =
        recipient_candidates(rcpt.forward_path, hostname(), settings_.smtp.postmaster);
    const auto lookup = [&directory = env_.parts.directory, candidates,
                         configured = settings_.smtp.postmaster,
                         bare = rcpt.forward_path.is_postmaster()] {
      using Kind = store::Resolution::Kind;
      RecipientLookup first{directory.resolve(candidates.front()), 0};
      if (first.resolution.kind == Kind::mailboxes) return first;
      // Another server's postmaster is an address like any other.
      if (!bare && first.resolution.kind != Kind::unknown_local) return first;
      for (std::size_t i = 1; i < candidates.size(); ++i) {
        auto resolution = directory.resolve(candidates[i]);
        if (resolution.kind == Kind::mailboxes) return RecipientLookup{std::move(resolution), i};
        // [smtp] postmaster on another server: forwarded there, as an alias would.
        if (resolution.kind == Kind::not_local && candidates[i] == configured)
          return RecipientLookup{store::Resolution{Kind::mailboxes, {}, {configured}}, i};
      }
      return first;
    };
    auto found = co_await store_call(*this, lookup, "resolving a recipient", status::local_error,
                                     "temporary failure looking up the recipient, try again later");
    if (!found) co_return Flow::proceed;
    auto& resolution = found->resolution;
    const auto& address = candidates.front();
    if (rcpt.forward_path.is_postmaster() && resolution.kind == store::Resolution::Kind::not_local)
      resolution.kind = store::Resolution::Kind::unknown_local;  // never relayed
    switch (resolution.kind) {
      case store::Resolution::Kind::unknown_local:
        co_return refuse_with(status::unknown_mailbox, "<" + address + ">: mailbox unavailable");
      case store::Resolution::Kind::not_local:
        if (!relay_allowed())
          co_return refuse_with(status::relay_denied, "<" + address + ">: relay access denied");
        break;
      case store::Resolution::Kind::mailboxes:
        break;
    }
    const RecipientFacts facts{rcpt, candidates[found->candidate], resolution};
    std::string headers;
    for (auto& hook : hooks_) {
      auto verdict = co_await hook->on_rcpt(*this, *transaction(), facts);
      if (!verdict.proceeds()) {
        refuse("RCPT", verdict);
        co_return Flow::proceed;
      }
      headers += verdict.headers;
    }
    auto& current = *transaction();
    current.headers += headers;
    if (resolution.kind == store::Resolution::Kind::not_local) add_outbound(address, rcpt);
    auto& mailboxes = current.mailboxes;
    for (const auto id : resolution.mailboxes)
      if (std::find(mailboxes.begin(), mailboxes.end(), id) == mailboxes.end())
        mailboxes.push_back(id);
    // Forwarding aliases queue a copy for their outside targets.
    for (const auto& target : resolution.forwards) add_outbound(target, rcpt);
    // Only a recipient whose every copy stays here is local through and through.
    if (resolution.kind == store::Resolution::Kind::mailboxes && resolution.forwards.empty()) {
      current.local.push_back({address, resolution.mailboxes});
      // Success notices only for our own clients: from anyone else, NOTIFY=SUCCESS
      // with a forged sender (and RET=FULL) would make maild mail strangers on demand.
      if ((rcpt.notify & notify_success) != 0 && relay_allowed())
        current.delivered.push_back({address, rcpt.notify, rcpt.orcpt});
    }
    current.recipients.push_back(std::move(rcpt));
    reply(status::recipient_ok, "OK");
    co_return Flow::proceed;
  }

  // Queues `address` for delivery elsewhere, with the RCPT's DSN parameters.
  void add_outbound(const std::string& address, const Rcpt& rcpt) {
    auto& outbound = transaction()->outbound;
    const auto same = [&](const store::OutboundRecipient& r) {
      return same_address(r.address, address);
    };
    if (std::any_of(outbound.begin(), outbound.end(), same)) return;
    // A stranger's forwarded copy asks for no "relayed" notice (see the local case in rcpt()).
    const unsigned notify = relay_allowed() ? rcpt.notify : rcpt.notify & ~notify_success;
    outbound.push_back({address, notify, rcpt.orcpt});
  }

  asio::awaitable<Flow> data(Command&) {
    if (transaction()->chunks) co_return refuse_with(status::bad_sequence, "DATA after BDAT");
    if (transaction()->recipients.empty())
      co_return refuse_with(status::protocol_error, "no valid recipients");
    reply(status::start_data, "end data with <CR><LF>.<CR><LF>");
    auto reader = DataReader::dot_terminated(data_limits());
    const auto read = co_await read_content(reader);
    if (read != net::ReadStatus::line) co_return content_interrupted(read);
    const auto flow = co_await finish_message(reader);
    co_return flow;
  }

  asio::awaitable<Flow> bdat(Command& command) {
    const auto chunk = std::get<Bdat>(command.parsed);
    // RFC 3030 2: the chunk is read even when it is refused.
    const char* refusal = !transaction()                      ? "need MAIL before BDAT"
                          : transaction()->recipients.empty() ? "no valid recipients"
                                                              : nullptr;
    if (refusal != nullptr) {
      auto discard =
          DataReader::chunked(DataLimits{ByteSize{0}, text_line_max, BareNewline::normalize});
      discard.begin_chunk(chunk.size, chunk.last);
      const auto read = co_await read_content(discard);
      if (read != net::ReadStatus::line) co_return content_interrupted(read);
      const auto answer = transaction() ? status::protocol_error : status::bad_sequence;
      if (chunk.last && transaction()) end_transaction();
      co_return refuse_with(answer, refusal);
    }
    if (!transaction()->chunks) transaction()->chunks = DataReader::chunked(data_limits());
    auto& reader = *transaction()->chunks;
    reader.begin_chunk(chunk.size, chunk.last);
    const auto read = co_await read_content(reader);
    if (read != net::ReadStatus::line) co_return content_interrupted(read);
    if (chunk.last) {
      const auto flow = co_await finish_message(reader);
      co_return flow;
    }
    if (reader.problem() == DataReader::Problem::too_big) {
      end_transaction();
      counting_ = false;  // an answer to content, not to a command
      reply(status::too_big, "message size exceeds fixed maximum message size");
      co_return Flow::proceed;
    }
    if (reader.problem() == DataReader::Problem::no_memory) {
      end_transaction();
      counting_ = false;
      reply(status::insufficient_storage, "insufficient system storage, try again later");
      co_return Flow::proceed;
    }
    reply(status::ok, std::to_string(chunk.size) + " octets received");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> rset(Command&) {
    if (transaction()) end_transaction();
    reply(status::ok, "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> noop(Command&) {
    reply(status::ok, "OK");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> quit(Command&) {
    reply(status::closing, hostname() + " closing connection");
    co_return Flow::close;
  }

  asio::awaitable<Flow> vrfy(Command&) {
    // Never confirms addresses: VRFY must not enumerate mailboxes.
    reply(status::cannot_verify, "cannot VRFY user, but will accept message and attempt delivery");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> expn(Command&) {
    co_return refuse_with(status::not_implemented, "EXPN not available");
  }

  asio::awaitable<Flow> help(Command&) {
    std::string text = "maild commands: " + std::string(own_help);
    for (const auto& added : extension_verbs_) text += " " + std::string(added.verb.name);
    reply(status::help, text);
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> starttls(Command&) {
    if (!env_.parts.tls.enabled())
      co_return refuse_with(status::tls_unavailable, "TLS not available");
    if (conn_.tls_active()) co_return refuse_with(status::bad_sequence, "TLS already active");
    reply(status::tls_ready, "ready to start TLS");
    const bool secured = co_await start_tls();
    if (!secured) co_return Flow::close;
    // RFC 3207 4.2: everything known before the handshake is forgotten.
    state_ = AwaitingHello{};
    content_share_.release();
    authenticated_.reset();
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> auth(Command& command) {
    if (authenticated_) co_return refuse_with(status::bad_sequence, "already authenticated");
    if (!auth_offered())
      co_return refuse_with(status::encryption_required,
                            "encryption required for requested authentication mechanism");
    auto& throttle = env_.parts.smtp_auth_throttle;
    if (throttle.blocked(env_.remote)) {
      log().info("AUTH refused: too many failures from {}", env_.remote_address);
      reply(status::closing_abuse,
            hostname() + " too many failed authentications, try again later");
      co_return Flow::close;
    }
    const auto& request = std::get<Auth>(command.parsed);
    std::string user;
    std::string secret;
    conn_.lines().set_max_line(auth_line_max);
    const auto outcome = co_await read_credentials(request, user, secret);
    conn_.lines().set_max_line(command_line_max);
    if (outcome) co_return *outcome;
    const auto check = [&directory = env_.parts.directory, &credentials = env_.parts.credentials,
                        user, secret] {
      const auto hash = directory.password_hash(user);
      if (!hash) {
        // The same full check as for a wrong password, so that timing tells nothing.
        password::verify(secret, decoy_hash());
        return false;
      }
      return credentials.check(user, secret, *hash);
    };
    const auto accepted = co_await store_call(*this, check, "during AUTH", status::tls_unavailable,
                                              "temporary authentication failure");
    if (!accepted) co_return Flow::proceed;
    if (!*accepted) {
      throttle.record_failure(env_.remote);
      log().info("AUTH {} failed", request.mechanism);
      co_return refuse_with(status::bad_credentials, "authentication credentials invalid");
    }
    authenticated_ = user;
    log().info("AUTH {} as {}", request.mechanism, user);
    reply(status::authenticated, "authentication successful");
    co_return Flow::proceed;
  }

  // ---- pieces of the verbs ----

  Flow refuse_with(Status status, const std::string& text) {
    reply(status, text);
    return Flow::proceed;
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
        if (*answer == "*") co_return refuse_with(status::cancelled, "authentication cancelled");
        response = std::move(*answer);
      }
      auto credentials = net::decode_plain(response);
      if (!credentials)
        co_return refuse_with(status::malformed_response, "malformed PLAIN response");
      user = std::move(credentials->authcid);
      secret = std::move(credentials->password);
      co_return std::nullopt;
    }
    if (request.mechanism == "LOGIN") {
      std::optional<std::string> name;
      if (request.initial_response) {
        name = net::decode_login_field(*request.initial_response);
      } else {
        auto answer = co_await challenge(net::login_username_challenge);
        if (!answer) co_return Flow::close;
        if (*answer == "*") co_return refuse_with(status::cancelled, "authentication cancelled");
        name = net::decode_login_field(*answer);
      }
      if (!name) co_return refuse_with(status::malformed_response, "malformed LOGIN response");
      auto answer = co_await challenge(net::login_password_challenge);
      if (!answer) co_return Flow::close;
      if (*answer == "*") co_return refuse_with(status::cancelled, "authentication cancelled");
      auto password = net::decode_login_field(*answer);
      if (!password) co_return refuse_with(status::malformed_response, "malformed LOGIN response");
      user = std::move(*name);
      secret = std::move(*password);
      co_return std::nullopt;
    }
    co_return refuse_with(status::unknown_mechanism, "unrecognized authentication mechanism");
  }

  // "334 text", then the client's answer (never logged, nor kept), or nothing when it is gone.
  asio::awaitable<std::optional<std::string>> challenge(std::string_view text) {
    reply(status::auth_challenge, std::string(text));
    auto answer = co_await conn_.read_line(settings_.smtp.command_timeout);
    transcript_.client("[AUTH response]");
    if (answer.status == net::ReadStatus::line) co_return std::move(answer.text);
    if (answer.status == net::ReadStatus::too_long) co_return std::string("!");  // not base64
    co_return std::nullopt;
  }

  // Feeds the reader until its chunk (BDAT) or the message (DATA) is complete;
  // bytes after it stay for the command reader. All of it must come within
  // data_timeout, and after the grace at content_min_rate on average.
  asio::awaitable<net::ReadStatus> read_content(DataReader& reader) {
    const auto started = Clock::now();
    const auto deadline = started + settings_.smtp.data_timeout;
    const auto rate = std::max<std::uint64_t>(env_.parts.content_min_rate.bytes, 1);
    std::uint64_t received = 0;
    std::string bytes;
    while (!reader.chunk_done()) {
      // What has come so far buys this much time at the minimum rate.
      const std::chrono::milliseconds earned(received * 1000 / rate);
      const auto slow = started + std::max<Clock::duration>(env_.parts.content_rate_grace, earned);

      bytes.clear();
      const auto read =
          co_await conn_.read_raw(bytes, settings_.smtp.data_timeout, std::min(deadline, slow));
      if (read == net::ReadStatus::timed_out) too_slow_ = Clock::now() >= slow;
      if (read != net::ReadStatus::line) co_return read;
      received += bytes.size();
      const auto used = reader.feed(bytes);
      // Kept content counts toward [server] content_memory; past it, the rest is only read.
      if (reader.problem() == DataReader::Problem::none && !content_share_.grow(used)) {
        log().warn("message content past server.content_memory ({} octets held by all sessions)",
                   env_.parts.content_budget->used());
        reader.out_of_memory();
        content_share_.release();
      }
      if (used < bytes.size()) conn_.unread(std::string_view(bytes).substr(used));
    }
    co_return net::ReadStatus::line;
  }

  Flow content_interrupted(net::ReadStatus read) {
    if (transaction()) end_transaction();
    if (read == net::ReadStatus::timed_out) {
      if (conn_.session_expired())
        say_timed_out("the session's time limit, in message content");
      else if (too_slow_)
        say_timed_out("message content arriving slower than the minimum rate");
      else
        say_timed_out("message content (data_timeout)");
    }
    return Flow::close;
  }

  void say_timed_out(std::string_view waiting_for) {
    log().info("timeout waiting for {}", waiting_for);
    reply(status::timed_out, hostname() + " timeout exceeded, closing connection");
  }

  // The end of the content: refuse it, or store it and only then say 250.
  // `reader` may belong to the transaction, so it is read before that ends.
  // Answers to content never count toward max_errors.
  asio::awaitable<Flow> finish_message(DataReader& reader) {
    const auto problem = reader.problem();
    auto content = reader.take_content();
    net::ContentShare in_flight(env_.parts.content_budget);  // held until the content is stored
    in_flight.adopt(content_share_);
    auto transaction = end_transaction();
    counting_ = false;
    switch (problem) {
      case DataReader::Problem::none:
        break;
      case DataReader::Problem::too_big:
        co_return refuse_with(status::too_big, "message size exceeds fixed maximum message size");
      case DataReader::Problem::bare_newline:
        co_return refuse_with(status::bare_newline, "message contains a bare CR or LF");
      case DataReader::Problem::nul:
        co_return refuse_with(status::bad_content, "message contains a NUL character");
      case DataReader::Problem::line_too_long:
        co_return refuse_with(status::bad_content, "message has a line longer than 1000 octets");
      case DataReader::Problem::no_memory:
        co_return refuse_with(status::insufficient_storage,
                              "insufficient system storage, try again later");
    }
    // RFC 5321 6.3: a message that went round too often is in a loop.
    if (const auto hops = count_received(content); hops > settings_.smtp.max_hops) {
      log().info("refused mail from <{}>: {} Received fields, more than max_hops {}",
                 transaction.mail.reverse_path.address(), hops, settings_.smtp.max_hops);
      co_return refuse_with(status::too_many_hops, "too many hops (" + std::to_string(hops) +
                                                       " Received fields): mail loop?");
    }
    // RFC 8601 5: only we may speak as our authserv-id.
    if (const auto forged = remove_own_authentication_results(content, hostname()))
      log().info("removed {} Authentication-Results fields claiming to be ours", forged);
    for (auto& hook : hooks_) {
      auto verdict = co_await hook->on_content(*this, transaction, content);
      if (!verdict.proceeds()) {
        refuse("end of content", verdict);
        co_return Flow::proceed;
      }
      transaction.headers += verdict.headers;
    }
    store::NewMessage message;
    message.reverse_path = transaction.mail.reverse_path.address();
    message.trace = trace(transaction);
    message.mailboxes = std::move(transaction.mailboxes);
    message.content = std::move(content);
    // The queue entry: outbound recipients, and local ones owed a success notice.
    if (!transaction.outbound.empty() || !transaction.delivered.empty()) {
      message.outbound = std::move(transaction.outbound);
      message.delivered = std::move(transaction.delivered);
      message.outbound_trace = received(transaction);
      message.envid = transaction.mail.envid;
      message.ret = dsn_return(transaction.mail.ret);
      message.smtputf8 = transaction.mail.smtputf8;
      message.eight_bit = transaction.mail.body == Mail::Body::eight_bit_mime;
    }
    const auto size = message.content.size();
    const auto outbound = message.outbound.size();
    try {
      const auto stored = co_await net::deliver(env_.parts.mail, message);
      log().info("stored {} from <{}>: {} octets, {}, {} queued", stored.content_hash.substr(0, 16),
                 transaction.mail.reverse_path.address(), size,
                 counted(stored.deliveries.size(), "mailbox", "mailboxes"), outbound);
      if (stored.queued && env_.parts.queue_wakeup) env_.parts.queue_wakeup();
      reply(status::ok, "OK stored as " + stored.content_hash.substr(0, 16));
    } catch (const std::exception& e) {
      // A storage failure is a temporary failure: the sender keeps the message and retries.
      log().warn("store error at delivery: {}", e.what());
      reply(status::local_error, "temporary failure storing the message, try again later");
    }
    co_return Flow::proceed;
  }

  std::string received(const Transaction& transaction) {
    ReceivedInfo info;
    const auto* greeting = current_greeting();
    info.helo = greeting ? greeting->domain : "";
    info.client_ip = env_.remote_address;
    info.hostname = hostname();
    info.session_id = env_.id;
    info.esmtp = greeting && greeting->esmtp;
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

  const Greeting* current_greeting() const {
    if (const auto* greeted = std::get_if<Greeted>(&state_)) return &greeted->greeting;
    if (const auto* in = std::get_if<InTransaction>(&state_)) return &in->greeting;
    return nullptr;
  }

  // ---- policy ----

  bool submission() const {
    return env_.service == net::Service::submission || env_.service == net::Service::submissions;
  }
  bool tls_required() const { return env_.service == net::Service::submission; }
  bool auth_offered() const { return conn_.tls_active() || !settings_.smtp.require_tls_for_auth; }

  void say_shutting_down() {
    log().info("closing for shutdown");
    reply(status::shutting_down, hostname() + " service shutting down, try again later");
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

  const net::SessionEnv& env_;
  const config::Settings& settings_;
  const SessionExtensions& extensions_;
  net::Connection<Socket> conn_;
  State state_;
  std::optional<std::string> authenticated_;
  unsigned errors_ = 0;
  bool too_slow_ = false;
  net::ContentShare content_share_{
      env_.parts.content_budget};  // this transaction's content  // the last content read ended at
                                   // the minimum rate's deadline
  bool counting_ = true;           // this command's 5xx replies count toward max_errors
  Transcript transcript_;
  std::string session_headers_;  // asked for at connect and HELO: for every message
  std::vector<std::unique_ptr<ExtensionSession>> hooks_;  // one per extension, in order
  std::vector<ExtensionVerbEntry> extension_verbs_;
};

}  // namespace

template <class Socket>
asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                            const SessionExtensions& extensions,
                            std::shared_ptr<net::SessionControl> control) {
  Session<Socket> session(socket, env, extensions, std::move(control));
  co_await session.run();
}

std::string busy_reply(const config::Settings& settings) {
  return format_reply(status::shutting_down.code, status::shutting_down.enhanced,
                      settings.server.hostname + " too many connections, try again later");
}

template asio::awaitable<void> serve(asio::ip::tcp::socket&, const net::SessionEnv&,
                                     const SessionExtensions&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(asio::local::stream_protocol::socket&, const net::SessionEnv&,
                                     const SessionExtensions&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(net::FaultyStream&, const net::SessionEnv&,
                                     const SessionExtensions&,
                                     std::shared_ptr<net::SessionControl>);

}  // namespace maild::smtp
