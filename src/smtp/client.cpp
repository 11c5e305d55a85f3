// The outbound SMTP client; see client.hpp. Check, then proceed: what the
// peer cannot take is refused before a byte of the message is sent.
#include "smtp/client.hpp"

#include <algorithm>

#include "maild/core/base64.hpp"
#include "maild/core/text.hpp"
#include "smtp/command.hpp"
#include "smtp/limits.hpp"
#include "smtp/token.hpp"

namespace maild::smtp {
namespace asio = boost::asio;
using Kind = RecipientOutcome::Kind;

namespace {

// Content goes out in blocks of this size, each under the data_block timeout.
constexpr ByteSize data_block_size = 64_KiB;

// Addresses come from the queue, validated when they were accepted; a control
// character or angle bracket would still let one command smuggle another.
bool safe_path(std::string_view address) {
  return std::none_of(address.begin(), address.end(), [](char c) {
    const auto octet = static_cast<unsigned char>(c);
    return octet < 0x20 || octet == 0x7f || c == '<' || c == '>';
  });
}

std::string notify_value(unsigned notify) {
  if ((notify & store::notify_never) != 0) return "NEVER";
  std::string value;
  const auto add = [&](unsigned bit, const char* word) {
    if ((notify & bit) == 0) return;
    if (!value.empty()) value += ',';
    value += word;
  };
  add(store::notify_success, "SUCCESS");
  add(store::notify_failure, "FAILURE");
  add(store::notify_delay, "DELAY");
  return value;
}

// "rfc822;bob@example.com" (decoded, as queued) -> "rfc822;bob@example.com" in xtext.
std::string orcpt_value(std::string_view orcpt) {
  const auto semicolon = orcpt.find(';');
  if (semicolon == std::string_view::npos || semicolon == 0) return {};
  return std::string(orcpt.substr(0, semicolon + 1)) + xtext_encode(orcpt.substr(semicolon + 1));
}

}  // namespace

std::string as_temporary(const ServerReply& reply) {
  auto summary = reply.summary();
  if (reply.kind() == 4) return summary;
  if (reply.kind() == 5) {
    summary[0] = '4';
    summary[4] = '4';  // the enhanced code's class: summary() always has one at 4
    return summary;
  }
  return "451 4.5.0 unexpected reply: " + summary;
}

Transfer::Transfer(const OutboundMessage& message)
    : outcomes(message.recipients.size()), settled(message.recipients.size(), false) {
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    outcomes[i].recipient = message.recipients[i].id;
    outcomes[i].reply = "451 4.4.0 not attempted yet";
  }
}

bool Transfer::done() const { return std::all_of(settled.begin(), settled.end(), std::identity{}); }

ClientSession::ClientSession(Socket& socket, const ClientOptions& options,
                             std::shared_ptr<net::SessionControl> control, net::SessionLog log)
    : options_(options), conn_(socket, std::move(control), std::move(log), reply_line_max) {}

// ---- the dialogue ----

asio::awaitable<bool> ClientSession::open() {
  const auto greeting = co_await read_reply(options_.timeouts.greeting, "the greeting");
  if (!greeting) co_return false;
  if (greeting->kind() != 2) {
    fail_with(*greeting, "the greeting");
    co_return false;
  }
  const bool greeted = co_await hello();
  if (!greeted) co_return false;
  const bool wants_tls = options_.try_starttls && options_.tls_context != nullptr;
  if (extensions_.starttls && wants_tls) {
    const bool secured = co_await start_tls();
    if (!secured) co_return false;
  }
  if (options_.tls == config::TlsPolicy::encrypt && !conn_.tls_active()) {
    decline("450 4.7.4 TLS required but not offered by " + options_.remote_host);
    co_return false;
  }
  if (options_.credentials != nullptr) {
    const bool authenticated = co_await authenticate();
    if (!authenticated) co_return false;
  }
  co_return true;
}

