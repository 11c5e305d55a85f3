// POP3 server session; see session.hpp. The state is a variant: in
// AUTHORIZATION the session holds no mailbox data at all; TRANSACTION holds
// the maildrop snapshot taken at login and the marks; QUIT is UPDATE.
#include "pop3/session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "maild/core/password.hpp"
#include "maild/core/text.hpp"
#include "net/auth_throttle.hpp"
#include "net/connection.hpp"
#include "net/credential_cache.hpp"
#include "net/faulty_stream.hpp"
#include "net/sasl.hpp"
#include "net/store_calls.hpp"
#include "net/tls.hpp"
#include "pop3/command.hpp"

namespace maild::pop3 {
namespace asio = boost::asio;

namespace {

// RFC 5034 4: a SASL response line may be longer than a command.
constexpr std::size_t auth_line_max = 12288;
// RETR and TOP send the message in pieces of this size.
constexpr std::size_t send_chunk = 64 * 1024;
// Clients read a maildrop in order: after two RETRs in sequence, the next messages come
// with this one, in the same store call (a thread hop per message costs most of a RETR on
// a busy machine). At most this many messages and octets are held ahead.
constexpr std::size_t read_ahead_messages = 8;
constexpr std::uint64_t read_ahead_octets = 256 * 1024;

const std::string& decoy_hash() {
  static const std::string hash = password::hash("maild decoy password");
  return hash;
}

struct Authorization {
  std::optional<std::string> user;  // after USER, until PASS
};

struct Transaction {
  store::MailboxId mailbox = 0;
  std::string address;
  std::vector<store::MaildropEntry> entries;  // the snapshot taken at login
  std::vector<bool> deleted;
  std::vector<bool> retrieved;
  std::chrono::steady_clock::time_point locked_at;
  std::optional<std::size_t> last_retrieved;                      // index of the last RETR
  std::vector<std::pair<std::size_t, store::MessageText>> ahead;  // read ahead, by index
};

template <class Socket>
class Session {
 public:
  Session(Socket& socket, const net::SessionEnv& env, std::shared_ptr<net::SessionControl> control)
      : env_(env),
        settings_(env.parts.settings),
        io_(socket, std::move(control), net::SessionLog(env.id), command_line_max),
        owner_(settings_.server.hostname + "/" + env.id) {}

  asio::awaitable<void> run() {
    io_.set_session_deadline(std::chrono::steady_clock::now() + env_.parts.pop3_session_max);
    log().info("pop3 connect from {} on {}", env_.remote_text,
               net::implicit_tls(env_.service) ? "pop3s" : "pop3");
    if (net::implicit_tls(env_.service)) {
      const bool secured = co_await start_tls();
      if (!secured) co_return;
    }
    ok("maild POP3 server ready");
    co_await converse();
    if (auto* transaction = std::get_if<Transaction>(&state_)) {
      // Gone without QUIT: nothing is deleted (RFC 1939 6); the maildrop is freed.
      const auto release = [&maildrops = env_.parts.maildrops, mailbox = transaction->mailbox,
                            owner = owner_] { maildrops.unlock(mailbox, owner); };
      co_await net::try_blocking(env_.parts.store_pool, release, log(),
                                 "releasing the maildrop lock (it expires)");
    }
    co_await io_.close(settings_.pop3.idle_timeout);
    log().info("disconnect from {}", env_.remote_text);
  }

 private:
  enum class Flow { proceed, close };
  enum States : unsigned { in_authorization = 1, in_transaction = 2, any = 3 };
  using Handler = asio::awaitable<Flow> (Session::*)(Command&);
  struct VerbEntry {
    Verb verb;
    Handler handler;
    unsigned states;
  };
  static constexpr std::array<VerbEntry, 14> verbs{{
      {Verb::capa, &Session::capa, any},
      {Verb::quit, &Session::quit, any},
      {Verb::noop, &Session::noop, in_transaction},
      {Verb::user, &Session::user, in_authorization},
      {Verb::pass, &Session::pass, in_authorization},
      {Verb::auth, &Session::auth, in_authorization},
      {Verb::stls, &Session::stls, in_authorization},
      {Verb::stat, &Session::stat, in_transaction},
      {Verb::list, &Session::list, in_transaction},
      {Verb::uidl, &Session::uidl, in_transaction},
      {Verb::retr, &Session::retr, in_transaction},
      {Verb::top, &Session::top, in_transaction},
      {Verb::dele, &Session::dele, in_transaction},
      {Verb::rset, &Session::rset, in_transaction},
  }};

