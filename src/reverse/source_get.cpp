// SOURCE and GET in the SMTP server; see source_get.hpp.
#include "reverse/source_get.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>

#include "maild/config/limits.hpp"
#include "maild/core/text.hpp"
#include "net/auth_throttle.hpp"
#include "reverse/get_authorization.hpp"
#include "reverse/policy.hpp"
#include "smtp/dot_stuffer.hpp"
#include "smtp/token.hpp"

namespace maild::reverse {
namespace asio = boost::asio;
namespace status = smtp::status;
using smtp::Flow;
using smtp::Verdict;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SourceGetSession final : public smtp::ExtensionSession {
 public:
  explicit SourceGetSession(const SourceGet& owner) : owner_(owner) {}

  // ---- the policy for unverified mail (SOURCE-GET.md 5) ----

  asio::awaitable<Verdict> on_mail(smtp::SessionView&, const smtp::Mail&) override {
    unverified_ = config::UnverifiedPolicy::accept;
    co_return Verdict{};
  }

  // The strictest policy among the recipients' domains decides for the
  // message. Our own clients' mail is not subject to it.
  asio::awaitable<Verdict> on_rcpt(smtp::SessionView& session, const smtp::Transaction&,
                                   const smtp::RecipientFacts& recipient) override {
    if (session.relay_allowed() || recipient.resolution.kind != store::Resolution::Kind::mailboxes)
      co_return Verdict{};
    const auto lookup = [&policies = owner_.policies(),
                         domain = recipient.address.substr(recipient.address.rfind('@') + 1)] {
      return policies.policy(domain);
    };
    const auto policy = co_await smtp::store_call(session, lookup, "reading a domain policy");
    if (!policy)
      co_return Verdict::defer(status::local_error,
                               "temporary failure looking up the recipient, try again later");
    unverified_ = stricter(unverified_, effective(*policy, owner_.settings().reverse));
    co_return Verdict{};
  }

  // Bounces cannot be verified at all (they travel by DATA), so reject only tags them.
  asio::awaitable<Verdict> on_content(smtp::SessionView& session,
                                      const smtp::Transaction& transaction,
                                      const std::string&) override {
    auto policy = unverified_;
    if (policy == config::UnverifiedPolicy::reject && transaction.mail.reverse_path.is_null())
      policy = config::UnverifiedPolicy::tag;
    switch (policy) {
      case config::UnverifiedPolicy::accept:
        break;
      case config::UnverifiedPolicy::tag:
        co_return Verdict::proceed_with(unverified_result(session.hostname()));
      case config::UnverifiedPolicy::reject:
        session.log().info("refused unverified mail from <{}>: policy reject",
                           transaction.mail.reverse_path.address());
        co_return Verdict::refuse(status::refused,
                                  "unverified mail is refused here: send it with SOURCE");
    }
    co_return Verdict{};
  }

  asio::awaitable<Flow> handle(smtp::VerbContext& context, smtp::Command& command) override {
    if (command.verb == smtp::Verb::source) {
      const auto flow = co_await source(context, command);
      co_return flow;
    }
    const auto flow = co_await get(context, command);
    co_return flow;
  }

 private:
  // SOURCE-GET.md 2: the envelope is recorded durably, the message is fetched
  // later by GET from the MX of the sender's domain. Ends the transaction like DATA.
  asio::awaitable<Flow> source(smtp::VerbContext& context, smtp::Command& command) {
    const auto& settings = owner_.settings();
    const auto& token = std::get<smtp::Token>(command.parsed).value;
    auto& open = *context.transaction();
    if (open.chunks) co_return refuse(context, status::bad_sequence, "SOURCE after BDAT");
    if (open.recipients.empty())
      co_return refuse(context, status::bad_sequence, "no valid recipients");
    const auto& sender = open.mail.reverse_path;
    if (sender.is_null())
      co_return refuse(context, status::syntax_error,
                       "a bounce cannot be fetched back: send it with DATA");
    if (!settings.reverse.accept_source)
      co_return refuse(context, status::refused,
                       "SOURCE is not accepted here: send the message with DATA");
    if (sender.domain.empty() || sender.domain.front() == '[')
      co_return refuse(context, status::refused,
                       "SOURCE needs a sender domain with an MX: send it with DATA");
    // D is the MX of the recipients' domains: it fetches for its own mailboxes only.
    if (open.local.size() != open.recipients.size())
      co_return refuse(context, status::refused,
                       "SOURCE is for local recipients only: send it with DATA");
    if (open.mail.size && *open.mail.size > settings.smtp.max_message_size.bytes)
      co_return refuse(context, status::too_big, "message size exceeds fixed maximum message size");

    auto transaction = context.end_transaction();
    const auto& from = transaction.mail.reverse_path;
    store::NewRetrieval retrieval;
    retrieval.token = token;
    retrieval.reverse_path = from.address();
    retrieval.recipients = std::move(transaction.local);
    retrieval.declared_size = transaction.mail.size;
    retrieval.client_address = context.env().remote_address;
    retrieval.helo = context.helo() ? *context.helo() : "";
    retrieval.trace = context.trace(transaction);
    const auto add = [&intake = owner_.intake(), &retrieval,
                      per_domain = settings.reverse.max_pending_per_domain,
                      per_client = settings.reverse.max_pending_per_client] {
      return intake.add_retrieval(retrieval, per_domain, per_client);
    };
    const auto what = "recording SOURCE " + smtp::shown_token(token);
    const auto added =
        co_await smtp::store_call(context, add, what, status::local_error,
                                  "temporary failure recording the retrieval, try again later");
    if (!added) co_return Flow::proceed;
    using Outcome = store::RetrievalAdded::Outcome;
    switch (added->outcome) {
      case Outcome::added:
      case Outcome::already_added:
        break;
      case Outcome::token_taken:
        context.log().info("SOURCE {} from <{}> refused: the token is taken",
                           smtp::shown_token(token), retrieval.reverse_path);
        co_return refuse(context, status::refused, "token refused: send the message with DATA");
      case Outcome::domain_full:
        context.log().info("SOURCE {} from <{}> deferred: too many pending retrievals for {}",
                           smtp::shown_token(token), retrieval.reverse_path, from.domain);
        context.reply(status::too_many_pending,
                      "too many pending retrievals for your domain, try again later");
        co_return Flow::proceed;
      case Outcome::client_full:
        context.log().info("SOURCE {} from <{}> deferred: too many pending retrievals from {}",
                           smtp::shown_token(token), retrieval.reverse_path,
                           retrieval.client_address);
        context.reply(status::too_many_pending,
                      "too many pending retrievals from your address, try again later");
        co_return Flow::proceed;
    }
    context.log().info("SOURCE {} from <{}>: {}, retrieval {}{}", smtp::shown_token(token),
                       retrieval.reverse_path, counted(retrieval.recipients.size(), "recipient"),
                       added->id, added->outcome == Outcome::already_added ? " (again)" : "");
    context.reply(status::ok, token + " accepted for retrieval", token);
    owner_.woke_retrievals();
    co_return Flow::proceed;
  }

  // SOURCE-GET.md 3: sends a message we offered by SOURCE to an MX of one of
  // its recipient domains, framed like DATA in the other direction.
  asio::awaitable<Flow> get(smtp::VerbContext& context, smtp::Command& command) {
    const auto& settings = owner_.settings();
    const auto& env = context.env();
    const auto& token = std::get<smtp::Token>(command.parsed).value;
    const auto find = [&pickups = owner_.pickups(), &token] { return pickups.find_pickup(token); };
    const auto what = "looking up GET " + smtp::shown_token(token);
    const auto found = co_await smtp::store_call(context, find, what, status::unavailable,
                                                 "temporarily unavailable, try again later");
    if (!found) co_return Flow::proceed;
    const auto& pickup = *found;
    if (!pickup || !servable(*pickup, unix_now(), settings.reverse)) {
      const auto flow = co_await unknown_token(context, token);
      co_return flow;
    }

    std::vector<std::string> domains;
    for (const auto& recipient : pickup->recipients) domains.push_back(recipient.domain);
    // A fetcher usually sends many GETs for its own domains: one DNS check
    // per domain and session is enough (the client's address cannot change).
    const auto known = std::find_first_of(domains.begin(), domains.end(),
                                          authorised_domains_.begin(), authorised_domains_.end());
    Authorization authorization{Authorization::Verdict::granted, "", ""};
    if (known != domains.end()) {
      authorization.detail = "MX of " + *known + ", checked before";
      authorization.domain = *known;
    } else {
      const auto checked = co_await authorize_get(owner_.resolver(), settings.reverse.trusted_peers,
                                                  domains, env.remote);
      authorization = checked;
      if (!authorization.domain.empty()) authorised_domains_.push_back(authorization.domain);
    }
    switch (authorization.verdict) {
      case Authorization::Verdict::granted:
        break;
      case Authorization::Verdict::refused:
        context.log().info("GET {} from {} refused: {}", smtp::shown_token(token),
                           env.remote_address, authorization.detail);
        co_return refuse(context, status::refused, "you are not authorised to fetch this message");
      case Authorization::Verdict::unknown:
        context.log().info("GET {} from {} deferred: {}", smtp::shown_token(token),
                           env.remote_address, authorization.detail);
        context.reply(status::unavailable, "cannot check your authorisation now, try again later");
        co_return Flow::proceed;
    }

    const auto read = [&pickups = owner_.pickups(), id = pickup->id] {
      return pickups.pickup_text(id);
    };
    const auto what_read = "reading GET " + smtp::shown_token(token);
    const auto text = co_await smtp::store_call(context, read, what_read, status::unavailable,
                                                "temporarily unavailable, try again later");
    if (!text) co_return Flow::proceed;
    if (!*text) {  // purged between the two reads
      const auto flow = co_await unknown_token(context, token);
      co_return flow;
    }

    context.reply(status::start_transfer, token + " message follows", token);
    smtp::DotStuffer stuffer;
    const std::array<const std::string*, 2> parts{&(*text)->trace, &(*text)->content};
    for (const std::string* part : parts) {
      for (std::size_t at = 0; at < part->size(); at += limits::get_chunk.bytes) {
        context.queue(stuffer.stuff(std::string_view(*part).substr(at, limits::get_chunk.bytes)));
        const bool sent = co_await context.flush(settings.smtp.data_timeout);
        if (!sent) {
          context.log().info("GET {}: the connection failed while sending",
                             smtp::shown_token(token));
          co_return Flow::close;
        }
      }
    }
    context.queue(stuffer.finish());
    context.reply(status::ok, token + " transferred", token);
    const bool sent = co_await context.flush(settings.smtp.data_timeout);
    if (!sent) {
      context.log().info("GET {}: the connection failed before the final reply",
                         smtp::shown_token(token));
      co_return Flow::close;
    }
    // Only now, after the final 250 went out, is the message the receiver's.
    const auto mark = [&pickups = owner_.pickups(), id = pickup->id] {
      return pickups.mark_transferred(id);
    };
    const auto marked = co_await smtp::store_call(context, mark, "recording a GET");
    if (marked)
      context.log().info("GET {} from {} ({}): {} octets transferred{}", smtp::shown_token(token),
                         env.remote_address, authorization.detail, pickup->size,
                         *marked ? "" : " (the pickup had expired meanwhile)");
    else
      context.log().warn("GET {}: transferred, but the store did not record it",
                         smtp::shown_token(token));
    co_return Flow::proceed;
  }

  // The same 550 for unknown, expired and purged tokens, slower with each one
  // from this address (at max_unknown_tokens within a minute, the longest
  // delay). Never a refusal of the connection (SOURCE-GET.md 3): a forger who
  // announces made-up tokens in our name must not make us refuse the genuine
  // GETs of the server he announced them to.
  asio::awaitable<Flow> unknown_token(smtp::VerbContext& context, const std::string& token) {
    const auto& env = context.env();
    auto& throttle = owner_.unknown_tokens();
    throttle.record_failure(env.remote);
    context.log().info("GET {} from {}: unknown token", smtp::shown_token(token),
                       env.remote_address);
    const auto delay = unknown_token_delay(throttle.failures(env.remote),
                                           owner_.settings().reverse.max_unknown_tokens);
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, delay);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    co_return refuse(context, status::unknown_token, "unknown token");
  }

