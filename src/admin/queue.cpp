// mailctl queue: the outbound queue, read and changed through QueueAdmin; inject through
// MailStore::deliver. Trust: ids, filters and addresses come from the command line and are
// checked here; envelope and reply text came from the network and is escaped by Output.
#include <chrono>
#include <iostream>
#include <iterator>

#include "address.hpp"
#include "command.hpp"
#include "maild/core/text.hpp"
#include "message_format.hpp"
#include "output.hpp"

namespace maild::admin {

namespace {

// What `queue bounce` gives as every bounced recipient's reply, and maild's notice repeats.
constexpr std::string_view bounce_reason = "5.0.0 bounced by the administrator";

store::UnixTime unix_now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string_view state_name(store::RecipientState state) {
  switch (state) {
    case store::RecipientState::queued:
      return "queued";
    case store::RecipientState::delivered:
      return "delivered";
    case store::RecipientState::failed:
      return "failed";
  }
  return "unknown";
}

std::optional<store::RecipientState> parse_state(std::string_view name) {
  for (const auto state : {store::RecipientState::queued, store::RecipientState::delivered,
                           store::RecipientState::failed}) {
    if (name == state_name(state)) return state;
  }
  return std::nullopt;
}

std::string_view ret_name(store::DsnReturn ret) {
  switch (ret) {
    case store::DsnReturn::unspecified:
      return "unspecified";
    case store::DsnReturn::full:
      return "full";
    case store::DsnReturn::headers:
      return "headers";
  }
  return "unknown";
}

// "failure,delay" as in RCPT TO's NOTIFY=; "" when it was not given.
std::string notify_names(unsigned notify) {
  std::string names;
  const std::pair<unsigned, std::string_view> bits[] = {{store::notify_never, "never"},
                                                        {store::notify_success, "success"},
                                                        {store::notify_failure, "failure"},
                                                        {store::notify_delay, "delay"}};
  for (const auto& [bit, name] : bits) {
    if ((notify & bit) == 0) continue;
    if (!names.empty()) names += ",";
    names += name;
  }
  return names;
}

std::string yes_no(bool value) { return value ? "yes" : "no"; }

// An absent value: "-" in a table, so columns stay readable; "" for scripts.
std::string absent_as(const Output& out, std::string text) {
  return text.empty() && !out.json() ? "-" : text;
}

std::string sender(const std::string& reverse_path) {
  return reverse_path.empty() ? "<>" : reverse_path;
}

// "30s", "5m", "2h", "5d": the durations mail.conf uses.
std::optional<std::chrono::seconds> duration_seconds(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  text.remove_suffix(1);
  if (text == "0") return std::chrono::seconds{0};
  const auto count = positive_number(text);
  // Bounded so that the multiplication cannot overflow: a hundred years is plenty.
  if (!count || *count > std::int64_t{100} * 366 * 86400 / unit) return std::nullopt;
  return std::chrono::seconds{*count * unit};
}

store::QueueId queue_id(const std::string& text) {
  const auto id = positive_number(text);
  if (!id) throw RequestError("bad id '" + text + "': a queue id is a positive number");
  return *id;
}

store::QueuedMessage find_queued(const Request& request) {
  const store::QueueId id = queue_id(request.args[0]);
  auto message = request.store->queue_admin().get(id);
  if (!message) throw RequestError("no queued message with id " + request.args[0]);
  return std::move(*message);
}

}  // namespace

void queue_list(Request& request) {
  store::QueueFilter filter;
  if (!request.option("domain").empty()) filter.domain = domain_name(request.option("domain"));
  if (!request.option("status").empty()) {
    filter.state = parse_state(request.option("status"));
    if (!filter.state) {
      throw UsageError("--status is queued, delivered or failed, not '" + request.option("status") +
                       "'");
    }
  }
  if (!request.option("older-than").empty()) {
    const auto age = duration_seconds(request.option("older-than"));
    if (!age) {
      throw UsageError("--older-than wants a duration such as 30s, 5m, 2h or 5d, not '" +
                       request.option("older-than") + "'");
    }
    filter.queued_before = unix_now() - *age;
  }
  const auto limit = positive_number(request.option("limit"));
  if (!limit)
    throw UsageError("--limit wants a positive number, not '" + request.option("limit") + "'");
  filter.limit = static_cast<std::size_t>(*limit);

  Table table{{{"ID", "id", true},
               {"QUEUED AT", "queued_at"},
               {"FROM", "from"},
               {"SIZE", "size", true},
               {"QUEUED", "queued", true},
               {"DELIVERED", "delivered", true},
               {"FAILED", "failed", true},
               {"NEXT ATTEMPT", "next_attempt"},
               {"RECIPIENTS", "recipients"}},
              {}};
  for (const store::QueuedMessage& message : request.store->queue_admin().list(filter)) {
    std::int64_t counts[3] = {0, 0, 0};
    std::optional<store::UnixTime> next;
    std::string addresses;
    for (const store::QueueRecipient& recipient : message.recipients) {
      ++counts[static_cast<int>(recipient.state)];
      if (recipient.state == store::RecipientState::queued)
        next = std::min(next.value_or(recipient.next_attempt), recipient.next_attempt);
      addresses += (addresses.empty() ? "" : ", ") + recipient.address;
    }
    table.rows.push_back({message.id, iso_time(message.queued_at), sender(message.reverse_path),
                          static_cast<std::int64_t>(message.size), counts[0], counts[1], counts[2],
                          absent_as(request.out, next ? iso_time(*next) : ""), addresses});
  }
  request.out.table(table);
}

void queue_show(Request& request) {
  const store::QueuedMessage message = find_queued(request);
  const Record envelope = {
      {"id", "id", message.id},
      {"queued at", "queued_at", iso_time(message.queued_at)},
      {"from", "from", sender(message.reverse_path)},
      {"size", "size", static_cast<std::int64_t>(message.size)},
      {"envid", "envid", absent_as(request.out, message.envid)},
      {"ret", "ret", std::string(ret_name(message.ret))},
      {"smtputf8", "smtputf8", yes_no(message.smtputf8)},
      {"8bitmime", "8bitmime", yes_no(message.eight_bit)},
      {"content hash", "content_hash", message.content_hash},
  };
  const bool json = request.out.json();
  Table recipients{{{"ADDRESS", "address"},
                    {"STATE", "state"},
                    {"ATTEMPTS", "attempts", true},
                    {"NEXT ATTEMPT", "next_attempt"},
                    {"LEASE", "lease"},
                    {"NOTIFY", "notify"},
                    {"NOTICE", "notice_owed"},
                    {"REMOTE HOST", "remote_host"},
                    {"LAST REPLY", "last_reply"}},
                   {}};
  // Scripts get the lease's parts and ORCPT apart; people get them in one column or not at all.
  if (json) {
    recipients.columns.push_back({"", "lease_owner"});
    recipients.columns.push_back({"", "lease_expires"});
    recipients.columns.push_back({"", "orcpt"});
    recipients.columns.push_back({"", "delay_warned"});
  }
  const store::UnixTime now = unix_now();
  for (const store::QueueRecipient& recipient : message.recipients) {
    const bool queued = recipient.state == store::RecipientState::queued;
    std::string lease;
    if (!recipient.lease_owner.empty()) {
      lease = recipient.lease_owner + (recipient.lease_expires >= now ? " until " : " lapsed ") +
              iso_time(recipient.lease_expires);
    }
    std::vector<Value> row = {
        recipient.address,
        std::string(state_name(recipient.state)),
        std::int64_t{recipient.attempts},
        absent_as(request.out, queued ? iso_time(recipient.next_attempt) : ""),
        absent_as(request.out, lease),
        absent_as(request.out, notify_names(recipient.notify)),
        absent_as(request.out, recipient.notice_owed ? "owed" : ""),
        absent_as(request.out, recipient.remote_host),
        absent_as(request.out, recipient.last_reply)};
    if (json) {
      row.emplace_back(recipient.lease_owner);
      row.emplace_back(recipient.lease_owner.empty() ? "" : iso_time(recipient.lease_expires));
      row.emplace_back(recipient.orcpt);
      row.emplace_back(yes_no(recipient.delay_warned));
    }
    recipients.rows.push_back(std::move(row));
  }
  request.out.record_with_table(envelope, "recipients", recipients);
}

void queue_retry(Request& request) {
  const bool all = !request.option("all").empty();
  if (all == !request.args.empty()) {
    throw UsageError("queue retry wants either an ID or --all (see mailctl queue retry --help)");
  }
  if (all) {
    const std::size_t count = request.store->queue_admin().retry(std::nullopt);
    request.out.confirm("made " + std::to_string(count) + " queued " +
                        (count == 1 ? "recipient" : "recipients") + " due now");
    return;
  }
  const store::QueuedMessage message = find_queued(request);
  const std::size_t count = request.store->queue_admin().retry(message.id);
  request.out.confirm("made " + counted(count, "recipient") + " of queued message " +
                      std::to_string(message.id) + " due now");
}

void queue_delete(Request& request) {
  const store::QueueId id = queue_id(request.args[0]);
  if (!request.store->queue_admin().remove(id))
    throw RequestError("no queued message with id " + request.args[0]);
  request.out.confirm("deleted queued message " + std::to_string(id));
}

void queue_bounce(Request& request) {
  const store::QueuedMessage message = find_queued(request);
  const std::size_t count = request.store->queue_admin().bounce(message.id, bounce_reason);
  std::string confirmation =
      "bounced " + counted(count, "recipient") + " of queued message " + std::to_string(message.id);
  // Whether a notice is owed is the store's decision (sender, NOTIFY); report what it decided.
  const auto after = request.store->queue_admin().get(message.id);
  bool owed = false;
  if (after) {
    for (const store::QueueRecipient& recipient : after->recipients) owed |= recipient.notice_owed;
  }
  confirmation += owed ? "; maild will send " + sender(message.reverse_path) + " a notice"
                       : "; no notice is owed";
  request.out.confirm(confirmation);
}

void queue_inject(Request& request) {
  if (request.option("to").empty())
    throw UsageError("queue inject needs --to ADDRESS[,ADDRESS...]");
  std::vector<store::OutboundRecipient> recipients;
  std::string_view list = request.option("to");
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    recipients.push_back({mailbox_address(list.substr(0, comma)), 0, ""});
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  const std::string from =
      request.option("from").empty() ? "" : mailbox_address(request.option("from"));

  std::cin >> std::noskipws;
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  if (input.empty()) throw RequestError("no message on standard input");
  store::NewMessage message;
  message.reverse_path = from;
  message.content = to_crlf(input);
  message.outbound = std::move(recipients);
  const store::StoredMessage stored = request.store->mail().deliver(message);

  const std::int64_t id = stored.queued.value();
  if (request.out.json()) {
    request.out.record({{"", "id", id},
                        {"", "message_id", stored.message_id},
                        {"", "content_hash", stored.content_hash}});
  } else {
    request.out.confirm("queued as id " + std::to_string(id));
  }
}

}  // namespace maild::admin
