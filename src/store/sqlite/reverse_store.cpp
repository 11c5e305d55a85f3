// SOURCE/GET on SQLite: pending retrievals and pickups as writer jobs (each one
// commit, counters included), reads from the pool; per-domain policy; counters.
// Trust: tokens and envelopes were validated by the session or courier and are
// checked again here; tokens never go into an exception's text.
#include "maild/core/hash.hpp"
#include "store/addressing.hpp"
#include "store/reverse_fields.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {

std::int64_t as_int(std::size_t value) { return static_cast<std::int64_t>(value); }

void bump(Connection& db, std::string_view name, std::int64_t delta) {
  auto add = db.prepare(
      "INSERT INTO counters (name, value) VALUES (?1, ?2) "
      "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value");
  add->bind_text(1, name).bind(2, delta);
  add->step();
}

// ---- pending retrievals ----

constexpr std::string_view retrieval_columns =
    "id, token, reverse_path, sender_domain, declared_size IS NULL, declared_size, "
    "client_address, helo, trace, received_at, state, attempts, next_attempt, last_error, "
    "lease_owner, lease_expires";

PendingRetrieval read_retrieval_row(const Statement& row) {
  PendingRetrieval r;
  r.id = row.column_int(0);
  r.token = row.column_text(1);
  r.reverse_path = row.column_text(2);
  r.sender_domain = row.column_text(3);
  if (row.column_int(4) == 0) r.declared_size = static_cast<std::uint64_t>(row.column_int(5));
  r.client_address = row.column_text(6);
  r.helo = row.column_text(7);
  r.trace = row.column_blob(8);
  r.received_at = row.column_time(9);
  r.state = static_cast<RetrievalState>(row.column_int(10));
  r.attempts = static_cast<int>(row.column_int(11));
  r.next_attempt = row.column_time(12);
  r.last_error = row.column_text(13);
  r.lease_owner = row.column_text(14);
  r.lease_expires = row.column_time(15);
  return r;
}

// Recipients in the order they were accepted; one address's mailboxes together.
void read_retrieval_recipients(Connection& db, PendingRetrieval& r) {
  auto query = db.prepare(
      "SELECT address, mailbox_id FROM pending_recipients WHERE retrieval_id = ?1 ORDER BY id");
  query->bind(1, r.id);
  while (query->step()) {
    auto address = query->column_text(0);
    if (r.recipients.empty() || r.recipients.back().address != address)
      r.recipients.push_back({std::move(address), {}});
    r.recipients.back().mailboxes.push_back(query->column_int(1));
  }
}

std::optional<PendingRetrieval> read_retrieval(Connection& db, RetrievalId id) {
  std::optional<PendingRetrieval> r;
  {
    auto query = db.prepare("SELECT " + std::string(retrieval_columns) +
                            " FROM pending_retrievals WHERE id = ?1");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    r = read_retrieval_row(*query);
  }
  read_retrieval_recipients(db, *r);
  return r;
}

// ---- pickups ----

constexpr std::string_view pickup_columns =
    "p.id, p.token, p.reverse_path, p.envid, p.ret, p.smtputf8, p.arrival, p.peer, "
    "m.content_hash, p.size, p.created_at, p.confirmed_at, p.first_fetched_at, p.fetch_count, "
    "p.state";
constexpr std::string_view pickup_from =
    " FROM pickups p LEFT JOIN messages m ON m.id = p.message_id";

Pickup read_pickup_row(const Statement& row) {
  Pickup p;
  p.id = row.column_int(0);
  p.token = row.column_text(1);
  p.reverse_path = row.column_text(2);
  p.envid = row.column_text(3);
  p.ret = static_cast<DsnReturn>(row.column_int(4));
  p.smtputf8 = row.column_int(5) != 0;
  p.arrival = row.column_time(6);
  p.peer = row.column_text(7);
  p.content_hash = row.column_text(8);
  p.size = static_cast<std::uint64_t>(row.column_int(9));
  p.created_at = row.column_time(10);
  p.confirmed_at = row.column_time(11);  // NULL reads as 0
  p.first_fetched_at = row.column_time(12);
  p.fetch_count = row.column_int(13);
  p.state = static_cast<PickupState>(row.column_int(14));
  return p;
}

