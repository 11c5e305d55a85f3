// mailctl db: schema migration and status. Talks to the store's schema
// management and AdminStore::status(), and for MySQL to each endpoint (replication.cpp);
// trusts what the store and the servers report.
#include <optional>

#include "command.hpp"
#include "output.hpp"
#include "replication.hpp"

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

namespace {

Record status_record(const store::StoreStatus& status) {
  return {
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
  };
}

}  // namespace

// Opens the store itself (StoreAccess::none): with MySQL the endpoints are shown even when
// none is writable, and then the command fails after showing them.
void db_status(Request& request) {
  if (request.settings->store.backend != config::StoreBackend::mysql) {
    const auto store = open_existing_store(*request.settings);
    request.out.record(status_record(store->admin().status()));
    store->close();
    return;
  }
  const auto states = survey_endpoints(request);
  const Table endpoints = endpoints_table(states);
  // The endpoints' histories against each other and against what maild acknowledged.
  const auto file = store::replication::committed_position_file(*request.settings);
  std::vector<std::string> problems;
  std::optional<store::replication::GtidPosition> committed;
  try {
    committed = store::replication::read_committed_position(file);
  } catch (const store::StoreError& error) {
    problems.push_back(error.what());
  }
  for (std::string& problem :
       store::replication::divergences(states, committed, "remembered in " + file.string()))
    problems.push_back(std::move(problem));
  std::string failure;
  Record record;
  try {
    const auto store = open_existing_store(*request.settings);
    record = status_record(store->admin().status());
    store->close();
  } catch (const std::exception& error) {
    failure = error.what();
    record = {{"backend", "backend", std::string("mysql")}, {"store", "error", failure}};
  }
  std::string joined;
  for (const std::string& problem : problems) joined += (joined.empty() ? "" : "\n") + problem;
  if (request.out.json()) record.push_back({"", "divergence", joined});
  request.out.record_with_table(record, "endpoints", endpoints);
  if (!request.out.json() && !joined.empty()) request.out.raw(joined + "\n");
  if (!failure.empty()) throw RequestError(failure);
  if (!problems.empty()) throw RequestError(problems.front());
}

}  // namespace maild::admin