// EHLO, and HELO when EHLO gets a permanent refusal (RFC 5321 3.2).
asio::awaitable<bool> ClientSession::hello() {
  command("EHLO " + options_.helo_name);
  const auto ehlo = co_await read_reply(options_.timeouts.hello, "EHLO");
  if (!ehlo) co_return false;
  if (ehlo->kind() == 2) {
    esmtp_ = true;
    extensions_ = parse_extensions(*ehlo);
    co_return true;
  }
  if (ehlo->kind() != 5 || conn_.tls_active()) {
    fail_with(*ehlo, "EHLO");
    co_return false;
  }
  command("HELO " + options_.helo_name);
  const auto helo = co_await read_reply(options_.timeouts.hello, "HELO");
  if (!helo) co_return false;
  if (helo->kind() != 2) {
    fail_with(*helo, "HELO");
    co_return false;
  }
  esmtp_ = false;
  extensions_ = Extensions{};
  co_return true;
}

// RFC 3207. A refusal leaves plain text, which `encrypt` then refuses in open().
asio::awaitable<bool> ClientSession::start_tls() {
  command("STARTTLS");
  const auto ready = co_await read_reply(options_.timeouts.hello, "STARTTLS");
  if (!ready) co_return false;
  if (ready->code == 421) {
    fail_with(*ready, "STARTTLS");
    co_return false;
  }
  if (ready->kind() != 2) {
    if (options_.tls == config::TlsPolicy::encrypt) {
      decline("450 4.7.4 TLS required but STARTTLS refused by " + options_.remote_host + ": " +
              ready->summary());
      co_return false;
    }
    log().info("STARTTLS refused ({}); going on in plain text", ready->summary());
    co_return true;
  }
  const bool secured = co_await conn_.start_tls_client(*options_.tls_context, options_.server_name,
                                                       options_.timeouts.hello);
  if (!secured) {
    fail("450 4.7.5 TLS handshake with " + options_.remote_host + " failed");
    trouble_->tls_failed = true;
    co_return false;
  }
  // RFC 3207 4.2: what the server said before the handshake is forgotten.
  const bool greeted = co_await hello();
  co_return greeted;
}

// AUTH PLAIN (RFC 4954, RFC 4616), only under TLS.
asio::awaitable<bool> ClientSession::authenticate() {
  if (!conn_.tls_active()) {
    decline("450 4.7.0 not sending credentials to " + options_.remote_host + " without TLS");
    co_return false;
  }
  const auto& offered = extensions_.auth;
  if (offered.empty()) {
    log().info("{} offers no AUTH; sending without logging in", options_.remote_host);
    co_return true;
  }
  if (std::find(offered.begin(), offered.end(), "PLAIN") == offered.end()) {
    decline("450 4.7.0 " + options_.remote_host + " offers no AUTH mechanism maild has (PLAIN)");
    co_return false;
  }
  const auto& login = *options_.credentials;
  std::string response;
  response += '\0';
  response += login.user;
  response += '\0';
  response += login.password;
  log().debug("> AUTH PLAIN ...");
  conn_.queue("AUTH PLAIN " + base64_encode(response) + "\r\n");
  const auto result = co_await read_reply(options_.timeouts.hello, "AUTH");
  if (!result) co_return false;
  if (result->kind() != 2) {
    fail_with(*result, "AUTH");
    co_return false;
  }
  log().info("logged in to {} as {}", options_.remote_host, login.user);
  co_return true;
}

asio::awaitable<void> ClientSession::send(const OutboundMessage& message, Transfer& transfer) {
  std::vector<std::size_t> wanted;  // this session's recipients: the unsettled ones
  for (std::size_t i = 0; i < message.recipients.size(); ++i)
    if (!transfer.settled[i]) wanted.push_back(i);
  if (wanted.empty() || !usable()) co_return;

  // Check: what the peer cannot take fails now, and nothing is sent.
  const auto size = message.text.size();
  const auto limit = extensions_.size.value_or(0);
  std::optional<std::string> refusal;
  if (limit > 0 && size > limit)
    refusal = "552 5.3.4 message size " + std::to_string(size) + " exceeds the limit " +
              std::to_string(limit) + " of " + options_.remote_host;
  else if (message.smtputf8 && !extensions_.smtputf8)
    refusal =
        "553 5.6.7 " + options_.remote_host + " does not support SMTPUTF8, which the message needs";
  else if (!safe_path(message.reverse_path))
    refusal = "553 5.1.7 bad sender address syntax";
  if (refusal) {
    for (const auto i : wanted) settle(transfer, i, Kind::permanent, *refusal);
    co_return;
  }
  std::vector<std::size_t> sendable;
  for (const auto i : wanted) {
    if (safe_path(message.recipients[i].address))
      sendable.push_back(i);
    else
      settle(transfer, i, Kind::permanent, "553 5.1.3 bad recipient address syntax");
  }
  if (sendable.empty()) co_return;

  // Proceed: SOURCE instead of DATA where the peer offers it, never for a
  // bounce (it cannot be fetched back); after a 5xx to SOURCE, DATA.
  bool by_source =
      options_.pickups != nullptr && extensions_.source && !message.reverse_path.empty();
  for (;;) {
    const bool source_refused = co_await transact(message, transfer, sendable, by_source);
    if (!source_refused) co_return;
    co_await reset();  // SOURCE-GET.md 2: RSET, then MAIL, RCPT and DATA again
    if (!usable()) {
      leave_unsettled(transfer);
      co_return;
    }
    by_source = false;
    std::erase_if(sendable, [&transfer](std::size_t i) { return transfer.settled[i]; });
    if (sendable.empty()) co_return;
  }
}

