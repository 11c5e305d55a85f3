// The outbound queue on SQLite: leases, results and notices as writer jobs (each one
// transaction, grouped with the others), listings and texts read from the pool.
// Trust: owners, ids and results come from maild's delivery engine or mailctl; an id that is
// unknown, or a recipient leased by someone else, is skipped rather than trusted.
#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "store/addressing.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {

constexpr std::string_view envelope_columns =
    "q.id, q.reverse_path, q.envid, q.ret, q.smtputf8, q.eight_bit, m.content_hash, q.size, "
    "q.queued_at";
constexpr std::string_view envelope_tables =
    " FROM queue_messages q JOIN messages m ON m.id = q.message_id";
constexpr std::string_view recipient_columns =
    "id, address, domain, notify, orcpt, state, attempts, next_attempt, last_reply, remote_host, "
    "lease_owner, lease_expires, notice_owed, delay_warned";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) text += part;
  return text;
}

QueuedMessage read_envelope(const Statement& row) {
  QueuedMessage message;
  message.id = row.column_int(0);
  message.reverse_path = row.column_text(1);
  message.envid = row.column_text(2);
  message.ret = static_cast<DsnReturn>(row.column_int(3));
  message.smtputf8 = row.column_int(4) != 0;
  message.eight_bit = row.column_int(5) != 0;
  message.content_hash = row.column_text(6);
  message.size = static_cast<std::uint64_t>(row.column_int(7));
  message.queued_at = row.column_time(8);
  return message;
}

QueueRecipient read_recipient(const Statement& row) {
  QueueRecipient recipient;
  recipient.id = row.column_int(0);
  recipient.address = row.column_text(1);
  recipient.domain = row.column_text(2);
  recipient.notify = static_cast<unsigned>(row.column_int(3));
  recipient.orcpt = row.column_text(4);
  recipient.state = static_cast<RecipientState>(row.column_int(5));
  recipient.attempts = static_cast<int>(row.column_int(6));
  recipient.next_attempt = row.column_time(7);
  recipient.last_reply = row.column_text(8);
  recipient.remote_host = row.column_text(9);
  recipient.lease_owner = row.column_text(10);  // NULL reads as ""
  recipient.lease_expires = row.column_time(11);
  recipient.notice_owed = row.column_int(12) != 0;
  recipient.delay_warned = row.column_int(13) != 0;
  return recipient;
}

std::optional<QueuedMessage> load_envelope(Connection& db, QueueId id) {
  static const std::string text =
      sql({"SELECT ", envelope_columns, envelope_tables, " WHERE q.id = ?1"});
  auto query = db.prepare(text);
  query->bind(1, id);
  if (!query->step()) return std::nullopt;
  return read_envelope(*query);
}

// `only_owed`: just the recipients that owe a notice. In id order (the order they were queued).
std::vector<QueueRecipient> load_recipients(Connection& db, QueueId id, bool only_owed) {
  static const std::string all =
      sql({"SELECT ", recipient_columns, " FROM queue_recipients WHERE queue_id = ?1 ORDER BY id"});
  static const std::string owed = sql({"SELECT ", recipient_columns,
                                       " FROM queue_recipients WHERE queue_id = ?1 "
                                       "AND notice_owed = 1 ORDER BY id"});
  auto query = db.prepare(only_owed ? owed : all);
  query->bind(1, id);
  std::vector<QueueRecipient> recipients;
  while (query->step()) recipients.push_back(read_recipient(*query));
  return recipients;
}

QueueRecipient load_recipient(Connection& db, QueueRecipientId id) {
  static const std::string text =
      sql({"SELECT ", recipient_columns, " FROM queue_recipients WHERE id = ?1"});
  auto query = db.prepare(text);
  query->bind(1, id);
  if (!query->step()) throw StoreError("sqlite: a leased recipient vanished while claiming");
  return read_recipient(*query);
}

