// mailctl's view of the store: writes go through the writer thread, reads through the pool.
// Trust: arguments come from an administrator; each is checked and a mistake becomes a
// StoreConflict.
#include <limits>

#include "store/addressing.hpp"
#include "store/message_fields.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {

// Subjects live in the header; reading this much of each message is enough for a listing.
constexpr int header_prefix_octets = 64 * 1024;

SplitAddress parse_mailbox(std::string_view address) {
  auto split = split_address(address);
  if (!split || split->local.empty()) {
    throw StoreConflict("'" + std::string(address) + "' is not an address (local@domain)");
  }
  return *split;
}

std::int64_t require_domain(Connection& db, std::string_view domain) {
  auto id = find_domain_id(db, domain);
  if (!id) throw StoreConflict("unknown domain " + std::string(domain));
  return *id;
}

std::int64_t require_mailbox(Connection& db, std::string_view address) {
  auto id = find_mailbox_id(db, address);
  if (!id) throw StoreConflict("no mailbox " + std::string(address));
  return *id;
}

// "local@domain" as a source, or "@domain" for the catch-all; the domain must be ours.
struct AliasSource {
  std::int64_t domain_id;
  SplitAddress address;
};

AliasSource parse_alias_source(Connection& db, std::string_view source) {
  auto split = split_address(source);
  if (!split) throw StoreConflict("'" + std::string(source) + "' is not local@domain or @domain");
  return {require_domain(db, split->domain), std::move(*split)};
}

std::string display_source(const std::string& local, const std::string& domain) {
  return local + "@" + domain;  // "" local part gives "@domain", the catch-all's spelling
}

MailSummary read_summary(Statement& row) {
  MailSummary summary;
  summary.id = row.column_int(0);
  summary.mailbox = row.column_text(1);
  summary.reverse_path = row.column_text(2);
  summary.subject = header_subject(row.column_blob(3));
  summary.size = static_cast<std::uint64_t>(row.column_int(4));
  summary.uidl = row.column_text(5);
  summary.status = static_cast<DeliveryStatus>(row.column_int(6));
  summary.received_at = row.column_time(7);
  summary.verified = row.column_int(8) != 0;
  return summary;
}

}  // namespace

StoreStatus SqliteAdminStore::status() {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  StoreStatus status;
  status.backend = "sqlite";
  status.location = location_.string();
  status.schema_version = schema_version(*db);
  status.latest_schema_version = latest_schema_version();
  if (status.schema_version == 0) return status;  // no tables to count yet
  status.domains = db->query_int("SELECT count(*) FROM domains");
  status.mailboxes = db->query_int("SELECT count(*) FROM mailboxes");
  status.aliases = db->query_int("SELECT count(*) FROM aliases");
  status.messages = db->query_int("SELECT count(*) FROM messages");
  status.deliveries = db->query_int("SELECT count(*) FROM deliveries");
  if (status.schema_version >= 3) {  // the queue came with version 3
    status.queued = db->query_int("SELECT count(*) FROM queue_recipients WHERE state = 0");
  }
  return status;
}

void SqliteAdminStore::add_domain(std::string_view name) {
  const std::string domain = lowercase_ascii(name);
  if (domain.empty() || domain.find('@') != std::string::npos) {
    throw StoreConflict("'" + std::string(name) + "' is not a domain name");
  }
  writer_.call([&](Connection& db) {
    if (find_domain_id(db, domain)) throw StoreConflict("domain " + domain + " already exists");
    auto insert = db.prepare("INSERT INTO domains (name, created_at) VALUES (?1, ?2)");
    insert->bind_text(1, domain).bind(2, unix_now());
    insert->step();
  });
}

void SqliteAdminStore::delete_domain(std::string_view name) {
  writer_.call([&](Connection& db) {
    const std::int64_t id = require_domain(db, name);
    // Its mailboxes (with their deliveries) and aliases go by ON DELETE CASCADE.
    auto remove = db.prepare("DELETE FROM domains WHERE id = ?1");
    remove->bind(1, id);
    remove->step();
  });
}

