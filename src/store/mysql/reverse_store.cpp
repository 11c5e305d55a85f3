// SOURCE/GET on MySQL: pending retrievals and pickups as write transactions (each one commit,
// counters included), listings and texts as reads; per-domain policy; counters. Retrieval
// claims take rows with SELECT ... FOR UPDATE SKIP LOCKED, as queue claims do, so nodes sharing
// the store never lease one retrieval twice and never wait for each other.
// Trust: tokens and envelopes were validated by the session or courier and are checked again
// here (reverse_fields.hpp); tokens never go into an exception's text.
#include <limits>

#include "maild/core/hash.hpp"
#include "store/addressing.hpp"
#include "store/mysql/mysql_store.hpp"
#include "store/reverse_fields.hpp"

namespace maild::store::mysql {
namespace {

// A LIMIT for a count: as SQLite reads it (0 is none), capped to what MySQL takes.
std::int64_t as_count(std::size_t count) {
  return count > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(count);
}

std::int64_t as_size(std::size_t octets) { return static_cast<std::int64_t>(octets); }

void bump(Connection& db, std::string_view name, std::int64_t delta) {
  auto add = db.prepare(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = value + ?");
  add->bind_text(1, name).bind(2, delta).bind(3, delta);
  add->execute();
}

// ---- pending retrievals ----

constexpr std::string_view retrieval_columns =
    "id, token, reverse_path, sender_domain, declared_size, client_address, helo, trace, "
    "received_at, state, attempts, next_attempt, last_error, lease_owner, lease_expires";

PendingRetrieval read_retrieval_row(const Statement& row) {
  PendingRetrieval r;
  r.id = row.column_int(0);
  r.token = row.column_text(1);
  r.reverse_path = row.column_text(2);
  r.sender_domain = row.column_text(3);
  if (!row.column_null(4)) r.declared_size = static_cast<std::uint64_t>(row.column_int(4));
  r.client_address = row.column_text(5);
  r.helo = row.column_blob(6);
  r.trace = row.column_blob(7);
  r.received_at = row.column_time(8);
  r.state = static_cast<RetrievalState>(row.column_int(9));
  r.attempts = static_cast<int>(row.column_int(10));
  r.next_attempt = row.column_time(11);
  r.last_error = row.column_blob(12);
  r.lease_owner = row.column_text(13);
  r.lease_expires = row.column_time(14);
  return r;
}

// Recipients in the order they were accepted; one address's mailboxes together.
void read_retrieval_recipients(Connection& db, PendingRetrieval& r) {
  auto query = db.prepare(
      "SELECT address, mailbox_id FROM pending_recipients WHERE retrieval_id = ? ORDER BY id");
  query->bind(1, r.id);
  while (query->step()) {
    auto address = query->column_text(0);
    if (r.recipients.empty() || r.recipients.back().address != address)
      r.recipients.push_back({std::move(address), {}});
    r.recipients.back().mailboxes.push_back(query->column_int(1));
  }
}

// What the rows `select` yields (bound by `bind`) hold, in that order, with their recipients.
template <class Bind>
std::vector<PendingRetrieval> read_retrievals(Connection& db, const std::string& select,
                                              Bind bind) {
  std::vector<PendingRetrieval> retrievals;
  {
    auto query = db.prepare(select);
    bind(*query);
    while (query->step()) retrievals.push_back(read_retrieval_row(*query));
  }
  for (PendingRetrieval& r : retrievals) read_retrieval_recipients(db, r);
  return retrievals;
}

// The retrieval a token names, if any: its id and reverse-path. `locking`: the newest committed
// row (a locking read), not this transaction's snapshot.
std::optional<std::pair<RetrievalId, std::string>> find_token(Connection& db,
                                                              const std::string& token,
                                                              bool locking) {
  auto query = db.prepare(locking ? "SELECT id, reverse_path FROM pending_retrievals "
                                    "WHERE token = ? LOCK IN SHARE MODE"
                                  : "SELECT id, reverse_path FROM pending_retrievals "
                                    "WHERE token = ?");
  query->bind_text(1, token);
  if (!query->step()) return std::nullopt;
  return std::make_pair(query->column_int(0), query->column_text(1));
}

RetrievalAdded known_token(const std::pair<RetrievalId, std::string>& row,
                           const std::string& reverse_path) {
  // The same SOURCE again (its 250 was lost) is the same retrieval.
  if (row.second == reverse_path) return {RetrievalAdded::Outcome::already_added, row.first};
  return {RetrievalAdded::Outcome::token_taken, 0};
}

// Each write below names the retrieval, then checks that `owner` holds its lease (? ?).
constexpr std::string_view leased_by =
    " WHERE id = ? AND lease_owner = ? AND lease_owner <> '' AND state = 0";

std::string with_lease_check(std::string_view update) {
  return std::string(update) + std::string(leased_by);
}

// ---- pickups ----

constexpr std::string_view pickup_select =
    "SELECT p.id, p.token, p.reverse_path, p.envid, p.ret, p.smtputf8, p.arrival, p.peer, "
    "m.content_hash, p.size, p.created_at, p.confirmed_at, p.first_fetched_at, p.fetch_count, "
    "p.state FROM pickups p LEFT JOIN messages m ON m.id = p.message_id";

Pickup read_pickup_row(const Statement& row) {
  Pickup p;
  p.id = row.column_int(0);
  p.token = row.column_text(1);
  p.reverse_path = row.column_text(2);
  p.envid = row.column_blob(3);
  p.ret = static_cast<DsnReturn>(row.column_int(4));
  p.smtputf8 = row.column_int(5) != 0;
  p.arrival = row.column_time(6);
  p.peer = row.column_text(7);
  p.content_hash = row.column_text(8);  // NULL (purged) reads as ""
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
      "SELECT address, domain, notify, orcpt FROM pickup_recipients WHERE pickup_id = ? "
      "ORDER BY id");
  query->bind(1, p.id);
  while (query->step()) {
    p.recipients.push_back({query->column_text(0), query->column_text(1),
                            static_cast<unsigned>(query->column_int(2)), query->column_blob(3)});
  }
}

// Reads the pickups `tail` (after pickup_select, bound by `bind`) yields, in that order.
template <class Bind>
std::vector<Pickup> read_pickups(Connection& db, std::string_view tail, Bind bind) {
  std::vector<Pickup> pickups;
  {
    auto query = db.prepare(std::string(pickup_select) + std::string(tail));
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

}  // namespace

// ---- pending retrievals ----

RetrievalAdded MysqlReverseStore::add_retrieval(const NewRetrieval& retrieval,
                                                std::size_t max_per_domain,
                                                std::size_t max_per_client) {
  const std::string domain = checked_retrieval(retrieval);
  return pool_.write([&](Connection& db) {
    if (auto known = find_token(db, retrieval.token, false))
      return known_token(*known, retrieval.reverse_path);
    {
      // Not a locking count: sessions recording SOURCEs from one domain at once do not queue
      // behind each other, and may each pass a bound the domain is just below.
      auto count = db.prepare(
          "SELECT COUNT(*) FROM pending_retrievals WHERE sender_domain = ? AND state = 0");
      count->bind_text(1, domain);
      count->step();
      if (count->column_int(0) >= as_count(max_per_domain))
        return RetrievalAdded{RetrievalAdded::Outcome::domain_full, 0};
    }
    {
      auto count = db.prepare(
          "SELECT COUNT(*) FROM pending_retrievals WHERE client_address = ? AND state = 0");
      count->bind_text(1, retrieval.client_address);
      count->step();
      if (count->column_int(0) >= as_count(max_per_client))
        return RetrievalAdded{RetrievalAdded::Outcome::client_full, 0};
    }
    const UnixTime now = unix_now();
    try {
      auto insert = db.prepare(
          "INSERT INTO pending_retrievals (token, reverse_path, sender_domain, declared_size, "
          "client_address, helo, trace, received_at, next_attempt, last_error) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')");
      insert->bind_text(1, retrieval.token)
          .bind_text(2, retrieval.reverse_path)
          .bind_text(3, domain)
          .bind_text(5, retrieval.client_address)
          .bind_bytes(6, retrieval.helo)
          .bind_blob(7, retrieval.trace)
          .bind(8, now)
          .bind(9, now);  // due at once
      if (retrieval.declared_size)
        insert->bind(4, static_cast<std::int64_t>(*retrieval.declared_size));
      else
        insert->bind_null(4);
      insert->execute();
    } catch (const MysqlError& error) {
      // Another session recorded this token since we looked (InnoDB made this INSERT wait for
      // its commit): a retried SOURCE, or a token taken. Only the INSERT was undone.
      if (error.kind != FailureKind::duplicate) throw;
      auto known = find_token(db, retrieval.token, true);
      if (!known) throw;
      return known_token(*known, retrieval.reverse_path);
    }
    const RetrievalId id = db.last_insert_id();
    for (const auto& recipient : retrieval.recipients) {
      for (const MailboxId mailbox : recipient.mailboxes) {
        auto insert = db.prepare(
            "INSERT INTO pending_recipients (retrieval_id, address, mailbox_id) VALUES (?, ?, ?)");
        insert->bind(1, id).bind_text(2, recipient.address).bind(3, mailbox);
        insert->execute();
      }
    }
    bump(db, counter::source_accepted, 1);
    return RetrievalAdded{RetrievalAdded::Outcome::added, id};
  });
}

std::vector<PendingRetrieval> MysqlReverseStore::claim_retrievals(std::string_view owner,
                                                                  std::chrono::seconds lease,
                                                                  std::size_t limit) {
  if (owner.empty()) throw StoreConflict("a lease needs an owner");
  if (limit == 0) return {};
  const std::string holder(owner);
  const std::int64_t count = as_count(limit);
  return pool_.write(
      [&](Connection& db) {
        // The clock is read when the write runs; a lease holds through the whole second
        // lease_expires, as maildrop locks do.
        const UnixTime now = unix_now();
        std::vector<RetrievalId> candidates;
        {
          // More candidates than wanted: those another claimer takes meanwhile are skipped.
          auto due = db.prepare(retrieval_due_sql);
          due->bind(1, now).bind(2, now).bind(
              3, count > std::numeric_limits<std::int64_t>::max() / 4 ? count : count * 4);
          while (due->step()) candidates.push_back(due->column_int(0));
        }
        // Taken one by one in the candidates' order (sender domain, then oldest), so that
        // exactly the rows leased are locked; a row another claimer holds is skipped, not
        // waited for, so claimers never wait for each other.
        std::vector<RetrievalId> taken;
        for (const RetrievalId id : candidates) {
          if (static_cast<std::int64_t>(taken.size()) == count) break;
          auto take = db.prepare(retrieval_take_sql);
          take->bind(1, id).bind(2, now).bind(3, now);
          if (take->step()) taken.push_back(id);
        }
        static const std::string by_id =
            "SELECT " + std::string(retrieval_columns) + " FROM pending_retrievals WHERE id = ?";
        std::vector<PendingRetrieval> claimed;
        for (const RetrievalId id : taken) {
          {
            auto lease_it = db.prepare(
                "UPDATE pending_retrievals SET lease_owner = ?, lease_expires = ? WHERE id = ?");
            lease_it->bind_text(1, holder).bind(2, now + lease).bind(3, id);
            lease_it->execute();
          }
          for (auto& r : read_retrievals(db, by_id, [id](Statement& query) { query.bind(1, id); }))
            claimed.push_back(std::move(r));
        }
        return claimed;
      },
      Isolation::read_committed);
}

bool MysqlReverseStore::renew_retrievals(std::string_view owner,
                                         const std::vector<RetrievalId>& ids,
                                         std::chrono::seconds lease) {
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    const UnixTime expires = unix_now() + lease;
    bool all_ours = true;
    for (const RetrievalId id : ids) {
      auto renew = db.prepare(with_lease_check("UPDATE pending_retrievals SET lease_expires = ?"));
      renew->bind(1, expires).bind(2, id).bind_text(3, holder);
      if (renew->execute() != 1) all_ours = false;  // matched, even when the value is the same
    }
    return all_ours;
  });
}

StoredMessage MysqlReverseStore::finish_retrieval(std::string_view owner, RetrievalId id,
                                                  const NewMessage& message) {
  const std::string holder(owner);
  // Hashed once, outside the transaction: a retried transaction does not hash again.
  const std::string content_hash = sha256(message.content).hex();
  return pool_.write([&](Connection& db) {
    {
      auto finish =
          db.prepare(with_lease_check("UPDATE pending_retrievals SET state = 1, finished_at = ?, "
                                      "attempts = attempts + 1, last_error = '', lease_owner = '', "
                                      "lease_expires = 0"));
      finish->bind(1, unix_now()).bind(2, id).bind_text(3, holder);
      if (finish->execute() != 1)
        throw StoreConflict("retrieval " + std::to_string(id) +
                            " is not pending under this worker's lease");
    }
    // Delivered exactly as MailStore::deliver does; if that fails, the retrieval stays pending.
    StoredMessage stored = accept_message(db, message, content_hash);
    for (const DeliveryId delivery : stored.deliveries) {
      auto mark = db.prepare("UPDATE deliveries SET verified = 1 WHERE id = ?");
      mark->bind(1, delivery);
      mark->execute();
    }
    bump(db, counter::get_fetched, 1);
    return stored;
  });
}

bool MysqlReverseStore::defer_retrieval(std::string_view owner, RetrievalId id,
                                        UnixTime next_attempt, std::string_view error) {
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    auto defer = db.prepare(
        with_lease_check("UPDATE pending_retrievals SET attempts = attempts + 1, "
                         "next_attempt = ?, last_error = ?, lease_owner = '', lease_expires = 0"));
    defer->bind(1, next_attempt).bind_bytes(2, error).bind(3, id).bind_text(4, holder);
    return defer->execute() == 1;
  });
}

