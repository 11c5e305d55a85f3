// Endpoint roles and the checks a primary must pass before maild stores mail on it.
// Trust: the servers are the administrator's; a server that cannot be reached or asked is
// reported with its endpoint and the client library's words.
#include "store/mysql/endpoints.hpp"

#include <charconv>

namespace maild::store::mysql {
namespace {

// The oldest servers whose SQL (CHECK, SIGNAL in triggers, SKIP LOCKED) maild relies on.
constexpr int mariadb_major = 10, mariadb_minor = 6;
constexpr int mysql_major = 8, mysql_minor = 0;

// "10.11.6-MariaDB-log" -> 10, 11.
void parse_version(ServerFacts& facts) {
  const std::string& text = facts.version;
  const char* end = text.data() + text.size();
  auto first = std::from_chars(text.data(), end, facts.major);
  if (first.ec != std::errc() || first.ptr == end || *first.ptr != '.') return;
  std::from_chars(first.ptr + 1, end, facts.minor);
}

bool at_least(const ServerFacts& facts, int major, int minor) {
  return facts.major > major || (facts.major == major && facts.minor >= minor);
}

std::string mebibytes(std::uint64_t octets) {
  return std::to_string((octets + 1024 * 1024 - 1) / (1024 * 1024)) + "M";
}

std::string product(const ServerFacts& facts) {
  return std::string(facts.mariadb ? "MariaDB " : "MySQL ") + std::to_string(facts.major) + "." +
         std::to_string(facts.minor);
}

}  // namespace

ServerFacts ask(Connection& connection) {
  ServerFacts facts;
  facts.version = connection.query_text("SELECT VERSION()").value_or("");
  facts.mariadb = facts.version.find("MariaDB") != std::string::npos;
  parse_version(facts);
  facts.read_only =
      connection.query_int("SELECT @@GLOBAL.read_only OR @@GLOBAL.innodb_read_only") != 0;
  facts.max_allowed_packet =
      static_cast<std::uint64_t>(connection.query_int("SELECT @@GLOBAL.max_allowed_packet"));
  facts.server_id = connection.query_int("SELECT @@GLOBAL.server_id");
  facts.innodb = connection
                     .query_text(
                         "SELECT SUPPORT FROM information_schema.ENGINES "
                         "WHERE ENGINE = 'InnoDB'")
                     .value_or("");
  // MariaDB has semi-sync built in; MySQL 8 only once the plugin is loaded (renamed in 8.0.26).
  for (const auto& row :
       connection.query_rows("SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_%_enabled'")) {
    const bool source =
        row.at(0) == "rpl_semi_sync_master_enabled" || row.at(0) == "rpl_semi_sync_source_enabled";
    if (source && (row.at(1) == "ON" || row.at(1) == "1")) facts.semi_sync_source = true;
  }
  facts.semi_sync_active = facts.semi_sync_source && semi_sync_active(connection);
  if (facts.mariadb) {
    const auto rows =
        connection.query_rows("SELECT @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_binlog_state");
    if (!rows.empty()) {
      facts.history = replication::GtidHistory{replication::GtidPosition::parse(rows[0].at(0)),
                                               replication::GtidPosition::parse(rows[0].at(1))};
    }
  }
  return facts;
}

bool semi_sync_active(Connection& connection) {
  for (const auto& row :
       connection.query_rows("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%_status'")) {
    const bool source =
        row.at(0) == "Rpl_semi_sync_master_status" || row.at(0) == "Rpl_semi_sync_source_status";
    if (source && (row.at(1) == "ON" || row.at(1) == "1")) return true;
  }
  return false;
}

std::vector<std::string> unmet(const ServerFacts& facts, const Requirements& requirements) {
  std::vector<std::string> reasons;
  if (facts.mariadb ? !at_least(facts, mariadb_major, mariadb_minor)
                    : !at_least(facts, mysql_major, mysql_minor)) {
    reasons.push_back("the server is " + facts.version + "; maild needs MariaDB " +
                      std::to_string(mariadb_major) + "." + std::to_string(mariadb_minor) +
                      " or later, or MySQL " + std::to_string(mysql_major) + "." +
                      std::to_string(mysql_minor) + " or later");
  }
  if (facts.innodb != "YES" && facts.innodb != "DEFAULT") {
    reasons.push_back("InnoDB is not available (ENGINES says '" + facts.innodb +
                      "'); maild's tables need it");
  }
  if (facts.max_allowed_packet < requirements.max_allowed_packet) {
    reasons.push_back("max_allowed_packet is " + mebibytes(facts.max_allowed_packet) +
                      ", less than the " + mebibytes(requirements.max_allowed_packet) +
                      " a message of [smtp] max_message_size needs; set max_allowed_packet = " +
                      mebibytes(requirements.max_allowed_packet) +
                      " or more in the server's configuration (or lower max_message_size)");
  }
  if (requirements.semi_sync && !facts.semi_sync_source) {
    reasons.push_back(
        std::string("semi-synchronous replication is off on this primary (") +
        (facts.mariadb ? "rpl_semi_sync_master_enabled" : "rpl_semi_sync_source_enabled") +
        "), so a commit could be lost with it; turn it on, or set [mysql] semi_sync = false "
        "to accept that risk");
  }
  return reasons;
}

std::string EndpointState::describe() const {
  if (!facts) return endpoint.to_string() + ": " + error;
  return endpoint.to_string() + ": " + (facts->read_only ? "read-only " : "writable ") +
         product(*facts);
}

std::vector<EndpointState> survey(const std::vector<Endpoint>& endpoints,
                                  const ConnectionSettings& settings) {
  std::vector<EndpointState> states;
  for (const Endpoint& endpoint : endpoints) {
    EndpointState state{endpoint, std::nullopt, ""};
    try {
      Connection connection(endpoint, settings, false);
      state.facts = ask(connection);
    } catch (const StoreError& error) {
      state.error = error.what();
    }
    states.push_back(std::move(state));
  }
  return states;
}

Writable find_writable(const std::vector<Endpoint>& endpoints, const ConnectionSettings& settings,
                       const Requirements& requirements,
                       const replication::GtidPosition& committed) {
  if (endpoints.empty()) throw StoreError("mysql: [mysql] endpoints lists no server");
  const auto states = survey(endpoints, settings);
  std::vector<const EndpointState*> writable;
  std::string all;
  for (const auto& state : states) {
    if (state.facts && !state.facts->read_only) writable.push_back(&state);
    all += (all.empty() ? "" : "; ") + state.describe();
  }
  if (writable.empty()) throw StoreError("mysql: no writable endpoint (" + all + ")");
  if (writable.size() > 1) {
    throw StoreError("mysql: more than one writable endpoint (" + all +
                     "); set read_only on every standby");
  }
  const EndpointState& primary = *writable.front();
  if (primary.facts->history && !primary.facts->history->contains(committed)) {
    throw BehindCommitted(
        "mysql: refusing to write to " + primary.endpoint.to_string() +
        ", the only writable endpoint: it lacks transactions maild already acknowledged (" +
        primary.facts->history->missing(committed).to_string() + "; it is at '" +
        primary.facts->history->current.to_string() +
        "'), as an old primary back after a failover would. Make the endpoint that has them "
        "writable and this one read-only (mailctl db status; docs/operations.md)");
  }
  const auto reasons = unmet(*primary.facts, requirements);
  if (!reasons.empty()) {
    std::string text =
        "mysql: the primary " + primary.endpoint.to_string() + " cannot hold the store: ";
    for (std::size_t i = 0; i < reasons.size(); ++i) text += (i ? "; " : "") + reasons[i];
    throw StoreError(text);
  }
  return {primary.endpoint, *primary.facts};
}

std::string describe(const std::vector<Endpoint>& endpoints) {
  std::string text;
  for (const Endpoint& endpoint : endpoints)
    text += (text.empty() ? "" : ", ") + endpoint.to_string();
  return text;
}

}  // namespace maild::store::mysql
