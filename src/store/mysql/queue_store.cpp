// The outbound queue on MySQL: leases, results and notices as write transactions, listings and
// texts as reads. Claims take due recipients with SELECT ... FOR UPDATE SKIP LOCKED, so nodes
// claiming at once each get others' leftovers rather than waiting for (or sharing) a row.
// Trust: owners, ids and results come from maild's delivery engine or mailctl; an id that is
// unknown, or a recipient leased by someone else, is skipped rather than trusted.
#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "maild/core/hash.hpp"
#include "store/addressing.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

constexpr std::string_view envelope_columns =
    "q.id, q.reverse_path, q.envid, q.ret, q.smtputf8, q.eight_bit, m.content_hash, q.size, "
    "q.queued_at";
constexpr std::string_view envelope_tables =
    " FROM queue_messages q JOIN messages m ON m.id = q.message_id";
constexpr std::string_view recipient_columns =
    "id, address, domain, notify, orcpt, state, attempts, next_attempt, last_reply, remote_host, "
    "lease_owner, lease_expires, notice_owed, delay_warned, queue_id";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) text += part;
  return text;
}

// "1,2,3": ids we format ourselves, for IN lists that a prepared statement cannot take.
std::string id_list(const std::vector<std::int64_t>& ids) {
  std::string text;
  for (std::int64_t id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
  return text;
}

// The largest limit a claim multiplies for its candidates without overflowing.
constexpr std::int64_t max_limit = std::numeric_limits<std::int64_t>::max() / 4;

std::int64_t as_limit(std::size_t limit) {
  return limit == 0 || limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

QueuedMessage read_envelope(const Statement& row) {
  QueuedMessage message;
  message.id = row.column_int(0);
  message.reverse_path = row.column_text(1);
  message.envid = row.column_blob(2);
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
  recipient.orcpt = row.column_blob(4);
  recipient.state = static_cast<RecipientState>(row.column_int(5));
  recipient.attempts = static_cast<int>(row.column_int(6));
  recipient.next_attempt = row.column_time(7);
  recipient.last_reply = row.column_blob(8);
  recipient.remote_host = row.column_text(9);
  recipient.lease_owner = row.column_text(10);  // NULL reads as ""
  recipient.lease_expires = row.column_time(11);
  recipient.notice_owed = row.column_int(12) != 0;
  recipient.delay_warned = row.column_int(13) != 0;
  return recipient;
}

std::optional<QueuedMessage> load_envelope(Connection& db, QueueId id) {
  static const std::string text =
      sql({"SELECT ", envelope_columns, envelope_tables, " WHERE q.id = ?"});
  auto query = db.prepare(text);
  query->bind(1, id);
  if (!query->step()) return std::nullopt;
  return read_envelope(*query);
}

// `only_owed`: just the recipients that owe a notice. In id order (the order they were queued).
std::vector<QueueRecipient> load_recipients(Connection& db, QueueId id, bool only_owed) {
  static const std::string all =
      sql({"SELECT ", recipient_columns, " FROM queue_recipients WHERE queue_id = ? ORDER BY id"});
  static const std::string owed = sql({"SELECT ", recipient_columns,
                                       " FROM queue_recipients WHERE queue_id = ? "
                                       "AND notice_owed = 1 ORDER BY id"});
  auto query = db.prepare(only_owed ? owed : all);
  query->bind(1, id);
  std::vector<QueueRecipient> recipients;
  while (query->step()) recipients.push_back(read_recipient(*query));
  return recipients;
}

// A message leaves the queue when none of its recipients is queued or owed a notice.
void remove_if_finished(Connection& db, QueueId id) {
  auto remove = db.prepare(
      "DELETE FROM queue_messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM queue_recipients "
      "WHERE queue_id = ? AND (state = 0 OR notice_owed = 1))");
  remove->bind(1, id).bind(2, id);
  remove->execute();
}

// The message of a recipient that `condition` (on r) selects, locked for this transaction.
std::optional<QueueId> locked_queue_id(Connection& db, std::string_view condition,
                                       QueueRecipientId id, const std::string* owner) {
  auto query = db.prepare(
      sql({"SELECT queue_id FROM queue_recipients r WHERE id = ? AND ", condition, " FOR UPDATE"}));
  query->bind(1, id);
  if (owner) query->bind_text(2, *owner);
  if (!query->step()) return std::nullopt;
  return query->column_int(0);
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

std::vector<DeliveryJob> MysqlQueueStore::claim(std::string_view owner, std::chrono::seconds lease,
                                                std::size_t limit) {
  if (owner.empty()) throw StoreConflict("a queue lease needs an owner");
  if (lease.count() < 1) throw StoreConflict("a queue lease needs at least one second");
  if (limit == 0) return {};
  const std::string holder(owner);
  const std::int64_t count = as_limit(limit);
  return pool_.write(
      [&](Connection& db) {
        // The clock is read when the write runs. The rows picked stay locked (and others'
        // locked rows are skipped) until the leases are written and committed.
        const UnixTime now = unix_now();
        std::vector<std::int64_t> candidates;
        {
          // More candidates than wanted: those another claimer takes meanwhile are skipped.
          auto due = db.prepare(queue_due_sql);
          due->bind(1, now).bind(2, now).bind(3, count > max_limit ? count : count * 4);
          while (due->step()) candidates.push_back(due->column_int(0));
        }
        if (candidates.empty()) return std::vector<DeliveryJob>{};
        std::vector<std::int64_t> picked;
        {
          auto take =
              db.prepare_once(sql({queue_take_sql_head, id_list(candidates), queue_take_sql_tail}));
          take->bind(1, now).bind(2, now).bind(3, count);
          while (take->step()) picked.push_back(take->column_int(0));
        }
        if (picked.empty()) return std::vector<DeliveryJob>{};
        const std::string ids = id_list(picked);
        {
          auto take = db.prepare_once(
              "UPDATE queue_recipients SET lease_owner = ?, lease_expires = ? WHERE id IN (" + ids +
              ")");
          take->bind_text(1, holder).bind(2, now + lease);
          take->execute();
        }

        // One job per message and domain, oldest message first; within a message, domains in
        // the order of their first recipient, recipients in the order they were queued.
        std::vector<DeliveryJob> jobs;
        std::map<std::pair<QueueId, std::string>, std::size_t> job_of;
        std::map<QueueId, QueuedMessage> envelopes;
        auto leased = db.prepare_once(sql({"SELECT ", recipient_columns,
                                           " FROM queue_recipients "
                                           "WHERE id IN (",
                                           ids, ") ORDER BY queue_id, id"}));
        std::vector<std::pair<QueueId, QueueRecipient>> rows;
        while (leased->step()) rows.emplace_back(leased->column_int(14), read_recipient(*leased));
        for (auto& [queue_id, recipient] : rows) {
          auto envelope = envelopes.find(queue_id);
          if (envelope == envelopes.end()) {
            auto loaded = load_envelope(db, queue_id);
            if (!loaded) throw StoreError("mysql: a queued recipient has no message");
            envelope = envelopes.emplace(queue_id, std::move(*loaded)).first;
          }
          auto [slot, fresh] =
              job_of.emplace(std::make_pair(queue_id, recipient.domain), jobs.size());
          if (fresh) jobs.push_back({recipient.domain, envelope->second});
          jobs[slot->second].message.recipients.push_back(std::move(recipient));
        }
        return jobs;
      },
      Isolation::read_committed);
}

bool MysqlQueueStore::renew(std::string_view owner, const std::vector<QueueRecipientId>& recipients,
                            std::chrono::seconds lease) {
  if (owner.empty()) throw StoreConflict("a queue lease needs an owner");
  if (lease.count() < 1) throw StoreConflict("a queue lease needs at least one second");
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    const UnixTime expires = unix_now() + lease;
    bool all_ours = true;
    for (QueueRecipientId id : recipients) {
      auto extend = db.prepare(
          "UPDATE queue_recipients SET lease_expires = ? "
          "WHERE id = ? AND lease_owner = ? AND state = 0");
      extend->bind(1, expires).bind(2, id).bind_text(3, holder);
      if (extend->execute() != 1) all_ours = false;  // matched, even when the value is the same
    }
    return all_ours;
  });
}

std::optional<MessageText> MysqlQueueStore::text(QueueId id) {
  return pool_.read([&](Connection& db) -> std::optional<MessageText> {
    auto query = db.prepare(
        "SELECT q.outbound_trace, m.content FROM queue_messages q JOIN messages m "
        "ON m.id = q.message_id WHERE q.id = ?");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    return MessageText{query->column_blob(0), query->column_blob(1)};
  });
}

std::size_t MysqlQueueStore::record(std::string_view owner,
                                    const std::vector<RecipientResult>& results) {
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    std::size_t applied = 0;
    std::set<QueueId> touched;
    for (const RecipientResult& result : results) {
      // Only a lease this owner still holds (lapsed or not, as long as nobody took it over),
      // and only a queued recipient: a result never lowers a state.
      const auto queue_id =
          locked_queue_id(db, "lease_owner = ? AND state = 0", result.id, &holder);
      if (!queue_id) continue;
      auto update = db.prepare(
          "UPDATE queue_recipients SET state = ?, next_attempt = COALESCE(?, next_attempt), "
          "attempts = attempts + 1, last_reply = ?, remote_host = ?, lease_owner = NULL, "
          "lease_expires = 0, notice_owed = GREATEST(notice_owed, ?), "
          "delay_warned = GREATEST(delay_warned, ?) WHERE id = ?");
      update->bind(1, state_after(result.kind));
      if (result.kind == RecipientResult::Kind::deferred) {
        update->bind(2, result.next_attempt);
      } else {
        update->bind_null(2);
      }
      update->bind_bytes(3, result.reply)
          .bind_text(4, result.remote_host)
          .bind(5, result.notice ? 1 : 0)
          .bind(6, result.delay_warned ? 1 : 0)
          .bind(7, result.id);
      update->execute();
      ++applied;
      touched.insert(*queue_id);
    }
    for (QueueId id : touched) remove_if_finished(db, id);
    return applied;
  });
}