void read_pickup_recipients(Connection& db, Pickup& p) {
  auto query = db.prepare(
      "SELECT address, domain, notify, orcpt FROM pickup_recipients WHERE pickup_id = ?1 "
      "ORDER BY id");
  query->bind(1, p.id);
  while (query->step()) {
    p.recipients.push_back({query->column_text(0), query->column_text(1),
                            static_cast<unsigned>(query->column_int(2)), query->column_text(3)});
  }
}

// Reads the pickups whose ids `select` yields (bound by `bind`), in that order.
template <class Bind>
std::vector<Pickup> read_pickups(Connection& db, const std::string& select, Bind bind) {
  std::vector<Pickup> pickups;
  {
    auto query = db.prepare(select);
    bind(*query);
    while (query->step()) pickups.push_back(read_pickup_row(*query));
  }
  for (Pickup& p : pickups) read_pickup_recipients(db, p);
  return pickups;
}

// ---- policy ----

DomainPolicy read_policy_row(const Statement& row) {
  return {row.column_text(0), unverified_policy_from(row.column_text(1)),
          tls_policy_from(row.column_text(2))};
}

// Each write below checks that `owner` holds the pending retrieval's lease.
constexpr std::string_view leased_by =
    " WHERE id = ?1 AND lease_owner = ?2 AND lease_owner <> '' AND state = 0";

}  // namespace

// ---- pending retrievals ----

RetrievalAdded SqliteReverseStore::add_retrieval(const NewRetrieval& retrieval,
                                                 std::size_t max_per_domain,
                                                 std::size_t max_per_client) {
  const std::string domain = checked_retrieval(retrieval);
  return writer_.call([&retrieval, &domain, max_per_domain, max_per_client](Connection& db) {
    {
      auto existing =
          db.prepare("SELECT id, reverse_path FROM pending_retrievals WHERE token = ?1");
      existing->bind_text(1, retrieval.token);
      if (existing->step()) {
        // The same SOURCE again (its 250 was lost) is the same retrieval.
        if (existing->column_text(1) == retrieval.reverse_path)
          return RetrievalAdded{RetrievalAdded::Outcome::already_added, existing->column_int(0)};
        return RetrievalAdded{RetrievalAdded::Outcome::token_taken, 0};
      }
    }
    {
      auto count = db.prepare(
          "SELECT count(*) FROM pending_retrievals WHERE sender_domain = ?1 AND state = 0");
      count->bind_text(1, domain);
      count->step();
      if (count->column_int(0) >= as_int(max_per_domain))
        return RetrievalAdded{RetrievalAdded::Outcome::domain_full, 0};
    }
    {
      auto count = db.prepare(
          "SELECT count(*) FROM pending_retrievals WHERE client_address = ?1 AND state = 0");
      count->bind_text(1, retrieval.client_address);
      count->step();
      if (count->column_int(0) >= as_int(max_per_client))
        return RetrievalAdded{RetrievalAdded::Outcome::client_full, 0};
    }
    const UnixTime now = unix_now();
    {
      auto insert = db.prepare(
          "INSERT INTO pending_retrievals (token, reverse_path, sender_domain, declared_size, "
          "client_address, helo, trace, received_at, next_attempt) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)");
      insert->bind_text(1, retrieval.token)
          .bind_text(2, retrieval.reverse_path)
          .bind_text(3, domain)
          .bind_text(5, retrieval.client_address)
          .bind_text(6, retrieval.helo)
          .bind_blob(7, retrieval.trace)
          .bind(8, now);
      if (retrieval.declared_size)
        insert->bind(4, static_cast<std::int64_t>(*retrieval.declared_size));
      else
        insert->bind_null(4);
      insert->step();
    }
    const RetrievalId id = db.last_insert_rowid();
    for (const auto& recipient : retrieval.recipients) {
      for (const MailboxId mailbox : recipient.mailboxes) {
        auto insert = db.prepare(
            "INSERT INTO pending_recipients (retrieval_id, address, mailbox_id) "
            "VALUES (?1, ?2, ?3)");
        insert->bind(1, id).bind_text(2, recipient.address).bind(3, mailbox);
        insert->step();
      }
    }
    bump(db, counter::source_accepted, 1);
    return RetrievalAdded{RetrievalAdded::Outcome::added, id};
  });
}