bool MysqlReverseStore::fail_retrieval(std::string_view owner, RetrievalId id, RetrievalFailure why,
                                       std::string_view error) {
  const std::string holder(owner);
  return pool_.write([&](Connection& db) {
    {
      auto fail =
          db.prepare(with_lease_check("UPDATE pending_retrievals SET state = 2, finished_at = ?, "
                                      "attempts = attempts + 1, last_error = ?, lease_owner = '', "
                                      "lease_expires = 0"));
      fail->bind(1, unix_now()).bind_bytes(2, error).bind(3, id).bind_text(4, holder);
      if (fail->execute() != 1) return false;
    }
    bump(db, why == RetrievalFailure::permanent ? counter::get_failed : counter::get_expired, 1);
    return true;
  });
}

std::optional<UnixTime> MysqlReverseStore::next_retrieval_due() {
  return pool_.read([&](Connection& db) -> std::optional<UnixTime> {
    auto query = db.prepare("SELECT MIN(next_attempt) FROM pending_retrievals WHERE state = 0");
    if (!query->step() || query->column_null(0)) return std::nullopt;
    return query->column_time(0);
  });
}

std::vector<PendingRetrieval> MysqlReverseStore::list_retrievals(std::size_t limit) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    return read_retrievals(db,
                           "SELECT " + std::string(retrieval_columns) +
                               " FROM pending_retrievals ORDER BY id DESC LIMIT ?",
                           [limit](Statement& query) { query.bind(1, as_count(limit)); });
  });
}

