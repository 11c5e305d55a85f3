// mailctl alias: extra destinations and catch-alls. Talks to AdminStore;
// sources and targets are validated here, the store checks the domain is ours.
#include "address.hpp"
#include "command.hpp"
#include "output.hpp"

namespace maild::admin {

void alias_add(Request& request) {
  const std::string source = alias_source(request.args[0]);
  const std::string target = mailbox_address(request.args[1]);
  request.admin().add_alias(source, target);
  request.out.confirm("added alias " + source + " -> " + target);
}

void alias_del(Request& request) {
  const std::string source = alias_source(request.args[0]);
  const std::string target = mailbox_address(request.args[1]);
  request.admin().delete_alias(source, target);
  request.out.confirm("deleted alias " + source + " -> " + target);
}

void alias_list(Request& request) {
  const std::optional<std::string> domain = optional_domain(request.args, 0);
  Table table{{{"SOURCE", "source"}, {"TARGET", "target"}}, {}};
  for (const store::Alias& alias : request.admin().list_aliases(domain)) {
    table.rows.push_back({alias.source, alias.target});
  }
  request.out.table(table);
}

}  // namespace maild::admin