std::optional<UnixTime> MysqlQueueStore::next_due() {
  return pool_.read([&](Connection& db) -> std::optional<UnixTime> {
    auto query = db.prepare("SELECT MIN(next_attempt) FROM queue_recipients WHERE state = 0");
    if (!query->step() || query->column_null(0)) return std::nullopt;
    return query->column_time(0);
  });
}

std::vector<QueuedMessage> MysqlQueueStore::notices_owed(std::size_t limit) {
  if (limit == 0) return {};
  const std::int64_t count = as_limit(limit);
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    const UnixTime now = unix_now();
    std::vector<QueueId> ids;
    {
      // A message waits while any of its recipients is under a live lease: the results of one
      // delivery round go into one notice.
      auto query = db.prepare(
          "SELECT DISTINCT r.queue_id FROM queue_recipients r WHERE r.notice_owed = 1 "
          "AND NOT EXISTS (SELECT 1 FROM queue_recipients l WHERE l.queue_id = r.queue_id "
          "AND l.state = 0 AND l.lease_owner IS NOT NULL AND l.lease_expires >= ?) "
          "ORDER BY r.queue_id LIMIT ?");
      query->bind(1, now).bind(2, count);
      while (query->step()) ids.push_back(query->column_int(0));
    }
    std::vector<QueuedMessage> messages;
    for (QueueId id : ids) {
      auto message = load_envelope(db, id);
      if (!message) continue;
      message->recipients = load_recipients(db, id, true);
      messages.push_back(std::move(*message));
    }
    return messages;
  });
}

