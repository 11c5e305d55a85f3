// POP3's view of the store: the maildrop lock and the QUIT update as writer jobs, the
// listing and the text read from the pool.
// Trust: mailbox ids come from a login and may have been deleted since; delivery ids come
// from the client (via the session's listing) and are checked against the mailbox here.
#include <string>

#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {

// Raises one delivery of this mailbox to `status`; a delivery of another mailbox, or one
// already at or above it (deleted stays deleted), is left alone.
void raise_status(Connection& db, MailboxId mailbox, DeliveryId id, DeliveryStatus status) {
  auto update = db.prepare(
      "UPDATE deliveries SET status = ?3 WHERE id = ?1 AND mailbox_id = ?2 AND status < ?3");
  update->bind(1, id).bind(2, mailbox).bind(3, static_cast<std::int64_t>(status));
  update->step();
}

void release(Connection& db, MailboxId mailbox, std::string_view owner) {
  auto remove = db.prepare("DELETE FROM maildrop_locks WHERE mailbox_id = ?1 AND owner = ?2");
  remove->bind(1, mailbox).bind_text(2, owner);
  remove->step();
}

}  // namespace

bool SqliteMaildropStore::lock(MailboxId mailbox, std::string_view owner,
                               std::chrono::seconds ttl) {
  if (owner.empty()) throw StoreConflict("a maildrop lock needs an owner");
  if (ttl.count() < 1) throw StoreConflict("a maildrop lock needs a ttl of at least one second");
  const std::string holder(owner);
  return writer_.call([mailbox, holder, ttl](Connection& db) {
    {
      auto exists = db.prepare("SELECT 1 FROM mailboxes WHERE id = ?1");
      exists->bind(1, mailbox);
      if (!exists->step()) throw StoreConflict("no mailbox with id " + std::to_string(mailbox));
    }
    // The clock is read here, when the write runs, not when it was queued. A lock is held
    // through the whole second expires_at, so it lasts at least ttl and at most ttl + 1 s.
    const UnixTime now = unix_now();
    // One statement: take it when free or expired, extend it when ours, else change nothing.
    auto take = db.prepare(
        "INSERT INTO maildrop_locks (mailbox_id, owner, expires_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (mailbox_id) DO UPDATE SET owner = excluded.owner, "
        "expires_at = excluded.expires_at "
        "WHERE maildrop_locks.owner = excluded.owner OR maildrop_locks.expires_at < ?4");
    take->bind(1, mailbox).bind_text(2, holder).bind(3, now + ttl).bind(4, now);
    take->step();
    return db.changes() == 1;
  });
}

void SqliteMaildropStore::unlock(MailboxId mailbox, std::string_view owner) {
  const std::string holder(owner);
  writer_.call([mailbox, holder](Connection& db) { release(db, mailbox, holder); });
}

std::vector<MaildropEntry> SqliteMaildropStore::list(MailboxId mailbox) {
  auto db = reads_.lease();
  auto query = db->prepare(maildrop_listing_sql);
  query->bind(1, mailbox);
  std::vector<MaildropEntry> entries;
  while (query->step()) {
    entries.push_back({query->column_int(0), static_cast<std::uint64_t>(query->column_int(1)),
                       query->column_text(2)});
  }
  return entries;
}

std::optional<MessageText> SqliteMaildropStore::text(MailboxId mailbox, DeliveryId id) {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT d.trace, m.content FROM deliveries d JOIN messages m ON m.id = d.message_id "
      "WHERE d.id = ?1 AND d.mailbox_id = ?2 AND d.status < 2");
  query->bind(1, id).bind(2, mailbox);
  if (!query->step()) return std::nullopt;
  return MessageText{query->column_blob(0), query->column_blob(1)};
}

void SqliteMaildropStore::finish(MailboxId mailbox, std::string_view owner,
                                 const std::vector<DeliveryId>& retrieved,
                                 const std::vector<DeliveryId>& deleted) {
  const std::string holder(owner);
  // One writer job is one savepoint: if any statement fails, none of them happened.
  writer_.call([mailbox, holder, &retrieved, &deleted](Connection& db) {
    for (DeliveryId id : retrieved) raise_status(db, mailbox, id, DeliveryStatus::retrieved);
    for (DeliveryId id : deleted) raise_status(db, mailbox, id, DeliveryStatus::deleted);
    release(db, mailbox, holder);
  });
}

}  // namespace maild::store::sqlite