// One mail transaction for `sendable`: MAIL, RCPT..., then DATA (in one write
// when the peer pipelines) or SOURCE (alone, the last command of its group).
// True when SOURCE got a 5xx: the caller falls back to DATA.
asio::awaitable<bool> ClientSession::transact(const OutboundMessage& message, Transfer& transfer,
                                              const std::vector<std::size_t>& sendable,
                                              bool by_source) {
  const bool pipelined = extensions_.pipelining;
  bool data_queued = false;
  command(mail_command(message));
  if (pipelined) {
    for (const auto i : sendable) command(rcpt_command(message.recipients[i]));
    if (!by_source) {
      command("DATA");
      data_queued = true;
    }
  }
  const auto mail = co_await read_reply(options_.timeouts.mail, "MAIL FROM");
  if (!mail || mail->code == 421) {
    if (mail) fail_with(*mail, "MAIL FROM");
    leave_unsettled(transfer);
    co_return false;
  }
  const bool mail_ok = mail->kind() == 2;
  if (!mail_ok && !pipelined) {
    for (const auto i : sendable) settle_by(transfer, i, *mail);
    co_return false;
  }
  std::vector<std::size_t> accepted;
  for (const auto i : sendable) {
    if (!pipelined) command(rcpt_command(message.recipients[i]));
    const auto rcpt = co_await read_reply(options_.timeouts.rcpt, "RCPT TO");
    if (!rcpt || rcpt->code == 421) {
      if (rcpt) fail_with(*rcpt, "RCPT TO");
      leave_unsettled(transfer);
      co_return false;
    }
    if (!mail_ok) continue;  // pipelined: the server answers each RCPT with 503
    if (rcpt->kind() == 2)
      accepted.push_back(i);
    else
      settle_by(transfer, i, *rcpt);
  }
  if (!mail_ok) {
    for (const auto i : sendable) settle_by(transfer, i, *mail);
    if (!data_queued) co_return false;
  } else if (!data_queued && accepted.empty()) {
    co_await reset();
    co_return false;
  }
  if (by_source) {
    const auto step = co_await offer_source(message, transfer, accepted);
    if (step != SourceStep::unrecorded) co_return step == SourceStep::refused;
    // The pickup could not be recorded: the content goes by DATA in this transaction.
  }
  if (!data_queued) command("DATA");
  const auto data = co_await read_reply(options_.timeouts.data, "DATA");
  if (!data || data->code == 421) {
    if (data) fail_with(*data, "DATA");
    leave_unsettled(transfer);
    co_return false;
  }
  if (data->code != 354) {
    // Even a 2xx here delivered nothing: only a 5xx is final.
    for (const auto i : accepted) {
      if (data->kind() == 5)
        settle(transfer, i, Kind::permanent, data->summary());
      else
        settle(transfer, i, Kind::temporary, as_temporary(*data));
    }
    if (mail_ok) co_await reset();
    co_return false;
  }
  if (accepted.empty()) {
    // RFC 2920 3.1: DATA was accepted although no RCPT was; end it with a lone dot.
    command(".");
    const auto ignored = co_await read_reply(options_.timeouts.end_of_data, "the end of data");
    if (ignored && ignored->code == 421) fail_with(*ignored, "the end of data");
    co_return false;
  }

  bool final_dot_sent = false;
  const bool sent = co_await send_content(message.text, final_dot_sent);
  if (!sent && !final_dot_sent) {
    leave_unsettled(transfer);
    co_return false;
  }
  std::optional<ServerReply> end;
  if (sent) {
    auto reply = co_await read_reply(options_.timeouts.end_of_data, "the end of data");
    end = std::move(reply);
  }
  if (!end) {
    // The dot may have arrived and the message been taken: no other server
    // gets it now; the queue retries later and counts the risk.
    for (const auto i : accepted) {
      settle(transfer, i, Kind::temporary,
             "451 4.4.2 no reply from " + options_.remote_host +
                 " to the end of the message, which may have been delivered");
      transfer.outcomes[i].unconfirmed = true;
    }
    co_return false;
  }
  if (end->code == 421) fail_with(*end, "the end of data");  // settled all the same
  for (const auto i : accepted) {
    settle_by(transfer, i, *end);
    note_relayed(message, transfer, i);
  }
  co_return false;
}

