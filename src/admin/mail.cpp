// mailctl mail: deliveries, read through AdminStore, written (inject) by MailStore::deliver.
// Trust: message text is anybody's; only show/export print it raw, which is their purpose.
#include <iostream>
#include <iterator>

#include "address.hpp"
#include "command.hpp"
#include "message_format.hpp"
#include "output.hpp"

namespace maild::admin {

namespace {

std::string_view status_name(store::DeliveryStatus status) {
  switch (status) {
    case store::DeliveryStatus::fresh:
      return "new";
    case store::DeliveryStatus::retrieved:
      return "retrieved";
    case store::DeliveryStatus::deleted:
      return "deleted";
  }
  return "unknown";
}

// The columns of mail list, which are also the first fields of mail show.
const std::vector<Column>& summary_columns() {
  static const std::vector<Column> columns = {
      {"ID", "id", true},   {"RECEIVED", "received"}, {"MAILBOX", "mailbox"},
      {"FROM", "from"},     {"SIZE", "size", true},   {"STATUS", "status"},
      {"ORIGIN", "origin"}, {"SUBJECT", "subject"},
  };
  return columns;
}

std::vector<Value> summary_row(const store::MailSummary& mail) {
  return {mail.id, iso_time(mail.received_at), mail.mailbox,
          mail.reverse_path.empty() ? "<>" : mail.reverse_path,
          static_cast<std::int64_t>(mail.size), std::string(status_name(mail.status)),
          // verified: fetched by GET from the MX of the sender's domain (SOURCE/GET).
          std::string(mail.verified ? "verified" : "unverified"), mail.subject};
}

store::MailDetail find_mail(const Request& request) {
  const std::optional<std::int64_t> id = positive_number(request.args[0]);
  if (!id)
    throw RequestError("bad id '" + request.args[0] + "': a delivery id is a positive number");
  std::optional<store::MailDetail> mail = request.admin().get_mail(*id);
  if (!mail) throw RequestError("no delivery with id " + request.args[0]);
  return std::move(*mail);
}

store::MailboxId mailbox_id(store::AdminStore& admin, const std::string& address) {
  for (const store::Mailbox& mailbox : admin.list_users(std::string(domain_of(address)))) {
    if (mailbox.address == address) return mailbox.id;
  }
  throw RequestError("no mailbox " + address);
}

}  // namespace

void mail_list(Request& request) {
  const std::optional<std::int64_t> last = positive_number(request.option("last"));
  if (!last)
    throw UsageError("--last wants a positive number, not '" + request.option("last") + "'");
  std::optional<std::string> mailbox;
  if (!request.option("mailbox").empty()) mailbox = mailbox_address(request.option("mailbox"));
  Table table{summary_columns(), {}};
  for (const store::MailSummary& mail :
       request.admin().list_mail(static_cast<std::size_t>(*last), mailbox)) {
    table.rows.push_back(summary_row(mail));
  }
  request.out.table(table);
}

void mail_show(Request& request) {
  const store::MailDetail mail = find_mail(request);
  Record record;
  const std::vector<Value> row = summary_row(mail.summary);
  for (std::size_t i = 0; i < row.size(); ++i) {
    record.push_back({summary_columns()[i].key, summary_columns()[i].key, row[i]});
  }
  record.push_back({"uidl", "uidl", mail.summary.uidl});
  record.push_back({"content hash", "content_hash", mail.content_hash});
  const std::string message = mail.trace + mail.content;
  if (request.out.json()) {
    record.push_back({"", "message", message});
    request.out.record(record);
  } else {
    request.out.record(record);
    request.out.raw("\n");
    request.out.raw(message);
  }
}

void mail_export(Request& request) {
  const std::string& format = request.option("format");
  if (format != "eml" && format != "mbox")
    throw UsageError("--format is eml or mbox, not '" + format + "'");
  const store::MailDetail mail = find_mail(request);
  const std::string message = mail.trace + mail.content;
  // Raw bytes whatever --json says: an export is meant to be redirected into a file.
  request.out.raw(format == "eml"
                      ? message
                      : mboxrd_entry(mail.summary.reverse_path, mail.summary.received_at, message));
}

void mail_inject(Request& request) {
  if (request.option("mailbox").empty()) throw UsageError("mail inject needs --mailbox ADDRESS");
  const std::string mailbox = mailbox_address(request.option("mailbox"));
  const std::string sender =
      request.option("from").empty() ? "" : mailbox_address(request.option("from"));
  const store::MailboxId id = mailbox_id(request.admin(), mailbox);

  std::cin >> std::noskipws;
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  if (input.empty()) throw RequestError("no message on standard input");
  store::NewMessage message;
  message.reverse_path = sender;
  message.mailboxes = {id};
  message.trace = "Return-Path: <" + sender + ">\r\n";
  message.content = to_crlf(input);
  const store::StoredMessage stored = request.store->mail().deliver(message);

  const std::int64_t delivery = stored.deliveries.at(0);
  if (request.out.json()) {
    request.out.record({{"", "id", delivery},
                        {"", "message_id", stored.message_id},
                        {"", "content_hash", stored.content_hash}});
  } else {
    request.out.confirm("delivered to " + mailbox + " as id " + std::to_string(delivery));
  }
}

}  // namespace maild::admin