std::size_t MysqlReverseStore::purge_retrievals(UnixTime finished_before) {
  return pool_.write(
      [&](Connection& db) {
        // Their recipients go by ON DELETE CASCADE.
        auto purge =
            db.prepare("DELETE FROM pending_retrievals WHERE state > 0 AND finished_at < ?");
        purge->bind(1, finished_before);
        return static_cast<std::size_t>(purge->execute());
      },
      Isolation::read_committed);  // rows passed over stay free for claims and finishes
}

// ---- pickups ----

PickupId MysqlReverseStore::create_pickup(const NewPickup& pickup) {
  check_pickup(pickup);
  const std::string content_hash = sha256(pickup.content).hex();
  const std::string taken = "a pickup with this token exists";
  try {
    return pool_.write([&](Connection& db) {
      {
        auto exists = db.prepare("SELECT 1 FROM pickups WHERE token = ?");
        exists->bind_text(1, pickup.token);
        if (exists->step()) throw StoreConflict(taken);
      }
      const UnixTime now = unix_now();
      const MessageId message_id = store_content(db, pickup.content, content_hash, now);
      {
        auto insert = db.prepare(
            "INSERT INTO pickups (token, message_id, outbound_trace, size, reverse_path, envid, "
            "ret, smtputf8, arrival, peer, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        insert->bind_text(1, pickup.token)
            .bind(2, message_id)
            .bind_blob(3, pickup.outbound_trace)
            .bind(4, as_size(pickup.outbound_trace.size() + pickup.content.size()))
            .bind_text(5, pickup.reverse_path)
            .bind_bytes(6, pickup.envid)
            .bind(7, static_cast<std::int64_t>(pickup.ret))
            .bind(8, pickup.smtputf8 ? 1 : 0)
            .bind(9, pickup.arrival)
            .bind_text(10, pickup.peer)
            .bind(11, now);
        insert->execute();
      }
      const PickupId id = db.last_insert_id();
      for (const auto& recipient : pickup.recipients) {
        auto insert = db.prepare(
            "INSERT INTO pickup_recipients (pickup_id, address, domain, notify, orcpt) "
            "VALUES (?, ?, ?, ?, ?)");
        insert->bind(1, id)
            .bind_text(2, recipient.address)
            .bind_text(3, lowercase_ascii(recipient.domain))
            .bind(4, static_cast<std::int64_t>(recipient.notify))
            .bind_bytes(5, recipient.orcpt);
        insert->execute();
      }
      return id;
    });
  } catch (const MysqlError& error) {
    // UNIQUE (token) refused a row another writer added since we looked: the same answer.
    if (error.kind == FailureKind::duplicate) throw StoreConflict(taken);
    throw;
  }
}

bool MysqlReverseStore::confirm_pickup(PickupId id) {
  return pool_.write([&](Connection& db) {
    auto confirm =
        db.prepare("UPDATE pickups SET state = 1, confirmed_at = ? WHERE id = ? AND state = 0");
    confirm->bind(1, unix_now()).bind(2, id);
    return confirm->execute() == 1;
  });
}

bool MysqlReverseStore::cancel_pickup(PickupId id) {
  return pool_.write([&](Connection& db) {
    auto cancel = db.prepare(
        "UPDATE pickups SET state = 4, message_id = NULL, outbound_trace = '' "
        "WHERE id = ? AND state = 0");
    cancel->bind(1, id);
    return cancel->execute() == 1;
  });
}

std::optional<Pickup> MysqlReverseStore::find_pickup(std::string_view token) {
  if (!valid_token(token)) return std::nullopt;
  const std::string key(token);
  return pool_.read([&](Connection& db) -> std::optional<Pickup> {
    ReadTransaction snapshot(db);
    auto found = read_pickups(db, " WHERE p.token = ?",
                              [&key](Statement& query) { query.bind_text(1, key); });
    if (found.empty()) return std::nullopt;
    return std::move(found.front());
  });
}

std::optional<MessageText> MysqlReverseStore::pickup_text(PickupId id) {
  return pool_.read([&](Connection& db) -> std::optional<MessageText> {
    auto query = db.prepare(
        "SELECT p.outbound_trace, m.content FROM pickups p JOIN messages m ON m.id = p.message_id "
        "WHERE p.id = ? AND p.state <= 2");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    return MessageText{query->column_blob(0), query->column_blob(1)};
  });
}

bool MysqlReverseStore::mark_transferred(PickupId id) {
  return pool_.write([&](Connection& db) {
    {
      auto mark = db.prepare(
          "UPDATE pickups SET state = 2, first_fetched_at = COALESCE(first_fetched_at, ?), "
          "fetch_count = fetch_count + 1 WHERE id = ? AND state <= 2");
      mark->bind(1, unix_now()).bind(2, id);
      if (mark->execute() != 1) return false;
    }
    bump(db, counter::pickups_served, 1);
    return true;
  });
}

std::vector<Pickup> MysqlReverseStore::expired_pickups(UnixTime confirmed_before,
                                                       std::size_t limit) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    return read_pickups(db,
                        " WHERE p.state = 1 AND p.confirmed_at < ? "
                        "ORDER BY p.confirmed_at, p.id LIMIT ?",
                        [confirmed_before, limit](Statement& query) {
                          query.bind(1, confirmed_before).bind(2, as_count(limit));
                        });
  });
}