// A message leaves the queue when none of its recipients is queued or owed a notice.
void remove_if_finished(Connection& db, QueueId id) {
  auto remove = db.prepare(
      "DELETE FROM queue_messages WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM queue_recipients "
      "WHERE queue_id = ?1 AND (state = 0 OR notice_owed = 1))");
  remove->bind(1, id);
  remove->step();
}

int state_after(RecipientResult::Kind kind) {
  switch (kind) {
    case RecipientResult::Kind::delivered:
      return static_cast<int>(RecipientState::delivered);
    case RecipientResult::Kind::failed:
      return static_cast<int>(RecipientState::failed);
    case RecipientResult::Kind::deferred:
      break;
  }
  return static_cast<int>(RecipientState::queued);
}

}  // namespace

std::vector<DeliveryJob> SqliteQueueStore::claim(std::string_view owner, std::chrono::seconds lease,
                                                 std::size_t limit) {
  if (owner.empty()) throw StoreConflict("a queue lease needs an owner");
  if (lease.count() < 1) throw StoreConflict("a queue lease needs at least one second");
  if (limit == 0) return {};
  const std::string holder(owner);
  const auto count = static_cast<std::int64_t>(std::min<std::size_t>(
      limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  return writer_.call([&holder, lease, count](Connection& db) {
    // The clock is read when the write runs; the write lock makes the pick and the lease one step.
    const UnixTime now = unix_now();
    struct Picked {
      QueueRecipientId id;
      QueueId queue_id;
    };
    std::vector<Picked> picked;
    {
      auto due = db.prepare(queue_due_sql);
      due->bind(1, now).bind(2, count);
      while (due->step()) picked.push_back({due->column_int(0), due->column_int(1)});
    }
    for (const Picked& one : picked) {
      auto take = db.prepare(
          "UPDATE queue_recipients SET lease_owner = ?2, lease_expires = ?3 WHERE id = ?1");
      take->bind(1, one.id).bind_text(2, holder).bind(3, now + lease);
      take->step();
    }

    // One job per message and domain, in the order the recipients were picked (oldest message
    // first); a message's domains in the order of their first recipient.
    std::vector<DeliveryJob> jobs;
    std::map<std::pair<QueueId, std::string>, std::size_t> job_of;
    std::map<QueueId, QueuedMessage> envelopes;
    for (const Picked& one : picked) {
      QueueRecipient recipient = load_recipient(db, one.id);
      auto envelope = envelopes.find(one.queue_id);
      if (envelope == envelopes.end()) {
        auto loaded = load_envelope(db, one.queue_id);
        if (!loaded) throw StoreError("sqlite: a queued recipient has no message");
        envelope = envelopes.emplace(one.queue_id, std::move(*loaded)).first;
      }
      auto [slot, fresh] =
          job_of.emplace(std::make_pair(one.queue_id, recipient.domain), jobs.size());
      if (fresh) jobs.push_back({recipient.domain, envelope->second});
      jobs[slot->second].message.recipients.push_back(std::move(recipient));
    }
    return jobs;
  });
}

bool SqliteQueueStore::renew(std::string_view owner,
                             const std::vector<QueueRecipientId>& recipients,
                             std::chrono::seconds lease) {
  if (owner.empty()) throw StoreConflict("a queue lease needs an owner");
  if (lease.count() < 1) throw StoreConflict("a queue lease needs at least one second");
  const std::string holder(owner);
  return writer_.call([&holder, &recipients, lease](Connection& db) {
    const UnixTime expires = unix_now() + lease;
    bool all_ours = true;
    for (QueueRecipientId id : recipients) {
      auto extend = db.prepare(
          "UPDATE queue_recipients SET lease_expires = ?3 "
          "WHERE id = ?1 AND lease_owner = ?2 AND state = 0");
      extend->bind(1, id).bind_text(2, holder).bind(3, expires);
      extend->step();
      if (db.changes() != 1) all_ours = false;
    }
    return all_ours;
  });
}

std::optional<MessageText> SqliteQueueStore::text(QueueId id) {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT q.outbound_trace, m.content FROM queue_messages q JOIN messages m "
      "ON m.id = q.message_id WHERE q.id = ?1");
  query->bind(1, id);
  if (!query->step()) return std::nullopt;
  return MessageText{query->column_blob(0), query->column_blob(1)};
}

std::size_t SqliteQueueStore::record(std::string_view owner,
                                     const std::vector<RecipientResult>& results) {
  const std::string holder(owner);
  return writer_.call([&holder, &results](Connection& db) {
    std::size_t applied = 0;
    std::set<QueueId> touched;
    for (const RecipientResult& result : results) {
      // Only a lease this owner still holds (lapsed or not, as long as nobody took it over),
      // and only a queued recipient: a result never lowers a state.
      auto update = db.prepare(
          "UPDATE queue_recipients SET state = ?3, next_attempt = coalesce(?4, next_attempt), "
          "attempts = attempts + 1, last_reply = ?5, remote_host = ?6, lease_owner = NULL, "
          "lease_expires = 0, notice_owed = max(notice_owed, ?7), "
          "delay_warned = max(delay_warned, ?8) "
          "WHERE id = ?1 AND lease_owner = ?2 AND state = 0 RETURNING queue_id");
      update->bind(1, result.id).bind_text(2, holder).bind(3, state_after(result.kind));
      if (result.kind == RecipientResult::Kind::deferred) {
        update->bind(4, result.next_attempt);
      } else {
        update->bind_null(4);
      }
      update->bind_text(5, result.reply)
          .bind_text(6, result.remote_host)
          .bind(7, result.notice ? 1 : 0)
          .bind(8, result.delay_warned ? 1 : 0);
      if (!update->step()) continue;
      ++applied;
      touched.insert(update->column_int(0));
    }
    for (QueueId id : touched) remove_if_finished(db, id);
    return applied;
  });
}

std::optional<UnixTime> SqliteQueueStore::next_due() {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT next_attempt FROM queue_recipients WHERE state = 0 ORDER BY next_attempt LIMIT 1");
  if (!query->step()) return std::nullopt;
  return query->column_time(0);
}

std::vector<QueuedMessage> SqliteQueueStore::notices_owed(std::size_t limit) {
  if (limit == 0) return {};
  const auto count = static_cast<std::int64_t>(std::min<std::size_t>(
      limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  const UnixTime now = unix_now();
  std::vector<QueueId> ids;
  {
    // A message waits while any of its recipients is under a live lease: the results of one
    // delivery round go into one notice.
    auto query = db->prepare(
        "SELECT DISTINCT r.queue_id FROM queue_recipients r WHERE r.notice_owed = 1 "
        "AND NOT EXISTS (SELECT 1 FROM queue_recipients l WHERE l.queue_id = r.queue_id "
        "AND l.state = 0 AND l.lease_owner IS NOT NULL AND l.lease_expires >= ?1) "
        "ORDER BY r.queue_id LIMIT ?2");
    query->bind(1, now).bind(2, count);
    while (query->step()) ids.push_back(query->column_int(0));
  }
  std::vector<QueuedMessage> messages;
  for (QueueId id : ids) {
    auto message = load_envelope(*db, id);
    if (!message) continue;
    message->recipients = load_recipients(*db, id, true);
    messages.push_back(std::move(*message));
  }
  return messages;
}

StoredMessage SqliteQueueStore::send_notice(const std::vector<QueueRecipientId>& recipients,
                                            const NewMessage& notice) {
  return writer_.call([&recipients, &notice](Connection& db) {
    // The notice is accepted exactly as any message is; if that fails, nothing is marked sent.
    const bool nobody = notice.mailboxes.empty() && notice.outbound.empty();
    StoredMessage stored = nobody ? StoredMessage{} : accept_message(db, notice);
    std::set<QueueId> touched;
    for (QueueRecipientId id : recipients) {
      auto sent = db.prepare(
          "UPDATE queue_recipients SET notice_owed = 0 WHERE id = ?1 AND notice_owed = 1 "
          "RETURNING queue_id");
      sent->bind(1, id);
      if (sent->step()) touched.insert(sent->column_int(0));
    }
    for (QueueId id : touched) remove_if_finished(db, id);
    return stored;
  });
}

std::vector<QueuedMessage> SqliteQueueStore::list(const QueueFilter& filter) {
  // 0 means no limit; SQLite reads a negative LIMIT the same way.
  const std::int64_t limit =
      filter.limit == 0 ||
              filter.limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
          ? -1
          : static_cast<std::int64_t>(filter.limit);
  static const std::string text =
      sql({"SELECT ", envelope_columns, envelope_tables,
           " WHERE (?1 IS NULL OR q.queued_at < ?1) AND ((?2 IS NULL AND ?3 IS NULL) OR EXISTS "
           "(SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id "
           "AND (?2 IS NULL OR r.domain = ?2) AND (?3 IS NULL OR r.state = ?3))) "
           "ORDER BY q.id LIMIT ?4"});
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  auto query = db->prepare(text);
  if (filter.queued_before) {
    query->bind(1, *filter.queued_before);
  } else {
    query->bind_null(1);
  }
  if (filter.domain) {
    query->bind_text(2, lowercase_ascii(*filter.domain));
  } else {
    query->bind_null(2);
  }
  if (filter.state) {
    query->bind(3, static_cast<std::int64_t>(*filter.state));
  } else {
    query->bind_null(3);
  }
  query->bind(4, limit);
  std::vector<QueuedMessage> messages;
  while (query->step()) messages.push_back(read_envelope(*query));
  for (QueuedMessage& message : messages)
    message.recipients = load_recipients(*db, message.id, false);
  return messages;
}

std::optional<QueuedMessage> SqliteQueueStore::get(QueueId id) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  auto message = load_envelope(*db, id);
  if (message) message->recipients = load_recipients(*db, id, false);
  return message;
}

std::size_t SqliteQueueStore::retry(std::optional<QueueId> id) {
  return writer_.call([id](Connection& db) {
    auto update = db.prepare(
        "UPDATE queue_recipients SET next_attempt = min(next_attempt, ?1) "
        "WHERE state = 0 AND (?2 IS NULL OR queue_id = ?2)");
    update->bind(1, unix_now());
    if (id) {
      update->bind(2, *id);
    } else {
      update->bind_null(2);
    }
    update->step();
    return static_cast<std::size_t>(db.changes());
  });
}

bool SqliteQueueStore::remove(QueueId id) {
  return writer_.call([id](Connection& db) {
    // Its recipients go by ON DELETE CASCADE; the content stays for other references.
    auto remove = db.prepare("DELETE FROM queue_messages WHERE id = ?1");
    remove->bind(1, id);
    remove->step();
    return db.changes() == 1;
  });
}

std::size_t SqliteQueueStore::bounce(QueueId id, std::string_view reason) {
  const std::string text(reason);
  return writer_.call([id, &text](Connection& db) {
    // A notice is owed when the sender can get one (not the null sender) and asked for it:
    // NOTIFY absent or with FAILURE, and not NEVER. An attempt in flight loses its lease, so
    // its result is skipped when it comes.
    auto fail = db.prepare(
        "UPDATE queue_recipients SET state = 2, last_reply = ?2, remote_host = '', "
        "lease_owner = NULL, lease_expires = 0, notice_owed = CASE WHEN "
        "(SELECT reverse_path FROM queue_messages WHERE id = ?1) <> '' "
        "AND (notify = 0 OR (notify & ?3) <> 0) AND (notify & ?4) = 0 THEN 1 ELSE notice_owed END "
        "WHERE queue_id = ?1 AND state = 0");
    fail->bind(1, id)
        .bind_text(2, text)
        .bind(3, static_cast<std::int64_t>(notify_failure))
        .bind(4, static_cast<std::int64_t>(notify_never));
    fail->step();
    const auto failed = static_cast<std::size_t>(db.changes());
    remove_if_finished(db, id);
    return failed;
  });
}

}  // namespace maild::store::sqlite
