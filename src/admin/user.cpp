// mailctl user: mailboxes and their passwords. Talks to AdminStore and the
// password hasher; only the hash leaves this file, the password never.
#include <optional>

#include "address.hpp"
#include "command.hpp"
#include "maild/core/password.hpp"
#include "output.hpp"
#include "password_input.hpp"

namespace maild::admin {

namespace {

password::Scheme hash_scheme(const Request& request) {
  const std::string& name = request.option("hash-scheme");
  const std::optional<password::Scheme> scheme = password::scheme_named(name);
  if (!scheme)
    throw UsageError("--hash-scheme must be yescrypt or sha512-crypt, not '" + name + "'");
  return *scheme;
}

}  // namespace

void user_add(Request& request) {
  const std::string address = mailbox_address(request.args[0]);
  const password::Scheme scheme = hash_scheme(request);
  request.admin().add_user(address, password::hash(read_new_password(), scheme));
  request.out.confirm("added user " + address);
}

void user_del(Request& request) {
  const std::string address = mailbox_address(request.args[0]);
  request.admin().delete_user(address);
  request.out.confirm("deleted user " + address);
}

void user_passwd(Request& request) {
  const std::string address = mailbox_address(request.args[0]);
  const password::Scheme scheme = hash_scheme(request);
  request.admin().set_password(address, password::hash(read_new_password(), scheme));
  request.out.confirm("changed the password of " + address);
}

void user_list(Request& request) {
  const std::optional<std::string> domain = optional_domain(request.args, 0);
  Table table{{{"ID", "id", true}, {"ADDRESS", "address"}, {"CREATED", "created"}}, {}};
  for (const store::Mailbox& mailbox : request.admin().list_users(domain)) {
    table.rows.push_back({mailbox.id, mailbox.address, iso_time(mailbox.created_at)});
  }
  request.out.table(table);
}

}  // namespace maild::admin
