// mailctl domain: the local domains. Talks to AdminStore; names are validated
// and lowercased here, duplicates and unknown names are the store's to refuse.
#include "address.hpp"
#include "command.hpp"
#include "output.hpp"

namespace maild::admin {

void domain_add(Request& request) {
  const std::string name = domain_name(request.args[0]);
  request.admin().add_domain(name);
  request.out.confirm("added domain " + name);
}

void domain_del(Request& request) {
  const std::string name = domain_name(request.args[0]);
  request.admin().delete_domain(name);
  request.out.confirm("deleted domain " + name);
}

void domain_list(Request& request) {
  Table table{{{"DOMAIN", "name"}, {"CREATED", "created"}}, {}};
  for (const store::Domain& domain : request.admin().list_domains()) {
    table.rows.push_back({domain.name, iso_time(domain.created_at)});
  }
  request.out.table(table);
}

}  // namespace maild::admin