// SOURCE <token> for the recipients RCPT accepted (docs/source-get.md). The
// pickup is recorded before the token goes out, so GET answers as soon as
// the peer may ask; it is confirmed before the recipients count as delivered.
asio::awaitable<ClientSession::SourceStep> ClientSession::offer_source(
    const OutboundMessage& message, Transfer& transfer, const std::vector<std::size_t>& accepted) {
  const auto& peer = options_.remote_host;
  const auto offer = co_await options_.pickups->offer(message, accepted, peer);
  if (!offer) co_return SourceStep::unrecorded;
  const auto shown = shown_token(offer->token);
  secret_ = offer->token;
  log().debug("> SOURCE {}", shown);
  conn_.queue("SOURCE " + offer->token + "\r\n");
  auto reply = co_await read_reply(options_.timeouts.source, "SOURCE");
  secret_.clear();
  if (!reply) {
    // As a lost reply to the end of data: the peer may have taken it, and
    // GET answers until the pickup is purged; the queue retries later.
    log().info("SOURCE {} for message {}: no reply; the pickup stays offered", shown,
               message.queue_id);
    for (const auto i : accepted) {
      settle(transfer, i, Kind::temporary,
             "451 4.4.2 no reply from " + peer + " to SOURCE, which may have been accepted");
      transfer.outcomes[i].unconfirmed = true;
    }
    co_return SourceStep::settled;
  }
  for (auto& line : reply->lines) line = redact_token(line, offer->token);
  const bool taken = reply->kind() == 2;
  const bool recorded = co_await options_.pickups->settle(*offer, taken);
  if (taken) {
    if (!recorded) {
      for (const auto i : accepted)
        settle(transfer, i, Kind::temporary,
               "451 4.3.0 " + peer + " accepted SOURCE but the pickup could not be confirmed");
      co_return SourceStep::settled;
    }
    log().info("SOURCE {} for message {} to {}: {}, pickup {}", shown, message.queue_id, peer,
               counted(accepted.size(), "recipient"), offer->id);
    for (const auto i : accepted) {
      settle_by(transfer, i, *reply);
      note_relayed(message, transfer, i);
    }
    co_return SourceStep::settled;
  }
  log().info("SOURCE {} for message {} refused by {}: {}", shown, message.queue_id, peer,
             reply->summary());
  if (reply->code == 421) {
    fail_with(*reply, "SOURCE");
    leave_unsettled(transfer);
    co_return SourceStep::settled;
  }
  if (reply->kind() == 5) co_return SourceStep::refused;
  for (const auto i : accepted) settle(transfer, i, Kind::temporary, as_temporary(*reply));
  co_await reset();
  co_return SourceStep::settled;
}

// Delivered, but NOTIFY=SUCCESS could not be passed on: the sender is owed a relay notice.
void ClientSession::note_relayed(const OutboundMessage& message, Transfer& transfer,
                                 std::size_t index) const {
  const bool wants_success = (message.recipients[index].notify & store::notify_success) != 0;
  if (transfer.outcomes[index].kind == Kind::delivered && wants_success && !extensions_.dsn)
    transfer.outcomes[index].dsn_relayed = true;
}

