// POP3's view of the store: the maildrop lock and the QUIT update as write transactions, the
// listing and the text read on a pooled connection.
// Trust: mailbox ids come from a login and may have been deleted since; delivery ids come
// from the client (via the session's listing) and are checked against the mailbox here.
#include <string>

#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

// Ids per UPDATE at QUIT: one statement for a whole maildrop's deletions, in bounded pieces.
constexpr std::size_t ids_per_statement = 500;

// Raises deliveries of this mailbox to `status`; a delivery of another mailbox, or one already
// at or above it (deleted stays deleted), is left alone. The ids are numbers we format ourselves.
void raise_status(Connection& db, MailboxId mailbox, const std::vector<DeliveryId>& ids,
                  DeliveryStatus status) {
  const std::string value = std::to_string(static_cast<int>(status));
  for (std::size_t first = 0; first < ids.size(); first += ids_per_statement) {
    std::string list;
    const std::size_t last = std::min(ids.size(), first + ids_per_statement);
    for (std::size_t i = first; i < last; ++i)
      list += (i > first ? "," : "") + std::to_string(ids[i]);
    db.exec("UPDATE deliveries SET status = " + value + " WHERE mailbox_id = " +
            std::to_string(mailbox) + " AND status < " + value + " AND id IN (" + list + ")");
  }
}

void release(Connection& db, MailboxId mailbox, std::string_view owner) {
  auto remove = db.prepare("DELETE FROM maildrop_locks WHERE mailbox_id = ? AND owner = ?");
  remove->bind(1, mailbox).bind_text(2, owner);
  remove->execute();
}

}  // namespace

bool MysqlMaildropStore::lock(MailboxId mailbox, std::string_view owner, std::chrono::seconds ttl) {
  if (owner.empty()) throw StoreConflict("a maildrop lock needs an owner");
  if (ttl.count() < 1) throw StoreConflict("a maildrop lock needs a ttl of at least one second");
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    {
      auto exists = db.prepare("SELECT 1 FROM mailboxes WHERE id = ? LOCK IN SHARE MODE");
      exists->bind(1, mailbox);
      if (!exists->step()) throw StoreConflict("no mailbox with id " + std::to_string(mailbox));
    }
    // The clock is read here, when the write runs. A lock is held through the whole second
    // expires_at, so it lasts at least ttl and at most ttl + 1 s.
    const UnixTime now = unix_now();
    // One statement: take it when free or expired, extend it when ours, else change nothing.
    // MySQL assigns left to right, so expires_at sees the owner as it is after the first SET.
    {
      auto take = db.prepare(
          "INSERT INTO maildrop_locks (mailbox_id, owner, expires_at) VALUES (?, ?, ?) "
          "ON DUPLICATE KEY UPDATE "
          "owner = IF(owner = ? OR expires_at < ?, ?, owner), "
          "expires_at = IF(owner = ?, ?, expires_at)");
      take->bind(1, mailbox)
          .bind_text(2, holder)
          .bind(3, now + ttl)
          .bind_text(4, holder)
          .bind(5, now)
          .bind_text(6, holder)
          .bind_text(7, holder)
          .bind(8, now + ttl);
      take->execute();
    }
    // The row is locked by this transaction now: whoever it names holds the maildrop.
    auto held = db.prepare("SELECT owner FROM maildrop_locks WHERE mailbox_id = ?");
    held->bind(1, mailbox);
    return held->step() && held->column_text(0) == holder;
  });
}

void MysqlMaildropStore::unlock(MailboxId mailbox, std::string_view owner) {
  pool_.write([&](Connection& db) { release(db, mailbox, owner); });
}

std::vector<MaildropEntry> MysqlMaildropStore::list(MailboxId mailbox) {
  return pool_.read([&](Connection& db) {
    auto query = db.prepare(maildrop_listing_sql);
    query->bind(1, mailbox);
    std::vector<MaildropEntry> entries;
    while (query->step()) {
      entries.push_back({query->column_int(0), static_cast<std::uint64_t>(query->column_int(1)),
                         query->column_text(2)});
    }
    return entries;
  });
}

std::optional<MessageText> MysqlMaildropStore::text(MailboxId mailbox, DeliveryId id) {
  return pool_.read([&](Connection& db) -> std::optional<MessageText> {
    auto query = db.prepare(
        "SELECT d.trace, m.content FROM deliveries d JOIN messages m ON m.id = d.message_id "
        "WHERE d.id = ? AND d.mailbox_id = ? AND d.status < 2");
    query->bind(1, id).bind(2, mailbox);
    if (!query->step()) return std::nullopt;
    return MessageText{query->column_blob(0), query->column_blob(1)};
  });
}

void MysqlMaildropStore::finish(MailboxId mailbox, std::string_view owner,
                                const std::vector<DeliveryId>& retrieved,
                                const std::vector<DeliveryId>& deleted) {
  // One transaction: if any statement fails, none of them happened.
  pool_.write([&](Connection& db) {
    raise_status(db, mailbox, retrieved, DeliveryStatus::retrieved);
    raise_status(db, mailbox, deleted, DeliveryStatus::deleted);
    release(db, mailbox, owner);
  });
}

}  // namespace maild::store::mysql
