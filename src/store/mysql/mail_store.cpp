// Acceptance as one transaction each: the content once per hash, one delivery row per mailbox,
// and one queue entry with its recipients for the outbound part.
// Trust: message bytes are opaque; mailbox ids come from resolve() but may have been deleted
// since; outbound addresses were validated by the session, and are only split here.
#include <set>

#include "maild/core/hash.hpp"
#include "store/addressing.hpp"
#include "store/message_fields.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

std::int64_t as_size(std::size_t octets) { return static_cast<std::int64_t>(octets); }

struct QueuedAddress {
  const OutboundRecipient* recipient;
  std::string address;  // local@domain, domain lowercased
  std::string domain;
};

// The outbound recipients once each (the first spelling wins), checked before anything is written.
// `seen` holds the addresses already taken (folded), and gains these.
std::vector<QueuedAddress> distinct_outbound(const std::vector<OutboundRecipient>& outbound,
                                             std::set<std::string>& seen) {
  std::vector<QueuedAddress> distinct;
  for (const OutboundRecipient& recipient : outbound) {
    auto split = split_address(recipient.address);
    if (!split || split->local.empty()) {
      throw StoreConflict("'" + recipient.address + "' is not an outbound address (local@domain)");
    }
    std::string address = stored_form(*split);
    // The same folding as address_key, so UNIQUE (queue_id, address_key) never trips.
    if (!seen.insert(address_key(address)).second) continue;
    distinct.push_back({&recipient, std::move(address), std::move(split->domain)});
  }
  return distinct;
}

QueueId queue_outbound(Connection& db, const NewMessage& message, MessageId message_id,
                       const std::vector<QueuedAddress>& recipients,
                       const std::vector<QueuedAddress>& delivered, UnixTime now) {
  {
    auto insert = db.prepare(
        "INSERT INTO queue_messages (message_id, reverse_path, envid, ret, smtputf8, eight_bit, "
        "outbound_trace, size, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert->bind(1, message_id)
        .bind_text(2, message.reverse_path)
        .bind_bytes(3, message.envid)
        .bind(4, static_cast<std::int64_t>(message.ret))
        .bind(5, message.smtputf8 ? 1 : 0)
        .bind(6, message.eight_bit ? 1 : 0)
        .bind_blob(7, message.outbound_trace)
        .bind(8, as_size(message.outbound_trace.size() + message.content.size()))
        .bind(9, now);
    insert->execute();
  }
  const QueueId queue_id = db.last_insert_id();
  for (const QueuedAddress& recipient : recipients) {
    // Due at once: the first attempt is the delivery engine's next claim.
    auto insert = db.prepare(
        "INSERT INTO queue_recipients (queue_id, address, address_key, domain, notify, orcpt, "
        "next_attempt, last_reply) VALUES (?, ?, ?, ?, ?, ?, ?, '')");
    insert->bind(1, queue_id)
        .bind_text(2, recipient.address)
        .bind_text(3, address_key(recipient.address))
        .bind_text(4, recipient.domain)
        .bind(5, static_cast<std::int64_t>(recipient.recipient->notify))
        .bind_bytes(6, recipient.recipient->orcpt)
        .bind(7, now);
    insert->execute();
  }
  for (const QueuedAddress& recipient : delivered) {
    // Delivered here already: only the success notice is owed.
    auto insert = db.prepare(
        "INSERT INTO queue_recipients (queue_id, address, address_key, domain, notify, orcpt, "
        "state, attempts, next_attempt, last_reply, notice_owed) "
        "VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?, 1)");
    insert->bind(1, queue_id)
        .bind_text(2, recipient.address)
        .bind_text(3, address_key(recipient.address))
        .bind_text(4, recipient.domain)
        .bind(5, static_cast<std::int64_t>(recipient.recipient->notify))
        .bind_bytes(6, recipient.recipient->orcpt)
        .bind(7, now)
        .bind_bytes(8, local_delivery_reply);
    insert->execute();
  }
  return queue_id;
}

}  // namespace