asio::awaitable<Fetched> ClientSession::fetch(const std::string& token, const DataLimits& limits) {
  using FetchKind = Fetched::Kind;
  const auto shown = shown_token(token);
  if (!usable()) co_return Fetched{FetchKind::temporary, {}, trouble_->reply};
  if (!valid_token(token)) co_return Fetched{FetchKind::permanent, {}, "554 5.5.4 malformed token"};
  secret_ = token;
  struct Forget {
    std::string& secret;
    ~Forget() { secret.clear(); }
  } forget{secret_};
  log().debug("> GET {}", shown);
  conn_.queue("GET " + token + "\r\n");
  const auto ready = co_await read_reply(options_.timeouts.data, "the reply to GET");
  if (!ready) co_return Fetched{FetchKind::temporary, {}, trouble_->reply};
  if (ready->code == 421) {
    fail_with(*ready, "GET");
    co_return Fetched{FetchKind::temporary, {}, as_temporary(*ready)};
  }
  if (ready->code != 354) {
    const auto reply = redact_token(ready->summary(), token);
    if (ready->kind() == 5) co_return Fetched{FetchKind::permanent, {}, reply};
    if (ready->kind() == 4) co_return Fetched{FetchKind::temporary, {}, reply};
    // A 2xx or 3xx other than 354 is no answer to GET: the dialogue is lost.
    fail("451 4.5.0 unexpected reply from " + options_.remote_host + " to GET: " + reply);
    co_return Fetched{FetchKind::temporary, {}, trouble_->reply};
  }

  auto reader = DataReader::dot_terminated(limits);
  const bool complete = co_await read_fetched(reader, shown);
  if (!complete) {
    if (reader.problem() == DataReader::Problem::too_big)
      co_return Fetched{FetchKind::permanent,
                        {},
                        "552 5.3.4 message from " + options_.remote_host + " exceeds " +
                            std::to_string(limits.max_size.bytes) + " octets: transfer aborted"};
    co_return Fetched{FetchKind::temporary, {}, trouble_->reply};
  }
  const auto end = co_await read_reply(options_.timeouts.end_of_data, "the end of the GET content");
  if (!end) co_return Fetched{FetchKind::temporary, {}, trouble_->reply};
  if (end->code == 421) fail_with(*end, "the end of the GET content");
  if (end->kind() != 2) {
    const auto reply = redact_token(end->summary(), token);
    co_return Fetched{end->kind() == 5 ? FetchKind::permanent : FetchKind::temporary, {}, reply};
  }
  switch (reader.problem()) {
    case DataReader::Problem::none:
      break;
    case DataReader::Problem::too_big:  // read_fetched() stops at once; never here
      co_return Fetched{FetchKind::permanent, {}, "552 5.3.4 message too big"};
    case DataReader::Problem::bare_newline:
      co_return Fetched{FetchKind::permanent, {}, "550 5.5.2 message contains a bare CR or LF"};
    case DataReader::Problem::nul:
      co_return Fetched{FetchKind::permanent, {}, "550 5.6.0 message contains a NUL character"};
    case DataReader::Problem::line_too_long:
      co_return Fetched{
          FetchKind::permanent, {}, "550 5.6.0 message has a line longer than 1000 octets"};
    case DataReader::Problem::no_memory:  // fetched content is not under content_memory yet
      co_return Fetched{FetchKind::temporary, {}, "452 4.3.1 insufficient system storage"};
  }
  co_return Fetched{FetchKind::content, reader.take_content(), {}};
}

