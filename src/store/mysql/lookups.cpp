// Small indexed lookups used by the directory, the delivery jobs and the admin writes.
// Trust: addresses were validated by the caller; the *_key columns hold what they are compared
// with, lowercased here exactly as when they were written.
#include <chrono>

#include "store/addressing.hpp"
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {

std::string address_key(std::string_view address) { return lowercase_ascii(address); }

std::optional<std::int64_t> find_domain_id(Connection& connection, std::string_view domain) {
  auto query = connection.prepare("SELECT id FROM domains WHERE name = ?");
  query->bind_text(1, lowercase_ascii(domain));
  if (!query->step()) return std::nullopt;
  return query->column_int(0);
}

std::optional<std::int64_t> find_mailbox_id(Connection& connection, std::string_view address) {
  auto split = split_address(address);
  if (!split) return std::nullopt;
  auto query = connection.prepare("SELECT id FROM mailboxes WHERE address_key = ?");
  query->bind_text(1, address_key(stored_form(*split)));
  if (!query->step()) return std::nullopt;
  return query->column_int(0);
}

UnixTime unix_now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace maild::store::mysql
