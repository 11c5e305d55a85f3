// mailctl db replicate, db failover, and the endpoints part of db status: MySQL/MariaDB
// replication between the [mysql] endpoints. Talks to the servers through
// store::replication as an administrator account; trusts them as the administrator's.
#include "replication.hpp"

#include <fstream>

#include "maild/store/replication.hpp"
#include "output.hpp"

namespace maild::admin {
namespace {

namespace replication = store::replication;

std::string first_line(const std::string& path, std::string_view option) {
  std::ifstream file(path);
  std::string line;
  if (!file || !std::getline(file, line))
    throw RequestError("cannot read " + std::string(option) + " " + path);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Endpoint endpoint_option(const Request& request, std::string_view name) {
  const std::string& text = request.option(name);
  if (text.empty()) throw UsageError("--" + std::string(name) + " HOST:PORT is required");
  const auto endpoint = parse_endpoint(text);
  if (!endpoint)
    throw UsageError("--" + std::string(name) + " wants HOST:PORT, not '" + text + "'");
  return *endpoint;
}

const config::MysqlSettings& mysql_settings(const Request& request) {
  if (request.settings->store.backend != config::StoreBackend::mysql)
    throw RequestError("[store] backend is not mysql: there is no replication to manage");
  return request.settings->mysql;
}

replication::ReplicateOptions replicate_options(const Request& request) {
  replication::ReplicateOptions options;
  options.database = request.settings->mysql.database;
  options.replication_user = request.option("replication-user");
  if (!request.option("replication-password-file").empty())
    options.replication_password =
        first_line(request.option("replication-password-file"), "--replication-password-file");
  const std::string& timeout = request.option("semi-sync-timeout");
  const bool minutes = timeout.ends_with('m');
  const auto count = timeout.size() > 1 && (minutes || timeout.ends_with('s'))
                         ? positive_number(std::string_view(timeout).substr(0, timeout.size() - 1))
                         : std::nullopt;
  if (!count || *count > 86400)
    throw UsageError("--semi-sync-timeout wants a duration such as 10s or 1m, not '" + timeout +
                     "'");
  options.semi_sync_timeout = std::chrono::seconds(*count * (minutes ? 60 : 1));
  return options;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

void print_steps(Request& request, const std::vector<std::string>& steps, std::string_view key,
                 const Record& head, const std::vector<std::string>& warnings = {},
                 const std::vector<std::string>& configuration = {}) {
  if (request.out.json()) {
    Table table{{{"", key}}, {}};
    for (const std::string& step : steps) table.rows.push_back({step});
    Record record = head;
    record.push_back({"", "warnings", joined(warnings)});
    if (!configuration.empty()) record.push_back({"", "configuration", joined(configuration)});
    request.out.record_with_table(record, key, table);
    return;
  }
  Output& out = request.out;
  std::string text;
  for (const std::string& step : steps) text += "  " + step + "\n";
  out.raw(text);
  out.record(head);
  if (!configuration.empty()) {
    text =
        "to keep this after a restart, put these lines in the [mariadbd] section of each "
        "server's option file (SET GLOBAL does not survive one):\n";
    for (const std::string& line : configuration) text += "  " + line + "\n";
    out.raw(text);
  }
  for (const std::string& warning : warnings) out.raw("warning: " + warning + "\n");
}

}  // namespace

replication::Credentials admin_credentials(const Request& request) {
  const config::MysqlSettings& mysql = mysql_settings(request);
  replication::Credentials admin;
  if (request.option("admin-user").empty()) {
    admin.user = mysql.user;
    config::Settings copy = *request.settings;
    store::read_secrets(copy);
    admin.password = copy.mysql.password;
  } else {
    admin.user = request.option("admin-user");
  }
  if (!request.option("admin-password-file").empty())
    admin.password = first_line(request.option("admin-password-file"), "--admin-password-file");
  return admin;
}

Table endpoints_table(const std::vector<replication::EndpointStatus>& states) {
  Table table{{{"endpoint", "endpoint"},
               {"role", "role"},
               {"replication", "replication"},
               {"lag", "lag_seconds", true},
               {"semi-sync", "semi_sync"},
               {"gtid", "gtid_position"}},
              {}};
  for (const auto& state : states) {
    std::string replication = state.reachable ? state.replication : state.error;
    if (!state.source.empty()) replication += " from " + state.source;
    if (replication.empty()) replication = "-";
    const Value lag = state.lag_seconds ? Value(*state.lag_seconds) : Value(std::string("-"));
    table.rows.push_back({state.endpoint.to_string(), state.role, replication, lag,
                          state.reachable ? state.semi_sync : "-",
                          state.reachable ? state.gtid_position : "-"});
  }
  return table;
}

std::vector<replication::EndpointStatus> survey_endpoints(const Request& request) {
  return replication::status(mysql_settings(request).endpoints, admin_credentials(request));
}

void db_replicate(Request& request) {
  const Endpoint primary = endpoint_option(request, "primary");
  const Endpoint standby = endpoint_option(request, "standby");
  const auto options = replicate_options(request);
  const auto steps = replication::replicate(primary, standby, admin_credentials(request), options);
  std::vector<std::string> warnings;
  bool listed = false;
  for (const Endpoint& endpoint : request.settings->mysql.endpoints) listed |= endpoint == standby;
  if (!listed)
    warnings.push_back("the standby " + standby.to_string() +
                       " is not in [mysql] endpoints: add it there so that maild and "
                       "mailctl db failover know of it");
  warnings.push_back(
      "SET GLOBAL does not survive a restart: put rpl_semi_sync_master_enabled = ON, "
      "rpl_semi_sync_slave_enabled = ON, rpl_semi_sync_master_wait_point = AFTER_SYNC, "
      "rpl_semi_sync_master_timeout = " +
      std::to_string(options.semi_sync_timeout.count()) +
      " in both servers' configuration, and read_only = ON in the standby's");
  print_steps(request, steps, "steps",
              {{"primary", "primary", primary.to_string()},
               {"standby", "standby", standby.to_string()},
               {"state", "state", std::string("replicating, semi-sync")}},
              warnings);
}

void db_failover(Request& request) {
  const auto& endpoints = mysql_settings(request).endpoints;
  auto options = replicate_options(request);
  const auto result = replication::failover(endpoints, admin_credentials(request), options);
  std::string standbys;
  for (const Endpoint& endpoint : result.standbys)
    standbys += (standbys.empty() ? "" : ", ") + endpoint.to_string();
  print_steps(request, result.steps, "steps",
              {{"new primary", "primary", result.promoted.to_string()},
               {"gtid", "gtid_position", result.gtid_position},
               {"old primary", "old_primary",
                result.old_primary ? result.old_primary->to_string() : std::string("unknown")},
               {"fenced", "fenced", std::string(result.fenced ? "yes" : "no (unreachable)")},
               {"standbys", "standbys", standbys.empty() ? std::string("none") : standbys}},
              result.warnings, result.configuration);
}

}  // namespace maild::admin
