// mailctl db: schema migration and status. Talks to the store's schema
// management and AdminStore::status(); trusts what the store reports.
#include "command.hpp"
#include "output.hpp"

namespace maild::admin {

void db_migrate(Request& request) {
  request.store->migrate();
  const int version = request.store->schema_version();
  if (request.out.json()) {
    request.out.record({{"", "schema_version", std::int64_t{version}}});
  } else {
    request.out.confirm("schema version " + std::to_string(version));
  }
}

void db_status(Request& request) {
  const store::StoreStatus status = request.admin().status();
  request.out.record({
      {"backend", "backend", status.backend},
      {"location", "location", status.location},
      {"schema version", "",
       std::to_string(status.schema_version) + "/" + std::to_string(status.latest_schema_version)},
      {"", "schema_version", std::int64_t{status.schema_version}},
      {"", "latest_schema_version", std::int64_t{status.latest_schema_version}},
      {"domains", "domains", status.domains},
      {"mailboxes", "mailboxes", status.mailboxes},
      {"aliases", "aliases", status.aliases},
      {"messages", "messages", status.messages},
      {"deliveries", "deliveries", status.deliveries},
      {"queued", "queued", status.queued},
  });
}

}  // namespace maild::admin
