// Address resolution and logins for SMTP and POP3 sessions, read on a pooled connection.
// Trust: the address was validated by the session; alias rows are the administrator's and may loop.
#include <deque>
#include <set>
#include <utility>

#include "store/addressing.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

// An alias chain longer than this is cut there (its far targets are not delivered to).
constexpr int max_alias_hops = 8;

std::vector<std::string> alias_targets(Connection& db, const SplitAddress& address) {
  auto query = db.prepare(
      "SELECT a.target FROM aliases a JOIN domains d ON d.id = a.domain_id "
      "WHERE d.name = ? AND a.local_key = ? ORDER BY a.id");
  query->bind_text(1, address.domain).bind_text(2, address_key(address.local));
  std::vector<std::string> targets;
  while (query->step()) targets.push_back(query->column_text(0));
  return targets;
}

Resolution resolve_in(Connection& db, std::string_view address) {
  ReadTransaction snapshot(db);

  auto split = split_address(address);
  if (!split || !find_domain_id(db, split->domain)) return Resolution{};  // not_local

  Resolution result;
  result.kind = Resolution::Kind::mailboxes;
  struct Pending {
    std::string address;
    int hops;
  };
  std::deque<Pending> pending{{stored_form(*split), 0}};
  // Every address is expanded once: that is what ends alias loops.
  std::set<std::string> seen{lowercase_ascii(pending.front().address)};
  std::set<MailboxId> delivered;

  while (!pending.empty()) {
    Pending current = std::move(pending.front());
    pending.pop_front();
    auto parts = split_address(current.address);
    if (!parts) continue;  // a malformed alias target leads nowhere

    if (!find_domain_id(db, parts->domain)) {
      result.forwards.push_back(current.address);
      continue;
    }
    if (auto mailbox = find_mailbox_id(db, current.address)) {
      if (delivered.insert(*mailbox).second) result.mailboxes.push_back(*mailbox);
      continue;  // a mailbox wins over any alias with the same name
    }
    auto targets = alias_targets(db, *parts);
    if (targets.empty()) targets = alias_targets(db, SplitAddress{"", parts->domain});  // catch-all
    if (current.hops == max_alias_hops) continue;
    for (auto& target : targets) {
      auto target_parts = split_address(target);
      if (!target_parts) continue;
      std::string normal = stored_form(*target_parts);
      if (seen.insert(lowercase_ascii(normal)).second) {
        pending.push_back({std::move(normal), current.hops + 1});
      }
    }
  }

  if (result.mailboxes.empty() && result.forwards.empty()) {
    result.kind = Resolution::Kind::unknown_local;
  }
  return result;
}

}  // namespace

bool MysqlDirectory::is_local_domain(std::string_view domain) {
  return pool_.read([&](Connection& db) { return find_domain_id(db, domain).has_value(); });
}

Resolution MysqlDirectory::resolve(std::string_view address) {
  return pool_.read([&](Connection& db) { return resolve_in(db, address); });
}

std::optional<std::string> MysqlDirectory::password_hash(std::string_view address) {
  auto found = account(address);
  if (!found) return std::nullopt;
  return std::move(found->password_hash);
}

std::optional<Account> MysqlDirectory::account(std::string_view address) {
  auto split = split_address(address);
  if (!split) return std::nullopt;
  const std::string key = address_key(stored_form(*split));
  return pool_.read([&](Connection& db) -> std::optional<Account> {
    auto query =
        db.prepare("SELECT id, address, password_hash FROM mailboxes WHERE address_key = ?");
    query->bind_text(1, key);
    if (!query->step()) return std::nullopt;
    return Account{query->column_int(0), query->column_text(1), query->column_text(2)};
  });
}

}  // namespace maild::store::mysql