std::vector<PendingRetrieval> SqliteReverseStore::claim_retrievals(std::string_view owner,
                                                                   std::chrono::seconds lease,
                                                                   std::size_t limit) {
  if (owner.empty()) throw StoreConflict("a lease needs an owner");
  const std::string holder(owner);
  return writer_.call([&holder, lease, limit](Connection& db) {
    const UnixTime now = unix_now();
    std::vector<RetrievalId> ids;
    {
      // A lease holds through the whole second lease_expires, as maildrop locks do.
      auto due = db.prepare(
          "SELECT id FROM pending_retrievals WHERE state = 0 AND next_attempt <= ?1 "
          "AND (lease_owner = '' OR lease_expires < ?1) "
          "ORDER BY sender_domain, received_at, id LIMIT ?2");
      due->bind(1, now).bind(2, as_int(limit));
      while (due->step()) ids.push_back(due->column_int(0));
    }
    std::vector<PendingRetrieval> claimed;
    for (const RetrievalId id : ids) {
      {
        auto take = db.prepare(
            "UPDATE pending_retrievals SET lease_owner = ?2, lease_expires = ?3 WHERE id = ?1");
        take->bind(1, id).bind_text(2, holder).bind(3, now + lease);
        take->step();
      }
      if (auto r = read_retrieval(db, id)) claimed.push_back(std::move(*r));
    }
    return claimed;
  });
}

bool SqliteReverseStore::renew_retrievals(std::string_view owner,
                                          const std::vector<RetrievalId>& ids,
                                          std::chrono::seconds lease) {
  const std::string holder(owner);
  return writer_.call([&holder, &ids, lease](Connection& db) {
    const UnixTime now = unix_now();
    bool all = true;
    for (const RetrievalId id : ids) {
      auto renew =
          db.prepare("UPDATE pending_retrievals SET lease_expires = ?3" + std::string(leased_by));
      renew->bind(1, id).bind_text(2, holder).bind(3, now + lease);
      renew->step();
      all = all && db.changes() == 1;
    }
    return all;
  });
}

StoredMessage SqliteReverseStore::finish_retrieval(std::string_view owner, RetrievalId id,
                                                   const NewMessage& message) {
  const std::string holder(owner);
  return writer_.call([&holder, id, &message](Connection& db) {
    const UnixTime now = unix_now();
    {
      auto finish = db.prepare(
          "UPDATE pending_retrievals SET state = 1, finished_at = ?3, attempts = attempts + 1, "
          "last_error = '', lease_owner = '', lease_expires = 0" +
          std::string(leased_by));
      finish->bind(1, id).bind_text(2, holder).bind(3, now);
      finish->step();
      if (db.changes() != 1)
        throw StoreConflict("retrieval " + std::to_string(id) +
                            " is not pending under this worker's lease");
    }
    StoredMessage stored = accept_message(db, message);
    for (const DeliveryId delivery : stored.deliveries) {
      auto mark = db.prepare("UPDATE deliveries SET verified = 1 WHERE id = ?1");
      mark->bind(1, delivery);
      mark->step();
    }
    bump(db, counter::get_fetched, 1);
    return stored;
  });
}