  static Flow refuse(smtp::VerbContext& context, smtp::Status status, const std::string& text) {
    context.reply(status, text);
    return Flow::proceed;
  }

  const SourceGet& owner_;
  config::UnverifiedPolicy unverified_ = config::UnverifiedPolicy::accept;
  std::vector<std::string> authorised_domains_;  // GET: recipient domains this client is an MX of
};

}  // namespace

std::chrono::milliseconds unknown_token_delay(unsigned failures, unsigned max_unknown_tokens) {
  if (failures >= max_unknown_tokens) return limits::unknown_token_delay_max;
  return std::min(limits::unknown_token_delay * failures, limits::unknown_token_delay_max);
}

SourceGet::SourceGet(const config::Settings& settings, store::RetrievalIntake& intake,
                     store::PickupWindow& pickups, store::DomainPolicies& policies,
                     net::AuthThrottle& unknown_tokens, dns::Resolver* resolver,
                     std::function<void()> retrieval_wakeup)
    : settings_(settings),
      intake_(intake),
      pickups_(pickups),
      policies_(policies),
      unknown_tokens_(unknown_tokens),
      resolver_(resolver),
      retrieval_wakeup_(std::move(retrieval_wakeup)) {}

std::vector<smtp::ExtensionVerb> SourceGet::verbs() const {
  return {
      {smtp::Verb::source,
       "SOURCE",
       {.mx_only = true, .needs_transaction = true, .ends_group = true}},
      {smtp::Verb::get, "GET", {.mx_only = true, .needs_ehlo = true, .outside_transaction = true}},
  };
}

// The keyword stands for both verbs: we answer GET whenever we may send
// SOURCE, and SOURCE itself is refused with 550 when accept_source is off.
void SourceGet::keywords(const smtp::SessionView& session, std::vector<std::string>& out) const {
  if (session.env().service == net::Service::smtp &&
      (settings_.reverse.accept_source || settings_.reverse.use_source))
    out.emplace_back("SOURCE");
}

std::unique_ptr<smtp::ExtensionSession> SourceGet::open(const smtp::SessionView&) const {
  return std::make_unique<SourceGetSession>(*this);
}

}  // namespace maild::reverse