StoredMessage MysqlQueueStore::send_notice(const std::vector<QueueRecipientId>& recipients,
                                           const NewMessage& notice) {
  const bool nobody = notice.mailboxes.empty() && notice.outbound.empty();
  const std::string content_hash = sha256(notice.content).hex();
  return pool_.write([&](Connection& db) {
    // The notice is accepted exactly as any message is; if that fails, nothing is marked sent.
    StoredMessage stored = nobody ? StoredMessage{} : accept_message(db, notice, content_hash);
    std::set<QueueId> touched;
    for (QueueRecipientId id : recipients) {
      const auto queue_id = locked_queue_id(db, "notice_owed = 1", id, nullptr);
      if (!queue_id) continue;
      auto sent = db.prepare("UPDATE queue_recipients SET notice_owed = 0 WHERE id = ?");
      sent->bind(1, id);
      sent->execute();
      touched.insert(*queue_id);
    }
    for (QueueId id : touched) remove_if_finished(db, id);
    return stored;
  });
}

std::vector<QueuedMessage> MysqlQueueStore::list(const QueueFilter& filter) {
  // The statement has only the conditions the filter asks for (up to 8 prepared variants).
  std::string text = sql({"SELECT ", envelope_columns, envelope_tables, " WHERE TRUE"});
  if (filter.queued_before) text += " AND q.queued_at < ?";
  if (filter.domain || filter.state) {
    text += " AND EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id";
    if (filter.domain) text += " AND r.domain = ?";
    if (filter.state) text += " AND r.state = ?";
    text += ")";
  }
  text += " ORDER BY q.id LIMIT ?";
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    auto query = db.prepare(text);
    int index = 0;
    if (filter.queued_before) query->bind(++index, *filter.queued_before);
    if (filter.domain) query->bind_text(++index, lowercase_ascii(*filter.domain));
    if (filter.state) query->bind(++index, static_cast<std::int64_t>(*filter.state));
    query->bind(++index, as_limit(filter.limit));
    std::vector<QueuedMessage> messages;
    while (query->step()) messages.push_back(read_envelope(*query));
    for (QueuedMessage& message : messages)
      message.recipients = load_recipients(db, message.id, false);
    return messages;
  });
}