// Feeds the reader until the content's end; bytes after it stay for the
// final reply. False when the session broke, or the content grew over the
// limit: then the transfer is abandoned (SOURCE-GET.md 6), and the session.
asio::awaitable<bool> ClientSession::read_fetched(DataReader& reader, std::string_view shown) {
  using Clock = net::Connection<Socket>::Clock;
  const auto deadline = Clock::now() + options_.timeouts.fetch;
  std::string bytes;
  while (!reader.done()) {
    // Rounded up: reads wait whole seconds, and must not end the transfer early.
    const auto left = std::chrono::ceil<Seconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      fail("451 4.4.2 timeout after " + std::to_string(options_.timeouts.fetch.count()) +
           "s receiving the message " + std::string(shown) + " from " + options_.remote_host);
      co_return false;
    }
    bytes.clear();
    const auto status =
        co_await conn_.read_raw(bytes, std::min(left, options_.timeouts.data_block));
    switch (status) {
      case net::ReadStatus::line:
        break;
      case net::ReadStatus::timed_out:
        if (left < options_.timeouts.data_block) continue;  // the whole deadline: said above
        fail("451 4.4.2 timeout receiving the message " + std::string(shown) + " from " +
             options_.remote_host);
        co_return false;
      case net::ReadStatus::stopping:
        fail("451 4.3.0 retrieval interrupted: maild is stopping");
        co_return false;
      default:
        fail("451 4.4.2 lost connection with " + options_.remote_host +
             " while receiving the message " + std::string(shown));
        co_return false;
    }
    const auto used = reader.feed(bytes);
    if (used < bytes.size()) conn_.unread(std::string_view(bytes).substr(used));
    if (reader.problem() == DataReader::Problem::too_big) {
      fail("451 4.3.4 transfer of " + std::string(shown) + " from " + options_.remote_host +
           " aborted: over the size limit");
      co_return false;
    }
  }
  co_return true;
}

asio::awaitable<void> ClientSession::quit() {
  if ((!usable() && !may_quit_) || conn_.stopping()) co_return;
  command("QUIT");
  const auto bye = co_await read_reply(options_.timeouts.rset, "QUIT");
  (void)bye;  // the messages are settled; the goodbye changes nothing
  co_await conn_.close(options_.timeouts.rset);
}

// After a transaction that got no recipients or no DATA: the next MAIL needs a clean state.
asio::awaitable<void> ClientSession::reset() {
  command("RSET");
  const auto done = co_await read_reply(options_.timeouts.rset, "RSET");
  if (done && done->kind() != 2) fail_with(*done, "RSET");
}

// The message dot-stuffed (RFC 5321 4.5.2) and ended with CRLF.CRLF, in
// blocks; the final dot rides in the last one.
asio::awaitable<bool> ClientSession::send_content(const std::string& text, bool& final_dot_sent) {
  std::string block;
  std::size_t position = 0;
  while (position < text.size() || !final_dot_sent) {
    block.clear();
    while (position < text.size() && block.size() < data_block_size.bytes) {
      const auto newline = text.find('\n', position);
      const auto end = newline == std::string::npos ? text.size() : newline + 1;
      if (text[position] == '.') block += '.';
      block.append(text, position, end - position);
      position = end;
    }
    const bool last = position >= text.size();
    if (last) {
      if (!text.empty() && !text.ends_with("\r\n")) block += "\r\n";
      block += ".\r\n";
      final_dot_sent = true;
    }
    if (conn_.stopping()) {
      fail("451 4.3.0 delivery interrupted: maild is stopping");
      co_return false;
    }
    const bool written = co_await conn_.send(block, options_.timeouts.data_block);
    if (!written) {
      fail("451 4.4.2 lost connection with " + options_.remote_host + " while sending the message");
      co_return false;
    }
  }
  co_return true;
}

// ---- replies, commands and outcomes ----

asio::awaitable<std::optional<ServerReply>> ClientSession::read_reply(
    Seconds timeout, std::string_view waiting_for) {
  ReplyParser parser;
  // The timeout is for the whole reply, however slowly its bytes trickle in.
  const auto deadline = net::Connection<Socket>::Clock::now() + timeout;
  for (;;) {
    auto input = co_await conn_.read_line_by(timeout, deadline);
    switch (input.status) {
      case net::ReadStatus::line:
        break;
      case net::ReadStatus::too_long:
        fail("451 4.5.0 malformed reply from " + options_.remote_host + " to " +
             std::string(waiting_for) + ": reply line too long");
        co_return std::nullopt;
      case net::ReadStatus::closed:
        fail("451 4.4.2 lost connection with " + options_.remote_host + " while waiting for " +
             std::string(waiting_for));
        co_return std::nullopt;
      case net::ReadStatus::timed_out:
        fail("451 4.4.2 timeout after " + std::to_string(timeout.count()) + "s waiting for " +
             std::string(waiting_for) + " from " + options_.remote_host);
        co_return std::nullopt;
      case net::ReadStatus::stopping:
        fail("451 4.3.0 delivery interrupted: maild is stopping");
        co_return std::nullopt;
    }
    answered_ = true;
    const auto status = parser.feed(input.text);
    if (status == ReplyParser::Status::malformed) {
      log().info("< {} (malformed)", input.text.substr(0, 200));
      fail("451 4.5.0 malformed reply from " + options_.remote_host + " to " +
           std::string(waiting_for) + ": " + parser.problem());
      co_return std::nullopt;
    }
    // A reply to SOURCE or GET may repeat the token, a secret (SOURCE-GET.md 6).
    if (secret_.empty())
      log().debug("< {}", input.text);
    else
      log().debug("< {}", redact_token(input.text, secret_));
    if (status == ReplyParser::Status::complete) co_return parser.take();
  }
}