MessageId store_content(Connection& db, const std::string& content, const std::string& content_hash,
                        UnixTime now) {
  // An existing row answers with its own id (LAST_INSERT_ID(id)); the content is not replaced.
  auto insert = db.prepare(
      "INSERT INTO messages (content_hash, size, content, created_at) VALUES (?, ?, ?, ?) "
      "ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)");
  insert->bind_text(1, content_hash)
      .bind(2, as_size(content.size()))
      .bind_blob(3, content)
      .bind(4, now);
  insert->execute();
  return db.last_insert_id();
}

StoredMessage accept_message(Connection& db, const NewMessage& message,
                             const std::string& content_hash) {
  std::vector<MailboxId> mailboxes;
  std::set<MailboxId> unique;
  for (MailboxId id : message.mailboxes) {
    if (unique.insert(id).second) mailboxes.push_back(id);
  }
  std::set<std::string> seen;
  const std::vector<QueuedAddress> outbound = distinct_outbound(message.outbound, seen);
  // A null sender is never owed a notice (RFC 3461 6.1).
  const std::vector<QueuedAddress> delivered = message.reverse_path.empty()
                                                   ? std::vector<QueuedAddress>{}
                                                   : distinct_outbound(message.delivered, seen);
  if (mailboxes.empty() && outbound.empty()) {
    throw StoreConflict("a message needs at least one mailbox or outbound recipient");
  }

  // Check the mailboxes first: a recipient deleted since RCPT fails this message alone. The
  // shared lock keeps it from being deleted before this transaction commits.
  std::vector<std::string> addresses;
  for (MailboxId id : mailboxes) {
    auto query = db.prepare("SELECT address FROM mailboxes WHERE id = ? LOCK IN SHARE MODE");
    query->bind(1, id);
    if (!query->step()) throw StoreConflict("no mailbox with id " + std::to_string(id));
    addresses.push_back(query->column_text(0));
  }

  StoredMessage stored;
  stored.content_hash = content_hash;
  const UnixTime now = unix_now();
  stored.message_id = store_content(db, message.content, content_hash, now);

  const std::int64_t size = as_size(message.trace.size() + message.content.size());
  for (std::size_t i = 0; i < mailboxes.size(); ++i) {
    // Already delivered (a retry after a lost reply): the existing delivery is the answer.
    const std::string uidl = delivery_uidl(addresses[i], stored.content_hash);
    auto insert = db.prepare(
        "INSERT INTO deliveries (mailbox_id, message_id, uidl, reverse_path, trace, size, status, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) "
        "ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)");
    insert->bind(1, mailboxes[i])
        .bind(2, stored.message_id)
        .bind_text(3, uidl)
        .bind_text(4, message.reverse_path)
        .bind_blob(5, message.trace)
        .bind(6, size)
        .bind(7, now);
    insert->execute();
    stored.deliveries.push_back(db.last_insert_id());
  }

  if (!outbound.empty() || !delivered.empty())
    stored.queued = queue_outbound(db, message, stored.message_id, outbound, delivered, now);
  return stored;
}

StoredMessage MysqlMailStore::deliver(const NewMessage& message) {
  // Hashed once, outside the transaction: a retried transaction does not hash again.
  const std::string content_hash = sha256(message.content).hex();
  return pool_.write([&](Connection& db) { return accept_message(db, message, content_hash); });
}

void MysqlMailStore::deliver_async(NewMessage message, Completion done) {
  auto shared = std::make_shared<NewMessage>(std::move(message));
  workers_.submit([this, shared, done = std::move(done)] {
    std::exception_ptr error;
    StoredMessage stored;
    try {
      stored = deliver(*shared);
    } catch (...) {
      error = std::current_exception();
    }
    done(error, std::move(stored));
  });
}

}  // namespace maild::store::mysql