bool SqliteReverseStore::defer_retrieval(std::string_view owner, RetrievalId id,
                                         UnixTime next_attempt, std::string_view error) {
  const std::string holder(owner);
  const std::string reason(error);
  return writer_.call([&holder, id, next_attempt, &reason](Connection& db) {
    auto defer = db.prepare(
        "UPDATE pending_retrievals SET attempts = attempts + 1, next_attempt = ?3, "
        "last_error = ?4, lease_owner = '', lease_expires = 0" +
        std::string(leased_by));
    defer->bind(1, id).bind_text(2, holder).bind(3, next_attempt).bind_text(4, reason);
    defer->step();
    return db.changes() == 1;
  });
}

bool SqliteReverseStore::fail_retrieval(std::string_view owner, RetrievalId id,
                                        RetrievalFailure why, std::string_view error) {
  const std::string holder(owner);
  const std::string reason(error);
  return writer_.call([&holder, id, why, &reason](Connection& db) {
    {
      auto fail = db.prepare(
          "UPDATE pending_retrievals SET state = 2, finished_at = ?3, attempts = attempts + 1, "
          "last_error = ?4, lease_owner = '', lease_expires = 0" +
          std::string(leased_by));
      fail->bind(1, id).bind_text(2, holder).bind(3, unix_now()).bind_text(4, reason);
      fail->step();
      if (db.changes() != 1) return false;
    }
    bump(db, why == RetrievalFailure::permanent ? counter::get_failed : counter::get_expired, 1);
    return true;
  });
}

std::optional<UnixTime> SqliteReverseStore::next_retrieval_due() {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT next_attempt FROM pending_retrievals WHERE state = 0 ORDER BY next_attempt LIMIT 1");
  if (!query->step()) return std::nullopt;
  return query->column_time(0);
}

std::vector<PendingRetrieval> SqliteReverseStore::list_retrievals(std::size_t limit) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  std::vector<PendingRetrieval> list;
  {
    auto query = db->prepare("SELECT " + std::string(retrieval_columns) +
                             " FROM pending_retrievals ORDER BY id DESC LIMIT ?1");
    query->bind(1, as_int(limit));
    while (query->step()) list.push_back(read_retrieval_row(*query));
  }
  for (auto& r : list) read_retrieval_recipients(*db, r);
  return list;
}

std::size_t SqliteReverseStore::purge_retrievals(UnixTime finished_before) {
  return writer_.call([finished_before](Connection& db) {
    auto purge = db.prepare("DELETE FROM pending_retrievals WHERE state > 0 AND finished_at < ?1");
    purge->bind(1, finished_before);
    purge->step();
    return static_cast<std::size_t>(db.changes());
  });
}

// ---- pickups ----

