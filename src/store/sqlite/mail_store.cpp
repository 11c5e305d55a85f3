// Local delivery as writer jobs: the content once per hash, one delivery row per mailbox.
// Trust: message bytes are opaque; mailbox ids come from resolve() but may have been deleted since.
#include <set>

#include "maild/core/hash.hpp"
#include "store/message_fields.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {

std::int64_t as_size(std::size_t octets) { return static_cast<std::int64_t>(octets); }

}  // namespace

StoredMessage store_message(Connection& db, const NewMessage& message) {
  std::vector<MailboxId> mailboxes;
  std::set<MailboxId> unique;
  for (MailboxId id : message.mailboxes) {
    if (unique.insert(id).second) mailboxes.push_back(id);
  }
  if (mailboxes.empty()) throw StoreConflict("a message needs at least one mailbox");

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
  const std::int64_t now = unix_now();
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
  return stored;
}

StoredMessage SqliteMailStore::deliver(const NewMessage& message) {
  return writer_.call([&message](Connection& db) { return store_message(db, message); });
}

void SqliteMailStore::deliver_async(NewMessage message, Completion done) {
  auto shared = std::make_shared<NewMessage>(std::move(message));
  auto result = std::make_shared<StoredMessage>();
  writer_.submit({[shared, result](Connection& db) { *result = store_message(db, *shared); },
                  [result, done = std::move(done)](std::exception_ptr error) {
                    done(error, error ? StoredMessage{} : std::move(*result));
                  }});
}

}  // namespace maild::store::sqlite
