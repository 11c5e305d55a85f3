// Local delivery as one transaction each: the content once per hash, one delivery row per mailbox.
// Trust: message bytes are opaque; mailbox ids come from resolve() but may have been deleted since.
#include <set>

#include "maild/core/hash.hpp"
#include "store/message_fields.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

std::int64_t as_size(std::size_t octets) { return static_cast<std::int64_t>(octets); }

// Runs inside the write's transaction: any throw leaves no trace of this message.
StoredMessage store_message(Connection& db, const NewMessage& message,
                            const std::string& content_hash) {
  std::vector<MailboxId> mailboxes;
  std::set<MailboxId> unique;
  for (MailboxId id : message.mailboxes) {
    if (unique.insert(id).second) mailboxes.push_back(id);
  }
  if (mailboxes.empty()) throw StoreConflict("a message needs at least one mailbox");

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
  const std::int64_t now = unix_now();
  {
    // An existing row answers with its own id (LAST_INSERT_ID(id)); the content is not replaced.
    auto insert = db.prepare(
        "INSERT INTO messages (content_hash, size, content, created_at) VALUES (?, ?, ?, ?) "
        "ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)");
    insert->bind_text(1, stored.content_hash)
        .bind(2, as_size(message.content.size()))
        .bind_blob(3, message.content)
        .bind(4, now);
    insert->execute();
    stored.message_id = db.last_insert_id();
  }

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
  return stored;
}

}  // namespace

StoredMessage MysqlMailStore::deliver(const NewMessage& message) {
  // Hashed once, outside the transaction: a retried transaction does not hash again.
  const std::string content_hash = sha256(message.content).hex();
  return pool_.write([&](Connection& db) { return store_message(db, message, content_hash); });
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