PickupId SqliteReverseStore::create_pickup(const NewPickup& pickup) {
  check_pickup(pickup);
  const std::string content_hash = sha256(pickup.content).hex();
  return writer_.call([&pickup, &content_hash](Connection& db) {
    const UnixTime now = unix_now();
    {
      auto taken = db.prepare("SELECT 1 FROM pickups WHERE token = ?1");
      taken->bind_text(1, pickup.token);
      if (taken->step()) throw StoreConflict("a pickup with this token exists");
    }
    {
      auto insert = db.prepare(
          "INSERT INTO messages (content_hash, size, content, created_at) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (content_hash) DO NOTHING");
      insert->bind_text(1, content_hash)
          .bind(2, as_int(pickup.content.size()))
          .bind_blob(3, pickup.content)
          .bind(4, now);
      insert->step();
    }
    std::int64_t message_id = 0;
    {
      auto query = db.prepare("SELECT id FROM messages WHERE content_hash = ?1");
      query->bind_text(1, content_hash);
      if (!query->step()) throw StoreError("sqlite: the message row vanished while offering it");
      message_id = query->column_int(0);
    }
    {
      auto insert = db.prepare(
          "INSERT INTO pickups (token, message_id, outbound_trace, size, reverse_path, envid, "
          "ret, smtputf8, arrival, peer, created_at) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
      insert->bind_text(1, pickup.token)
          .bind(2, message_id)
          .bind_blob(3, pickup.outbound_trace)
          .bind(4, as_int(pickup.outbound_trace.size() + pickup.content.size()))
          .bind_text(5, pickup.reverse_path)
          .bind_text(6, pickup.envid)
          .bind(7, static_cast<std::int64_t>(pickup.ret))
          .bind(8, pickup.smtputf8 ? 1 : 0)
          .bind(9, pickup.arrival)
          .bind_text(10, pickup.peer)
          .bind(11, now);
      insert->step();
    }
    const PickupId id = db.last_insert_rowid();
    for (const auto& recipient : pickup.recipients) {
      auto insert = db.prepare(
          "INSERT INTO pickup_recipients (pickup_id, address, domain, notify, orcpt) "
          "VALUES (?1, ?2, ?3, ?4, ?5)");
      insert->bind(1, id)
          .bind_text(2, recipient.address)
          .bind_text(3, lowercase_ascii(recipient.domain))
          .bind(4, static_cast<std::int64_t>(recipient.notify))
          .bind_text(5, recipient.orcpt);
      insert->step();
    }
    return id;
  });
}

bool SqliteReverseStore::confirm_pickup(PickupId id) {
  return writer_.call([id](Connection& db) {
    auto confirm =
        db.prepare("UPDATE pickups SET state = 1, confirmed_at = ?2 WHERE id = ?1 AND state = 0");
    confirm->bind(1, id).bind(2, unix_now());
    confirm->step();
    return db.changes() == 1;
  });
}

bool SqliteReverseStore::cancel_pickup(PickupId id) {
  return writer_.call([id](Connection& db) {
    auto cancel = db.prepare(
        "UPDATE pickups SET state = 4, message_id = NULL, outbound_trace = '' "
        "WHERE id = ?1 AND state = 0");
    cancel->bind(1, id);
    cancel->step();
    return db.changes() == 1;
  });
}

std::optional<Pickup> SqliteReverseStore::find_pickup(std::string_view token) {
  if (!valid_token(token)) return std::nullopt;
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  const std::string key(token);
  auto found = read_pickups(
      *db,
      "SELECT " + std::string(pickup_columns) + std::string(pickup_from) + " WHERE p.token = ?1",
      [&key](Statement& query) { query.bind_text(1, key); });
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::optional<MessageText> SqliteReverseStore::pickup_text(PickupId id) {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT p.outbound_trace, m.content FROM pickups p JOIN messages m ON m.id = p.message_id "
      "WHERE p.id = ?1 AND p.state <= 2");
  query->bind(1, id);
  if (!query->step()) return std::nullopt;
  return MessageText{query->column_blob(0), query->column_blob(1)};
}

bool SqliteReverseStore::mark_transferred(PickupId id) {
  return writer_.call([id](Connection& db) {
    {
      auto mark = db.prepare(
          "UPDATE pickups SET state = 2, first_fetched_at = coalesce(first_fetched_at, ?2), "
          "fetch_count = fetch_count + 1 WHERE id = ?1 AND state <= 2");
      mark->bind(1, id).bind(2, unix_now());
      mark->step();
      if (db.changes() != 1) return false;
    }
    bump(db, counter::pickups_served, 1);
    return true;
  });
}

std::vector<Pickup> SqliteReverseStore::expired_pickups(UnixTime confirmed_before,
                                                        std::size_t limit) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  return read_pickups(*db,
                      "SELECT " + std::string(pickup_columns) + std::string(pickup_from) +
                          " WHERE p.state = 1 AND p.confirmed_at < ?1 "
                          "ORDER BY p.confirmed_at, p.id LIMIT ?2",
                      [confirmed_before, limit](Statement& query) {
                        query.bind(1, confirmed_before).bind(2, as_int(limit));
                      });
}

bool SqliteReverseStore::expire_pickup(PickupId id, const std::optional<NewMessage>& notice) {
  return writer_.call([id, &notice](Connection& db) {
    {
      auto expire = db.prepare("UPDATE pickups SET state = 3 WHERE id = ?1 AND state = 1");
      expire->bind(1, id);
      expire->step();
      if (db.changes() != 1) return false;
    }
    if (notice) accept_message(db, *notice);
    bump(db, counter::pickups_expired, 1);
    return true;
  });
}