std::vector<Domain> SqliteAdminStore::list_domains() {
  auto db = reads_.lease();
  auto query = db->prepare("SELECT name, created_at FROM domains ORDER BY name");
  std::vector<Domain> domains;
  while (query->step()) domains.push_back({query->column_text(0), query->column_time(1)});
  return domains;
}

void SqliteAdminStore::add_user(std::string_view address, std::string_view password_hash) {
  const SplitAddress split = parse_mailbox(address);
  const std::string stored = stored_form(split);
  writer_.call([&](Connection& db) {
    const std::int64_t domain_id = require_domain(db, split.domain);
    if (find_mailbox_id(db, stored)) throw StoreConflict("mailbox " + stored + " already exists");
    auto insert = db.prepare(
        "INSERT INTO mailboxes (domain_id, address, password_hash, created_at) "
        "VALUES (?1, ?2, ?3, ?4)");
    insert->bind(1, domain_id).bind_text(2, stored).bind_text(3, password_hash).bind(4, unix_now());
    insert->step();
  });
}

void SqliteAdminStore::delete_user(std::string_view address) {
  writer_.call([&](Connection& db) {
    const std::int64_t id = require_mailbox(db, address);
    // Its deliveries go by ON DELETE CASCADE; message contents stay for other mailboxes.
    auto remove = db.prepare("DELETE FROM mailboxes WHERE id = ?1");
    remove->bind(1, id);
    remove->step();
  });
}

void SqliteAdminStore::set_password(std::string_view address, std::string_view password_hash) {
  writer_.call([&](Connection& db) {
    const std::int64_t id = require_mailbox(db, address);
    auto update = db.prepare("UPDATE mailboxes SET password_hash = ?1 WHERE id = ?2");
    update->bind_text(1, password_hash).bind(2, id);
    update->step();
  });
}

std::vector<Mailbox> SqliteAdminStore::list_users(std::optional<std::string_view> domain) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  std::vector<Mailbox> users;
  if (domain) {
    const std::int64_t domain_id = require_domain(*db, *domain);
    auto query = db->prepare(
        "SELECT id, address, created_at FROM mailboxes WHERE domain_id = ?1 ORDER BY address");
    query->bind(1, domain_id);
    while (query->step()) {
      users.push_back({query->column_int(0), query->column_text(1), query->column_time(2)});
    }
  } else {
    auto query = db->prepare("SELECT id, address, created_at FROM mailboxes ORDER BY address");
    while (query->step()) {
      users.push_back({query->column_int(0), query->column_text(1), query->column_time(2)});
    }
  }
  return users;
}

void SqliteAdminStore::add_alias(std::string_view source, std::string_view target) {
  auto target_split = split_address(target);
  if (!target_split || target_split->local.empty()) {
    throw StoreConflict("alias target '" + std::string(target) +
                        "' is not an address (local@domain)");
  }
  const std::string stored_target = stored_form(*target_split);
  writer_.call([&](Connection& db) {
    AliasSource from = parse_alias_source(db, source);
    const std::string shown = display_source(from.address.local, from.address.domain);
    if (!from.address.local.empty() && find_mailbox_id(db, shown)) {
      throw StoreConflict(shown + " is a mailbox; an alias for it would never apply");
    }
    if (lowercase_ascii(shown) == lowercase_ascii(stored_target)) {
      throw StoreConflict("an alias cannot point at itself (" + shown + ")");
    }
    {
      auto exists = db.prepare(
          "SELECT 1 FROM aliases WHERE domain_id = ?1 AND local_part = ?2 AND target = ?3");
      exists->bind(1, from.domain_id).bind_text(2, from.address.local).bind_text(3, stored_target);
      if (exists->step())
        throw StoreConflict("alias " + shown + " -> " + stored_target + " already exists");
    }
    auto insert = db.prepare(
        "INSERT INTO aliases (domain_id, local_part, target, created_at) VALUES (?1, ?2, ?3, ?4)");
    insert->bind(1, from.domain_id)
        .bind_text(2, from.address.local)
        .bind_text(3, stored_target)
        .bind(4, unix_now());
    insert->step();
  });
}

