// mailctl's view of the store: each change one write transaction, each listing one read.
// Trust: arguments come from an administrator; each is checked and a mistake becomes a
// StoreConflict.
#include <limits>

#include "store/addressing.hpp"
#include "store/message_fields.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
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

// A unique key that refused a row another writer added first says the same as our own check.
template <class Work>
void refusing_duplicates(Work work, const std::string& conflict) {
  try {
    work();
  } catch (const MysqlError& error) {
    if (error.kind == FailureKind::duplicate) throw StoreConflict(conflict);
    throw;
  }
}

}  // namespace

StoreStatus MysqlAdminStore::status() {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    StoreStatus status;
    status.backend = "mysql";
    status.location = pool_.location();
    status.schema_version = schema_version(db);
    status.latest_schema_version = latest_schema_version();
    if (status.schema_version == 0) return status;  // no tables to count yet
    status.domains = db.query_int("SELECT COUNT(*) FROM domains");
    status.mailboxes = db.query_int("SELECT COUNT(*) FROM mailboxes");
    status.aliases = db.query_int("SELECT COUNT(*) FROM aliases");
    status.messages = db.query_int("SELECT COUNT(*) FROM messages");
    status.deliveries = db.query_int("SELECT COUNT(*) FROM deliveries");
    if (status.schema_version >= 3) {  // the queue came with version 3
      status.queued = db.query_int("SELECT COUNT(*) FROM queue_recipients WHERE state = 0");
    }
    return status;
  });
}

void MysqlAdminStore::add_domain(std::string_view name) {
  const std::string domain = lowercase_ascii(name);
  if (domain.empty() || domain.find('@') != std::string::npos) {
    throw StoreConflict("'" + std::string(name) + "' is not a domain name");
  }
  const std::string conflict = "domain " + domain + " already exists";
  refusing_duplicates(
      [&] {
        pool_.write([&](Connection& db) {
          if (find_domain_id(db, domain)) throw StoreConflict(conflict);
          auto insert = db.prepare("INSERT INTO domains (name, created_at) VALUES (?, ?)");
          insert->bind_text(1, domain).bind(2, unix_now());
          insert->execute();
        });
      },
      conflict);
}

void MysqlAdminStore::delete_domain(std::string_view name) {
  pool_.write([&](Connection& db) {
    const std::int64_t id = require_domain(db, name);
    // Its mailboxes (with their deliveries, locks and pending retrievals) and aliases go by
    // ON DELETE CASCADE; its policy for unverified mail by domains_drop_unverified_policy.
    auto remove = db.prepare("DELETE FROM domains WHERE id = ?");
    remove->bind(1, id);
    remove->execute();
  });
}

std::vector<Domain> MysqlAdminStore::list_domains() {
  return pool_.read([&](Connection& db) {
    auto query = db.prepare("SELECT name, created_at FROM domains ORDER BY name");
    std::vector<Domain> domains;
    while (query->step()) domains.push_back({query->column_text(0), query->column_time(1)});
    return domains;
  });
}

void MysqlAdminStore::add_user(std::string_view address, std::string_view password_hash) {
  const SplitAddress split = parse_mailbox(address);
  const std::string stored = stored_form(split);
  const std::string conflict = "mailbox " + stored + " already exists";
  refusing_duplicates(
      [&] {
        pool_.write([&](Connection& db) {
          const std::int64_t domain_id = require_domain(db, split.domain);
          if (find_mailbox_id(db, stored)) throw StoreConflict(conflict);
          auto insert = db.prepare(
              "INSERT INTO mailboxes (domain_id, address, address_key, password_hash, created_at) "
              "VALUES (?, ?, ?, ?, ?)");
          insert->bind(1, domain_id)
              .bind_text(2, stored)
              .bind_text(3, address_key(stored))
              .bind_text(4, password_hash)
              .bind(5, unix_now());
          insert->execute();
        });
      },
      conflict);
}

void MysqlAdminStore::delete_user(std::string_view address) {
  pool_.write([&](Connection& db) {
    const std::int64_t id = require_mailbox(db, address);
    // Its deliveries and lock go by ON DELETE CASCADE; message contents stay for other mailboxes.
    auto remove = db.prepare("DELETE FROM mailboxes WHERE id = ?");
    remove->bind(1, id);
    remove->execute();
  });
}

void MysqlAdminStore::set_password(std::string_view address, std::string_view password_hash) {
  pool_.write([&](Connection& db) {
    const std::int64_t id = require_mailbox(db, address);
    auto update = db.prepare("UPDATE mailboxes SET password_hash = ? WHERE id = ?");
    update->bind_text(1, password_hash).bind(2, id);
    update->execute();
  });
}

std::vector<Mailbox> MysqlAdminStore::list_users(std::optional<std::string_view> domain) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    std::vector<Mailbox> users;
    if (domain) {
      const std::int64_t domain_id = require_domain(db, *domain);
      auto query = db.prepare(
          "SELECT id, address, created_at FROM mailboxes WHERE domain_id = ? ORDER BY address_key");
      query->bind(1, domain_id);
      while (query->step()) {
        users.push_back({query->column_int(0), query->column_text(1), query->column_time(2)});
      }
    } else {
      auto query = db.prepare("SELECT id, address, created_at FROM mailboxes ORDER BY address_key");
      while (query->step()) {
        users.push_back({query->column_int(0), query->column_text(1), query->column_time(2)});
      }
    }
    return users;
  });
}