std::size_t SqliteReverseStore::purge_pickups(UnixTime fetched_before, UnixTime offered_before) {
  // The messages row stays: other deliveries may share it (see docs/store.md).
  return writer_.call([fetched_before, offered_before](Connection& db) {
    auto purge = db.prepare(
        "UPDATE pickups SET state = 4, message_id = NULL, outbound_trace = '' "
        "WHERE (state = 2 AND first_fetched_at < ?1) OR state = 3 "
        "OR (state = 0 AND created_at < ?2)");
    purge->bind(1, fetched_before).bind(2, offered_before);
    purge->step();
    return static_cast<std::size_t>(db.changes());
  });
}

std::vector<Pickup> SqliteReverseStore::list_pickups(std::size_t limit) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  return read_pickups(*db,
                      "SELECT " + std::string(pickup_columns) + std::string(pickup_from) +
                          " ORDER BY p.id DESC LIMIT ?1",
                      [limit](Statement& query) { query.bind(1, as_int(limit)); });
}

// ---- per-domain policy ----

DomainPolicy SqliteReverseStore::policy(std::string_view domain) {
  const std::string name = lowercase_ascii(domain);
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT domain, unverified_policy, tls_policy FROM domain_policies WHERE domain = ?1");
  query->bind_text(1, name);
  if (!query->step()) return DomainPolicy{name, std::nullopt, std::nullopt};
  return read_policy_row(*query);
}

void SqliteReverseStore::set_policy(const DomainPolicy& policy) {
  const std::string name = lowercase_ascii(policy.domain);
  if (name.empty()) throw StoreConflict("a policy needs a domain");
  writer_.call([&policy, &name](Connection& db) {
    if (policy.unverified && !find_domain_id(db, name))
      throw StoreConflict("unknown domain " + name +
                          ": a policy for unverified mail is for our own domains");
    if (!policy.unverified && !policy.tls) {
      auto remove = db.prepare("DELETE FROM domain_policies WHERE domain = ?1");
      remove->bind_text(1, name);
      remove->step();
      return;
    }
    auto write = db.prepare(
        "INSERT INTO domain_policies (domain, unverified_policy, tls_policy, updated_at) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (domain) DO UPDATE SET "
        "unverified_policy = excluded.unverified_policy, tls_policy = excluded.tls_policy, "
        "updated_at = excluded.updated_at");
    write->bind_text(1, name).bind(4, unix_now());
    if (policy.unverified)
      write->bind_text(2, policy_word(*policy.unverified));
    else
      write->bind_null(2);
    if (policy.tls)
      write->bind_text(3, policy_word(*policy.tls));
    else
      write->bind_null(3);
    write->step();
  });
}

std::vector<DomainPolicy> SqliteReverseStore::list_policies() {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT domain, unverified_policy, tls_policy FROM domain_policies ORDER BY domain");
  std::vector<DomainPolicy> policies;
  while (query->step()) policies.push_back(read_policy_row(*query));
  return policies;
}

// ---- counters ----

void SqliteReverseStore::add_counter(std::string_view name, std::int64_t delta) {
  if (name.empty()) throw StoreConflict("a counter needs a name");
  const std::string key(name);
  writer_.call([&key, delta](Connection& db) { bump(db, key, delta); });
}

ReverseStats SqliteReverseStore::stats() {
  ReverseStats stats;
  for (const char* name : reverse_counter_names) stats.counters[name] = 0;
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  {
    auto query = db->prepare("SELECT name, value FROM counters");
    while (query->step()) stats.counters[query->column_text(0)] = query->column_int(1);
  }
  stats.retrievals_pending =
      db->query_int("SELECT count(*) FROM pending_retrievals WHERE state = 0");
  stats.pickups_waiting = db->query_int("SELECT count(*) FROM pickups WHERE state <= 1");
  return stats;
}

}  // namespace maild::store::sqlite