void ClientSession::command(const std::string& line) {
  log().debug("> {}", line);
  conn_.queue(line + "\r\n");
}

void ClientSession::fail(std::string reply) {
  if (trouble_) return;  // the first problem is the cause; later ones follow from it
  log().info("session with {} ends: {}", options_.remote_host, reply);
  trouble_ = SessionTrouble{std::move(reply), answered_ ? options_.remote_host : "", false};
}

void ClientSession::fail_with(const ServerReply& reply, std::string_view in_reply_to) {
  if (trouble_) return;
  fail(as_temporary(reply) + " (in reply to " + std::string(in_reply_to) + ")");
  may_quit_ = reply.code != 421;  // after 421 the server closes by itself
}

void ClientSession::decline(std::string reply) {
  if (trouble_) return;
  fail(std::move(reply));
  may_quit_ = true;  // our own refusal: the connection is fine for a goodbye
}

std::string ClientSession::mail_command(const OutboundMessage& message) const {
  std::string line = "MAIL FROM:<" + message.reverse_path + ">";
  if (extensions_.size) line += " SIZE=" + std::to_string(message.text.size());
  if (message.eight_bit && extensions_.eight_bit_mime) line += " BODY=8BITMIME";
  if (message.smtputf8) line += " SMTPUTF8";
  if (extensions_.dsn) {
    if (message.ret == store::DsnReturn::full) line += " RET=FULL";
    if (message.ret == store::DsnReturn::headers) line += " RET=HDRS";
    if (!message.envid.empty()) line += " ENVID=" + xtext_encode(message.envid);
  }
  return line;
}

std::string ClientSession::rcpt_command(const store::QueueRecipient& recipient) const {
  std::string line = "RCPT TO:<" + recipient.address + ">";
  if (extensions_.dsn) {
    if (recipient.notify != 0) line += " NOTIFY=" + notify_value(recipient.notify);
    if (const auto orcpt = orcpt_value(recipient.orcpt); !orcpt.empty()) line += " ORCPT=" + orcpt;
  }
  return line;
}

void ClientSession::settle(Transfer& transfer, std::size_t index, Kind kind,
                           std::string reply) const {
  auto& outcome = transfer.outcomes[index];
  outcome.kind = kind;
  outcome.reply = std::move(reply);
  outcome.remote_host = options_.remote_host;
  transfer.settled[index] = true;
}

void ClientSession::settle_by(Transfer& transfer, std::size_t index,
                              const ServerReply& reply) const {
  switch (reply.kind()) {
    case 2:
      settle(transfer, index, Kind::delivered, reply.summary());
      return;
    case 5:
      settle(transfer, index, Kind::permanent, reply.summary());
      return;
    default:
      settle(transfer, index, Kind::temporary, as_temporary(reply));
      return;
  }
}

// The session broke before the server decided: the recipients keep the
// trouble as their outcome until another server settles them.
void ClientSession::leave_unsettled(Transfer& transfer) const {
  for (std::size_t i = 0; i < transfer.outcomes.size(); ++i) {
    if (transfer.settled[i]) continue;
    transfer.outcomes[i].kind = Kind::temporary;
    transfer.outcomes[i].reply = trouble_->reply;
    transfer.outcomes[i].remote_host = trouble_->remote_host;
  }
}

}  // namespace maild::smtp