std::optional<QueuedMessage> MysqlQueueStore::get(QueueId id) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    auto message = load_envelope(db, id);
    if (message) message->recipients = load_recipients(db, id, false);
    return message;
  });
}

std::size_t MysqlQueueStore::retry(std::optional<QueueId> id) {
  return pool_.write([&](Connection& db) {
    const UnixTime now = unix_now();
    if (id) {
      auto update = db.prepare(
          "UPDATE queue_recipients SET next_attempt = LEAST(next_attempt, ?) "
          "WHERE state = 0 AND queue_id = ?");
      update->bind(1, now).bind(2, *id);
      return static_cast<std::size_t>(update->execute());
    }
    auto update = db.prepare(
        "UPDATE queue_recipients SET next_attempt = LEAST(next_attempt, ?) WHERE state = 0");
    update->bind(1, now);
    return static_cast<std::size_t>(update->execute());
  });
}

bool MysqlQueueStore::remove(QueueId id) {
  return pool_.write([&](Connection& db) {
    // Its recipients go by ON DELETE CASCADE; the content stays for other references.
    auto remove = db.prepare("DELETE FROM queue_messages WHERE id = ?");
    remove->bind(1, id);
    return remove->execute() == 1;
  });
}

std::size_t MysqlQueueStore::bounce(QueueId id, std::string_view reason) {
  const std::string text(reason);
  return pool_.write([&](Connection& db) {
    // A notice is owed when the sender can get one (not the null sender) and asked for it:
    // NOTIFY absent or with FAILURE, and not NEVER. An attempt in flight loses its lease, so
    // its result is skipped when it comes.
    auto fail = db.prepare(
        "UPDATE queue_recipients SET state = 2, last_reply = ?, remote_host = '', "
        "lease_owner = NULL, lease_expires = 0, notice_owed = CASE WHEN "
        "(SELECT reverse_path FROM queue_messages WHERE id = ?) <> '' "
        "AND (notify = 0 OR (notify & ?) <> 0) AND (notify & ?) = 0 THEN 1 ELSE notice_owed END "
        "WHERE queue_id = ? AND state = 0");
    fail->bind_bytes(1, text)
        .bind(2, id)
        .bind(3, static_cast<std::int64_t>(notify_failure))
        .bind(4, static_cast<std::int64_t>(notify_never))
        .bind(5, id);
    const auto failed = static_cast<std::size_t>(fail->execute());
    remove_if_finished(db, id);
    return failed;
  });
}

}  // namespace maild::store::mysql