  asio::awaitable<void> converse() {
    for (;;) {
      auto input = co_await io_.read_line(settings_.pop3.idle_timeout);
      switch (input.status) {
        case net::ReadStatus::closed:
          co_return;
        case net::ReadStatus::timed_out:
          if (io_.session_expired()) {
            log().info("the session's time limit passed, closing");
            err("[SYS/TEMP] session time limit exceeded, closing connection");
            co_return;
          }
          // RFC 1939 3: the autologout timer closes without a response.
          log().info("idle timeout, closing");
          co_return;
        case net::ReadStatus::stopping:
          say_shutting_down();
          co_return;
        case net::ReadStatus::too_long:
          if (bad("line too long") == Flow::close) co_return;
          continue;
        case net::ReadStatus::line:
          break;
      }
      if (io_.stopping()) {
        say_shutting_down();
        co_return;
      }
      const auto flow = co_await dispatch(input.text);
      if (flow == Flow::close) co_return;
    }
  }

  asio::awaitable<Flow> dispatch(const std::string& line) {
    auto parsed = parse_command(line);
    log().debug("< {}", redact(line));
    if (auto* error = std::get_if<std::string>(&parsed)) co_return bad(*error);
    auto& command = std::get<Command>(parsed);
    const auto entry = std::find_if(verbs.begin(), verbs.end(),
                                    [&](const VerbEntry& e) { return e.verb == command.verb; });
    if (entry == verbs.end()) co_return bad("unknown command");
    const unsigned now =
        std::holds_alternative<Transaction>(state_) ? in_transaction : in_authorization;
    if ((entry->states & now) == 0) co_return bad("command not valid in this state");
    if (now == in_transaction) {
      const bool held = co_await keep_lock();
      if (!held) co_return Flow::close;
    }
    const auto flow = co_await (this->*(entry->handler))(command);
    co_return flow;
  }

  // ---- AUTHORIZATION ----