bool MysqlReverseStore::expire_pickup(PickupId id, const std::optional<NewMessage>& notice) {
  const std::string content_hash = notice ? sha256(notice->content).hex() : std::string();
  return pool_.write([&](Connection& db) {
    {
      auto expire = db.prepare("UPDATE pickups SET state = 3 WHERE id = ? AND state = 1");
      expire->bind(1, id);
      if (expire->execute() != 1) return false;
    }
    // Accepted exactly as MailStore::deliver does; if that fails, the pickup stays awaiting.
    if (notice) accept_message(db, *notice, content_hash);
    bump(db, counter::pickups_expired, 1);
    return true;
  });
}

std::size_t MysqlReverseStore::purge_pickups(UnixTime fetched_before, UnixTime offered_before) {
  // The messages row stays: other deliveries may share it (see docs/store.md).
  return pool_.write(
      [&](Connection& db) {
        auto purge = db.prepare(
            "UPDATE pickups SET state = 4, message_id = NULL, outbound_trace = '' "
            "WHERE (state = 2 AND first_fetched_at < ?) OR state = 3 "
            "OR (state = 0 AND created_at < ?)");
        purge->bind(1, fetched_before).bind(2, offered_before);
        return static_cast<std::size_t>(purge->execute());
      },
      Isolation::read_committed);  // rows passed over stay free for GET and confirmations
}