void MysqlAdminStore::add_alias(std::string_view source, std::string_view target) {
  auto target_split = split_address(target);
  if (!target_split || target_split->local.empty()) {
    throw StoreConflict("alias target '" + std::string(target) +
                        "' is not an address (local@domain)");
  }
  const std::string stored_target = stored_form(*target_split);
  std::string conflict;
  refusing_duplicates(
      [&] {
        pool_.write([&](Connection& db) {
          AliasSource from = parse_alias_source(db, source);
          const std::string shown = display_source(from.address.local, from.address.domain);
          conflict = "alias " + shown + " -> " + stored_target + " already exists";
          if (!from.address.local.empty() && find_mailbox_id(db, shown)) {
            throw StoreConflict(shown + " is a mailbox; an alias for it would never apply");
          }
          if (lowercase_ascii(shown) == lowercase_ascii(stored_target)) {
            throw StoreConflict("an alias cannot point at itself (" + shown + ")");
          }
          {
            auto exists = db.prepare(
                "SELECT 1 FROM aliases WHERE domain_id = ? AND local_key = ? AND target_key = ?");
            exists->bind(1, from.domain_id)
                .bind_text(2, address_key(from.address.local))
                .bind_text(3, address_key(stored_target));
            if (exists->step()) throw StoreConflict(conflict);
          }
          auto insert = db.prepare(
              "INSERT INTO aliases (domain_id, local_part, local_key, target, target_key, "
              "created_at) VALUES (?, ?, ?, ?, ?, ?)");
          insert->bind(1, from.domain_id)
              .bind_text(2, from.address.local)
              .bind_text(3, address_key(from.address.local))
              .bind_text(4, stored_target)
              .bind_text(5, address_key(stored_target))
              .bind(6, unix_now());
          insert->execute();
        });
      },
      conflict);
}

void MysqlAdminStore::delete_alias(std::string_view source, std::string_view target) {
  pool_.write([&](Connection& db) {
    AliasSource from = parse_alias_source(db, source);
    auto remove =
        db.prepare("DELETE FROM aliases WHERE domain_id = ? AND local_key = ? AND target_key = ?");
    remove->bind(1, from.domain_id)
        .bind_text(2, address_key(from.address.local))
        .bind_text(3, address_key(target));
    if (remove->execute() == 0) {
      throw StoreConflict("no alias " + std::string(source) + " -> " + std::string(target));
    }
  });
}

std::vector<Alias> MysqlAdminStore::list_aliases(std::optional<std::string_view> domain) {
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    std::vector<Alias> aliases;
    auto read_rows = [&](Statement& query) {
      while (query.step()) {
        aliases.push_back(
            {display_source(query.column_text(0), query.column_text(1)), query.column_text(2)});
      }
    };
    if (domain) {
      const std::int64_t domain_id = require_domain(db, *domain);
      auto query = db.prepare(
          "SELECT a.local_part, d.name, a.target FROM aliases a JOIN domains d ON d.id = "
          "a.domain_id WHERE a.domain_id = ? ORDER BY d.name, a.local_key, a.target_key");
      query->bind(1, domain_id);
      read_rows(*query);
    } else {
      auto query = db.prepare(
          "SELECT a.local_part, d.name, a.target FROM aliases a JOIN domains d ON d.id = "
          "a.domain_id ORDER BY d.name, a.local_key, a.target_key");
      read_rows(*query);
    }
    return aliases;
  });
}

std::vector<MailSummary> MysqlAdminStore::list_mail(std::size_t last,
                                                    std::optional<std::string_view> mailbox) {
  // 0 means no limit: the largest LIMIT MySQL takes.
  const std::int64_t limit =
      last == 0 || last > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
          ? std::numeric_limits<std::int64_t>::max()
          : static_cast<std::int64_t>(last);
  return pool_.read([&](Connection& db) {
    ReadTransaction snapshot(db);
    std::vector<MailSummary> mail;
    if (mailbox) {
      const std::int64_t mailbox_id = require_mailbox(db, *mailbox);
      auto query = db.prepare(
          "SELECT d.id, m.address, d.reverse_path, SUBSTRING(g.content, 1, ?), d.size, d.uidl, "
          "d.status, d.received_at, d.verified FROM deliveries d "
          "JOIN mailboxes m ON m.id = d.mailbox_id "
          "JOIN messages g ON g.id = d.message_id WHERE d.mailbox_id = ? "
          "ORDER BY d.id DESC LIMIT ?");
      query->bind(1, header_prefix_octets).bind(2, mailbox_id).bind(3, limit);
      while (query->step()) mail.push_back(read_summary(*query));
    } else {
      auto query = db.prepare(
          "SELECT d.id, m.address, d.reverse_path, SUBSTRING(g.content, 1, ?), d.size, d.uidl, "
          "d.status, d.received_at, d.verified FROM deliveries d "
          "JOIN mailboxes m ON m.id = d.mailbox_id "
          "JOIN messages g ON g.id = d.message_id ORDER BY d.id DESC LIMIT ?");
      query->bind(1, header_prefix_octets).bind(2, limit);
      while (query->step()) mail.push_back(read_summary(*query));
    }
    return mail;
  });
}

std::optional<MailDetail> MysqlAdminStore::get_mail(DeliveryId id) {
  return pool_.read([&](Connection& db) -> std::optional<MailDetail> {
    auto query = db.prepare(
        "SELECT d.id, m.address, d.reverse_path, g.content, d.size, d.uidl, d.status, "
        "d.received_at, d.verified, g.content_hash, d.trace FROM deliveries d "
        "JOIN mailboxes m ON m.id = d.mailbox_id JOIN messages g ON g.id = d.message_id "
        "WHERE d.id = ?");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    MailDetail detail;
    detail.summary = read_summary(*query);
    detail.content = query->column_blob(3);
    detail.content_hash = query->column_text(9);
    detail.trace = query->column_blob(10);
    return detail;
  });
}

}  // namespace maild::store::mysql