void SqliteAdminStore::delete_alias(std::string_view source, std::string_view target) {
  writer_.call([&](Connection& db) {
    AliasSource from = parse_alias_source(db, source);
    auto remove =
        db.prepare("DELETE FROM aliases WHERE domain_id = ?1 AND local_part = ?2 AND target = ?3");
    remove->bind(1, from.domain_id).bind_text(2, from.address.local).bind_text(3, target);
    remove->step();
    if (db.changes() == 0) {
      throw StoreConflict("no alias " + std::string(source) + " -> " + std::string(target));
    }
  });
}

std::vector<Alias> SqliteAdminStore::list_aliases(std::optional<std::string_view> domain) {
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  std::optional<std::int64_t> domain_id;
  if (domain) domain_id = require_domain(*db, *domain);
  auto query = db->prepare(
      "SELECT a.local_part, d.name, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id "
      "WHERE ?1 IS NULL OR a.domain_id = ?1 ORDER BY d.name, a.local_part, a.target");
  if (domain_id)
    query->bind(1, *domain_id);
  else
    query->bind_null(1);
  std::vector<Alias> aliases;
  while (query->step()) {
    aliases.push_back(
        {display_source(query->column_text(0), query->column_text(1)), query->column_text(2)});
  }
  return aliases;
}

std::vector<MailSummary> SqliteAdminStore::list_mail(std::size_t last,
                                                     std::optional<std::string_view> mailbox) {
  // 0 means no limit; SQLite reads a negative LIMIT the same way.
  const std::int64_t limit =
      last == 0 || last > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
          ? -1
          : static_cast<std::int64_t>(last);
  auto db = reads_.lease();
  ReadTransaction snapshot(*db);
  std::vector<MailSummary> mail;
  if (mailbox) {
    const std::int64_t mailbox_id = require_mailbox(*db, *mailbox);
    auto query = db->prepare(
        "SELECT d.id, m.address, d.reverse_path, substr(g.content, 1, ?3), d.size, d.uidl, "
        "d.status, d.received_at, d.verified FROM deliveries d "
        "JOIN mailboxes m ON m.id = d.mailbox_id "
        "JOIN messages g ON g.id = d.message_id WHERE d.mailbox_id = ?1 "
        "ORDER BY d.id DESC LIMIT ?2");
    query->bind(1, mailbox_id).bind(2, limit).bind(3, header_prefix_octets);
    while (query->step()) mail.push_back(read_summary(*query));
  } else {
    auto query = db->prepare(
        "SELECT d.id, m.address, d.reverse_path, substr(g.content, 1, ?2), d.size, d.uidl, "
        "d.status, d.received_at, d.verified FROM deliveries d "
        "JOIN mailboxes m ON m.id = d.mailbox_id "
        "JOIN messages g ON g.id = d.message_id ORDER BY d.id DESC LIMIT ?1");
    query->bind(1, limit).bind(2, header_prefix_octets);
    while (query->step()) mail.push_back(read_summary(*query));
  }
  return mail;
}

std::optional<MailDetail> SqliteAdminStore::get_mail(DeliveryId id) {
  auto db = reads_.lease();
  auto query = db->prepare(
      "SELECT d.id, m.address, d.reverse_path, g.content, d.size, d.uidl, d.status, "
      "d.received_at, d.verified, g.content_hash, d.trace FROM deliveries d "
      "JOIN mailboxes m ON m.id = d.mailbox_id JOIN messages g ON g.id = d.message_id "
      "WHERE d.id = ?1");
  query->bind(1, id);
  if (!query->step()) return std::nullopt;
  MailDetail detail;
  detail.summary = read_summary(*query);
  detail.content = query->column_blob(3);
  detail.content_hash = query->column_text(9);
  detail.trace = query->column_blob(10);
  return detail;
}

}  // namespace maild::store::sqlite