std::vector<Pickup> MysqlReverseStore::list_pickups(std::size_t limit) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    return read_pickups(db, " ORDER BY p.id DESC LIMIT ?",
                        [limit](Statement& query) { query.bind(1, as_count(limit)); });
  });
}

// ---- per-domain policy ----

DomainPolicy MysqlReverseStore::policy(std::string_view domain) {
  const std::string name = lowercase_ascii(domain);
  return pool_.read([&](Connection& db) {
    auto query = db.prepare(
        "SELECT domain, unverified_policy, tls_policy FROM domain_policies WHERE domain = ?");
    query->bind_text(1, name);
    if (!query->step()) return DomainPolicy{name, std::nullopt, std::nullopt};
    return read_policy_row(*query);
  });
}

void MysqlReverseStore::set_policy(const DomainPolicy& policy) {
  const std::string name = lowercase_ascii(policy.domain);
  if (name.empty()) throw StoreConflict("a policy needs a domain");
  pool_.write([&](Connection& db) {
    if (policy.unverified) {
      // The shared lock keeps the domain until this commits: deleting it meanwhile waits, and
      // its trigger (domains_drop_unverified_policy) then sees this row.
      auto ours = db.prepare("SELECT id FROM domains WHERE name = ? LOCK IN SHARE MODE");
      ours->bind_text(1, name);
      if (!ours->step())
        throw StoreConflict("unknown domain " + name +
                            ": a policy for unverified mail is for our own domains");
    }
    if (!policy.unverified && !policy.tls) {
      auto remove = db.prepare("DELETE FROM domain_policies WHERE domain = ?");
      remove->bind_text(1, name);
      remove->execute();
      return;
    }
    auto write = db.prepare(
        "INSERT INTO domain_policies (domain, unverified_policy, tls_policy, updated_at) "
        "VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE unverified_policy = ?, tls_policy = ?, "
        "updated_at = ?");
    const UnixTime now = unix_now();
    write->bind_text(1, name).bind(4, now).bind(7, now);
    for (const int index : {2, 5}) {
      if (policy.unverified)
        write->bind_text(index, policy_word(*policy.unverified));
      else
        write->bind_null(index);
    }
    for (const int index : {3, 6}) {
      if (policy.tls)
        write->bind_text(index, policy_word(*policy.tls));
      else
        write->bind_null(index);
    }
    write->execute();
  });
}