  asio::awaitable<Flow> capa(Command&) {
    std::string text = "+OK capability list follows\r\n";
    if (plaintext_allowed()) text += "USER\r\nSASL PLAIN\r\n";
    if (env_.parts.tls.enabled() && !io_.tls_active()) text += "STLS\r\n";
    text +=
        "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION "
        "maild\r\n.\r\n";
    io_.queue(text);
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> user(Command& command) {
    if (!plaintext_allowed()) {
      err("[AUTH] use STLS first");
      co_return Flow::proceed;
    }
    std::get<Authorization>(state_).user = command.argument;
    ok("send PASS");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> pass(Command& command) {
    auto& authorization = std::get<Authorization>(state_);
    if (!authorization.user) co_return bad("send USER first");
    if (!plaintext_allowed()) {
      err("[AUTH] use STLS first");
      co_return Flow::proceed;
    }
    const auto name = std::move(*authorization.user);
    authorization.user.reset();
    const auto flow = co_await login(name, command.argument);
    co_return flow;
  }

  asio::awaitable<Flow> auth(Command& command) {
    if (!plaintext_allowed()) {
      err("[AUTH] use STLS first");
      co_return Flow::proceed;
    }
    const std::string_view argument = command.argument;
    const auto space = argument.find(' ');
    std::string mechanism(argument.substr(0, space));
    std::transform(mechanism.begin(), mechanism.end(), mechanism.begin(), [](char c) {
      return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    if (mechanism != "PLAIN") {
      err("unsupported authentication mechanism");
      co_return Flow::proceed;
    }
    std::string response;
    if (space != std::string_view::npos) {
      response = std::string(argument.substr(space + 1));
      if (response == "=") response.clear();
    } else {
      io_.queue("+ \r\n");
      io_.lines().set_max_line(auth_line_max);
      auto answer = co_await io_.read_line(settings_.pop3.idle_timeout);
      io_.lines().set_max_line(command_line_max);
      if (answer.status != net::ReadStatus::line && answer.status != net::ReadStatus::too_long)
        co_return Flow::close;
      if (answer.text == "*") co_return bad("authentication cancelled");
      response = std::move(answer.text);
    }
    const auto credentials = net::decode_plain(response);
    if (!credentials) co_return bad("malformed PLAIN response");
    const auto flow = co_await login(credentials->authcid, credentials->password);
    co_return flow;
  }

  asio::awaitable<Flow> stls(Command&) {
    if (!env_.parts.tls.enabled() || io_.tls_active()) {
      err("STLS not available");
      co_return Flow::proceed;
    }
    ok("begin TLS negotiation");
    const bool secured = co_await start_tls();
    if (!secured) co_return Flow::close;
    state_ = Authorization{};  // nothing said in clear carries over
    co_return Flow::proceed;
  }

  // USER/PASS and AUTH end here: the same reply and work for an unknown user
  // and a wrong password; then the maildrop lock and the snapshot.
  asio::awaitable<Flow> login(const std::string& name, const std::string& secret) {
    auto& throttle = env_.parts.pop3_auth_throttle;
    if (throttle.blocked(env_.remote)) {
      log().info("login refused: too many failures from {}", env_.remote_address);
      err("[LOGIN-DELAY] too many failed logins, try again later");
      co_return Flow::close;
    }
    const auto check = [&directory = env_.parts.directory, &credentials = env_.parts.credentials,
                        name, secret]() -> std::optional<store::Account> {
      auto account = directory.account(name);
      if (!account) {
        // The same full check as for a wrong password, so that timing tells nothing.
        password::verify(secret, decoy_hash());
        return std::nullopt;
      }
      if (!credentials.check(account->address, secret, account->password_hash)) return std::nullopt;
      return account;
    };
    const auto checked =
        co_await net::try_blocking(env_.parts.store_pool, check, log(), "at login");
    if (!checked) co_return temporary_failure();
    const auto& account = *checked;
    if (!account) {
      throttle.record_failure(env_.remote);
      log().info("login failed");
      err("[AUTH] invalid user name or password");
      co_return Flow::proceed;
    }
    const auto open = [&maildrops = env_.parts.maildrops, mailbox = account->mailbox,
                       owner = owner_,
                       ttl = lock_ttl()]() -> std::optional<std::vector<store::MaildropEntry>> {
      if (!maildrops.lock(mailbox, owner, ttl)) return std::nullopt;
      try {
        return maildrops.list(mailbox);
      } catch (...) {
        maildrops.unlock(mailbox, owner);  // not locked out until the lock expires
        throw;
      }
    };
    auto opened =
        co_await net::try_blocking(env_.parts.store_pool, open, log(), "opening the maildrop");
    if (!opened) co_return temporary_failure();
    auto& entries = *opened;
    if (!entries) {
      log().info("maildrop of {} is in use", account->address);
      err("[IN-USE] maildrop already in use");
      co_return Flow::proceed;
    }
    Transaction transaction;
    transaction.mailbox = account->mailbox;
    transaction.address = account->address;
    transaction.entries = std::move(*entries);
    transaction.deleted.assign(transaction.entries.size(), false);
    transaction.retrieved.assign(transaction.entries.size(), false);
    transaction.locked_at = std::chrono::steady_clock::now();
    state_ = std::move(transaction);
    log().info("login as {}", account->address);
    const auto [count, octets] = totals();
    ok("maildrop has " + std::to_string(count) + " messages (" + std::to_string(octets) +
       " octets)");
    co_return Flow::proceed;
  }

  // ---- TRANSACTION ----

  asio::awaitable<Flow> stat(Command&) {
    const auto [count, octets] = totals();
    ok(std::to_string(count) + " " + std::to_string(octets));
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> list(Command& command) {
    co_return listing(command,
                      [](const store::MaildropEntry& e) { return std::to_string(e.size); });
  }

  asio::awaitable<Flow> uidl(Command& command) {
    co_return listing(command, [](const store::MaildropEntry& e) { return e.uidl; });
  }

  template <class Field>
  Flow listing(const Command& command, Field field) {
    auto& t = std::get<Transaction>(state_);
    if (command.number) {
      const auto index = message(*command.number);
      if (!index) return Flow::proceed;
      ok(std::to_string(*command.number) + " " + field(t.entries[*index]));
      return Flow::proceed;
    }
    std::string text = "+OK\r\n";
    for (std::size_t i = 0; i < t.entries.size(); ++i) {
      if (t.deleted[i]) continue;
      text += std::to_string(i + 1) + " " + field(t.entries[i]) + "\r\n";
    }
    text += ".\r\n";
    io_.queue(text);
    return Flow::proceed;
  }

  asio::awaitable<Flow> retr(Command& command) {
    const auto flow = co_await send_message(command, std::nullopt);
    co_return flow;
  }

  asio::awaitable<Flow> top(Command& command) {
    const auto flow = co_await send_message(command, command.lines);
    co_return flow;
  }

  asio::awaitable<Flow> dele(Command& command) {
    auto& t = std::get<Transaction>(state_);
    const auto index = message(*command.number);
    if (!index) co_return Flow::proceed;
    t.deleted[*index] = true;
    ok("message " + std::to_string(*command.number) + " deleted");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> rset(Command&) {
    auto& t = std::get<Transaction>(state_);
    std::fill(t.deleted.begin(), t.deleted.end(), false);
    const auto [count, octets] = totals();
    ok("maildrop has " + std::to_string(count) + " messages (" + std::to_string(octets) +
       " octets)");
    co_return Flow::proceed;
  }

  asio::awaitable<Flow> noop(Command&) {
    ok("");
    co_return Flow::proceed;
  }

  // UPDATE: the marks are applied in one transaction, or not at all.
  asio::awaitable<Flow> quit(Command&) {
    auto* t = std::get_if<Transaction>(&state_);
    if (t == nullptr) {
      ok("maild POP3 server signing off");
      co_return Flow::close;
    }
    std::vector<store::DeliveryId> retrieved;
    std::vector<store::DeliveryId> deleted;
    std::size_t left = 0;
    for (std::size_t i = 0; i < t->entries.size(); ++i) {
      if (t->deleted[i])
        deleted.push_back(t->entries[i].id);
      else
        ++left;
      if (t->retrieved[i]) retrieved.push_back(t->entries[i].id);
    }
    const auto apply = [&maildrops = env_.parts.maildrops, mailbox = t->mailbox, owner = owner_,
                        retrieved,
                        deleted] { maildrops.finish(mailbox, owner, retrieved, deleted); };
    const bool applied = co_await net::try_blocking(env_.parts.store_pool, apply, log(), "at QUIT");
    if (!applied) {
      err("[SYS/TEMP] some deleted messages not removed, try again later");
      co_return Flow::close;  // run() releases the lock
    }
    log().info("quit: {} deleted, {} left", deleted.size(), left);
    state_ = Authorization{};  // finished: nothing to release
    ok("maild POP3 server signing off (" + counted(left, "message") + " left)");
    co_return Flow::close;
  }

  // ---- pieces ----

  // RETR (lines empty) or TOP: fetched from the store, sent byte-stuffed in pieces.
  asio::awaitable<Flow> send_message(const Command& command, std::optional<std::uint64_t> lines) {
    auto& t = std::get<Transaction>(state_);
    const auto index = message(*command.number);
    if (!index) co_return Flow::proceed;
    std::optional<store::MessageText> text = take_read_ahead(t, *index);
    if (!text) {
      const std::vector<std::size_t> wanted = to_fetch(t, *index, !lines);
      std::vector<store::DeliveryId> ids;
      for (const std::size_t i : wanted) ids.push_back(t.entries[i].id);
      const auto fetch = [&maildrops = env_.parts.maildrops, mailbox = t.mailbox, ids] {
        std::vector<std::optional<store::MessageText>> texts;
        for (const store::DeliveryId id : ids) texts.push_back(maildrops.text(mailbox, id));
        return texts;
      };
      auto fetched =
          co_await net::try_blocking(env_.parts.store_pool, fetch, log(), "reading a message");
      if (!fetched) co_return temporary_failure();
      auto& texts = *fetched;
      text = std::move(texts.front());
      t.ahead.clear();
      for (std::size_t k = 1; k < texts.size(); ++k) {
        if (texts[k]) t.ahead.emplace_back(wanted[k], std::move(*texts[k]));
      }
    }
    if (!lines) t.last_retrieved = *index;
    if (!text) {
      err("no such message");
      co_return Flow::proceed;
    }
    if (lines)
      ok("top of message follows");
    else
      ok(std::to_string(t.entries[*index].size) + " octets");
    ByteStuffer stuffer;
    std::string piece;
    const bool sent_trace = co_await send_stuffed(stuffer, text->trace, piece);
    if (!sent_trace) co_return Flow::close;
    const std::string_view content =
        lines ? top_of(text->content, *lines) : std::string_view(text->content);
    const bool sent_content = co_await send_stuffed(stuffer, content, piece);
    if (!sent_content) co_return Flow::close;
    stuffer.finish(piece);
    io_.queue(piece);
    if (!lines) t.retrieved[*index] = true;
    // The rest leaves with the next read's flush: a small message in one write with its "+OK"
    // and final ".". Pipelined commands may keep the session from reading: not past a chunk.
    if (io_.queued() >= send_chunk) {
      const bool sent = co_await io_.flush(settings_.pop3.idle_timeout);
      if (!sent) co_return Flow::close;
    }
    co_return Flow::proceed;
  }

  // A message read ahead, handed over (and forgotten) when it is the one asked for.
  static std::optional<store::MessageText> take_read_ahead(Transaction& t, std::size_t index) {
    for (auto it = t.ahead.begin(); it != t.ahead.end(); ++it) {
      if (it->first != index) continue;
      store::MessageText text = std::move(it->second);
      t.ahead.erase(it);
      return text;
    }
    return std::nullopt;
  }

  // The message asked for, then, when RETR follows the previous RETR's message, the next
  // ones not deleted, within the read-ahead limits.
  static std::vector<std::size_t> to_fetch(const Transaction& t, std::size_t index, bool retr) {
    std::vector<std::size_t> wanted{index};
    if (!retr || !t.last_retrieved || *t.last_retrieved + 1 != index) return wanted;
    std::uint64_t octets = 0;
    for (std::size_t i = index + 1; i < t.entries.size() && wanted.size() <= read_ahead_messages;
         ++i) {
      if (t.deleted[i]) continue;
      octets += t.entries[i].size;
      if (octets > read_ahead_octets) break;
      wanted.push_back(i);
    }
    return wanted;
  }

  asio::awaitable<bool> send_stuffed(ByteStuffer& stuffer, std::string_view text,
                                     std::string& piece) {
    for (std::size_t at = 0; at < text.size(); at += send_chunk) {
      stuffer.append(text.substr(at, send_chunk), piece);
      if (piece.size() < send_chunk) continue;  // kept for one write with what follows
      const bool sent = co_await io_.send(piece, settings_.pop3.idle_timeout);
      if (!sent) co_return false;
      piece.clear();
    }
    co_return true;
  }

  // The index of message `number` when it exists and is not deleted; else says why.
  std::optional<std::size_t> message(std::uint64_t number) {
    auto& t = std::get<Transaction>(state_);
    if (number == 0 || number > t.entries.size()) {
      err("no such message");
      return std::nullopt;
    }
    const auto index = static_cast<std::size_t>(number - 1);
    if (t.deleted[index]) {
      err("message " + std::to_string(number) + " already deleted");
      return std::nullopt;
    }
    return index;
  }

  std::pair<std::size_t, std::uint64_t> totals() const {
    const auto& t = std::get<Transaction>(state_);
    std::size_t count = 0;
    std::uint64_t octets = 0;
    for (std::size_t i = 0; i < t.entries.size(); ++i) {
      if (t.deleted[i]) continue;
      ++count;
      octets += t.entries[i].size;
    }
    return {count, octets};
  }

  // The lock expires unless renewed: renewed at half its life, on a command.
  asio::awaitable<bool> keep_lock() {
    auto& t = std::get<Transaction>(state_);
    const auto now = std::chrono::steady_clock::now();
    if (now - t.locked_at < lock_ttl() / 2) co_return true;
    const auto renew = [&maildrops = env_.parts.maildrops, mailbox = t.mailbox, owner = owner_,
                        ttl = lock_ttl()] { return maildrops.lock(mailbox, owner, ttl); };
    const auto renewed = co_await net::try_blocking(env_.parts.store_pool, renew, log(),
                                                    "renewing the maildrop lock");
    if (!renewed || !*renewed) {
      err("[SYS/TEMP] lost the maildrop lock, try again later");
      state_ = Authorization{};  // another session may own it now: release nothing
      co_return false;
    }
    t.locked_at = now;
    co_return true;
  }

  // A session may sit idle for idle_timeout between commands.
  std::chrono::seconds lock_ttl() const {
    return settings_.pop3.idle_timeout + std::chrono::seconds(60);
  }

  bool plaintext_allowed() const {
    if (io_.tls_active()) return true;
    const auto& networks = settings_.pop3.plaintext_networks;
    return std::any_of(networks.begin(), networks.end(),
                       [&](const Network& n) { return n.contains(env_.remote); });
  }

  asio::awaitable<bool> start_tls() {
    const auto context = env_.parts.tls.current();
    if (!context) co_return false;
    const bool secured = co_await io_.start_tls(*context, settings_.pop3.idle_timeout);
    co_return secured;
  }

  // ---- replies ----

  void ok(const std::string& text) { io_.queue(text.empty() ? "+OK\r\n" : "+OK " + text + "\r\n"); }
  void err(const std::string& text) { io_.queue("-ERR " + text + "\r\n"); }
  // The store failed (logged by net::try_blocking): the client may try again.
  Flow temporary_failure() {
    err("[SYS/TEMP] temporary failure, try again later");
    return Flow::proceed;
  }

  // A refused command; too many of them end the session.
  Flow bad(const std::string& text) {
    err(text);
    if (++bad_commands_ < max_bad_commands) return Flow::proceed;
    log().info("too many bad commands, closing");
    err("too many bad commands, closing");
    return Flow::close;
  }

  void say_shutting_down() {
    log().info("closing for shutdown");
    err("[SYS/TEMP] server shutting down, try again later");
  }

  // PASS and AUTH lines carry secrets.
  static std::string redact(const std::string& line) {
    const auto name = line.substr(0, std::min<std::size_t>(4, line.size()));
    const auto upper = [&] {
      std::string u = name;
      for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return u;
    }();
    if (upper == "PASS" || upper == "AUTH") return name + " ...";
    return line;
  }

  const net::SessionLog& log() const { return io_.log(); }

  const net::SessionEnv& env_;
  const config::Settings& settings_;
  net::Connection<Socket> io_;
  const std::string owner_;  // names this session's maildrop lock across nodes
  std::variant<Authorization, Transaction> state_;
  unsigned bad_commands_ = 0;
};

}  // namespace

template <class Socket>
asio::awaitable<void> serve(Socket& socket, const net::SessionEnv& env,
                            std::shared_ptr<net::SessionControl> control) {
  Session<Socket> session(socket, env, std::move(control));
  co_await session.run();
}

std::string busy_reply() { return "-ERR [SYS/TEMP] too many connections, try again later\r\n"; }

template asio::awaitable<void> serve(asio::ip::tcp::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(asio::local::stream_protocol::socket&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);
template asio::awaitable<void> serve(net::FaultyStream&, const net::SessionEnv&,
                                     std::shared_ptr<net::SessionControl>);

}  // namespace maild::pop3
