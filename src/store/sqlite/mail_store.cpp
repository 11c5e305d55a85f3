// Acceptance as writer jobs: the content once per hash, one delivery row per mailbox, and one
// queue entry with its recipients for the outbound part, all in the job's savepoint.
// Trust: message bytes are opaque; mailbox ids come from resolve() but may have been deleted
// since; outbound addresses were validated by the session, and are only split here.
#include <set>

#include "maild/core/hash.hpp"
#include "store/addressing.hpp"
#include "store/message_fields.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
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
    // The same folding as the column's COLLATE NOCASE, so UNIQUE (queue_id, address) never trips.
    if (!seen.insert(lowercase_ascii(address)).second) continue;
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
        "outbound_trace, size, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    insert->bind(1, message_id)
        .bind_text(2, message.reverse_path)
        .bind_text(3, message.envid)
        .bind(4, static_cast<std::int64_t>(message.ret))
        .bind(5, message.smtputf8 ? 1 : 0)
        .bind(6, message.eight_bit ? 1 : 0)
        .bind_blob(7, message.outbound_trace)
        .bind(8, as_size(message.outbound_trace.size() + message.content.size()))
        .bind(9, now);
    insert->step();
  }
  const QueueId queue_id = db.last_insert_rowid();
  for (const QueuedAddress& recipient : recipients) {
    // Due at once: the first attempt is the delivery engine's next claim.
    auto insert = db.prepare(
        "INSERT INTO queue_recipients (queue_id, address, domain, notify, orcpt, next_attempt) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    insert->bind(1, queue_id)
        .bind_text(2, recipient.address)
        .bind_text(3, recipient.domain)
        .bind(4, static_cast<std::int64_t>(recipient.recipient->notify))
        .bind_text(5, recipient.recipient->orcpt)
        .bind(6, now);
    insert->step();
  }
  for (const QueuedAddress& recipient : delivered) {
    // Delivered here already: only the success notice is owed.
    auto insert = db.prepare(
        "INSERT INTO queue_recipients (queue_id, address, domain, notify, orcpt, state, attempts, "
        "next_attempt, last_reply, notice_owed) VALUES (?1, ?2, ?3, ?4, ?5, 1, 1, ?6, ?7, 1)");
    insert->bind(1, queue_id)
        .bind_text(2, recipient.address)
        .bind_text(3, recipient.domain)
        .bind(4, static_cast<std::int64_t>(recipient.recipient->notify))
        .bind_text(5, recipient.recipient->orcpt)
        .bind(6, now)
        .bind_text(7, local_delivery_reply);
    insert->step();
  }
  return queue_id;
}

}  // namespace

StoredMessage accept_message(Connection& db, const NewMessage& message) {
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

  // Check the mailboxes first: a recipient deleted since RCPT fails this message alone.
  std::vector<std::string> addresses;
  for (MailboxId id : mailboxes) {
    auto query = db.prepare("SELECT address FROM mailboxes WHERE id = ?1");
    query->bind(1, id);
    if (!query->step()) throw StoreConflict("no mailbox with id " + std::to_string(id));
    addresses.push_back(query->column_text(0));
  }

  StoredMessage stored;
  stored.content_hash = sha256(message.content).hex();
  const UnixTime now = unix_now();
  {
    auto insert = db.prepare(
        "INSERT INTO messages (content_hash, size, content, created_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (content_hash) DO NOTHING");
    insert->bind_text(1, stored.content_hash)
        .bind(2, as_size(message.content.size()))
        .bind_blob(3, message.content)
        .bind(4, now);
    insert->step();
  }
  {
    auto query = db.prepare("SELECT id FROM messages WHERE content_hash = ?1");
    query->bind_text(1, stored.content_hash);
    if (!query->step()) throw StoreError("sqlite: the message row vanished while delivering");
    stored.message_id = query->column_int(0);
  }

  const std::int64_t size = as_size(message.trace.size() + message.content.size());
  for (std::size_t i = 0; i < mailboxes.size(); ++i) {
    const std::string uidl = delivery_uidl(addresses[i], stored.content_hash);
    auto insert = db.prepare(
        "INSERT INTO deliveries (mailbox_id, message_id, uidl, reverse_path, trace, size, status, "
        "received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7) "
        "ON CONFLICT (mailbox_id, uidl) DO NOTHING");
    insert->bind(1, mailboxes[i])
        .bind(2, stored.message_id)
        .bind_text(3, uidl)
        .bind_text(4, message.reverse_path)
        .bind_blob(5, message.trace)
        .bind(6, size)
        .bind(7, now);
    insert->step();
    if (db.changes() == 1) {
      stored.deliveries.push_back(db.last_insert_rowid());
      continue;
    }
    // Already delivered (a retry after a lost reply): the existing delivery is the answer.
    auto existing = db.prepare("SELECT id FROM deliveries WHERE mailbox_id = ?1 AND uidl = ?2");
    existing->bind(1, mailboxes[i]).bind_text(2, uidl);
    if (!existing->step()) throw StoreError("sqlite: a delivery conflicted but cannot be found");
    stored.deliveries.push_back(existing->column_int(0));
  }

  if (!outbound.empty() || !delivered.empty())
    stored.queued = queue_outbound(db, message, stored.message_id, outbound, delivered, now);
  return stored;
}

StoredMessage SqliteMailStore::deliver(const NewMessage& message) {
  return writer_.call([&message](Connection& db) { return accept_message(db, message); });
}

void SqliteMailStore::deliver_async(NewMessage message, Completion done) {
  auto shared = std::make_shared<NewMessage>(std::move(message));
  auto result = std::make_shared<StoredMessage>();
  writer_.submit({[shared, result](Connection& db) { *result = accept_message(db, *shared); },
                  [result, done = std::move(done)](std::exception_ptr error) {
                    done(error, error ? StoredMessage{} : std::move(*result));
                  }});
}

}  // namespace maild::store::sqlite