std::vector<DomainPolicy> MysqlReverseStore::list_policies() {
  return pool_.read([&](Connection& db) {
    auto query = db.prepare(
        "SELECT domain, unverified_policy, tls_policy FROM domain_policies ORDER BY domain");
    std::vector<DomainPolicy> policies;
    while (query->step()) policies.push_back(read_policy_row(*query));
    return policies;
  });
}

// ---- counters ----

void MysqlReverseStore::add_counter(std::string_view name, std::int64_t delta) {
  if (name.empty()) throw StoreConflict("a counter needs a name");
  pool_.write([&](Connection& db) { bump(db, name, delta); });
}

ReverseStats MysqlReverseStore::stats() {
  return pool_.read([&](Connection& db) {
    ReverseStats stats;
    for (const char* name : reverse_counter_names) stats.counters[name] = 0;
    ReadTransaction snapshot(db);
    {
      auto query = db.prepare("SELECT name, value FROM counters");
      while (query->step()) stats.counters[query->column_text(0)] = query->column_int(1);
    }
    stats.retrievals_pending =
        db.query_int("SELECT COUNT(*) FROM pending_retrievals WHERE state = 0");
    stats.pickups_waiting = db.query_int("SELECT COUNT(*) FROM pickups WHERE state <= 1");
    return stats;
  });
}

}  // namespace maild::store::mysql
