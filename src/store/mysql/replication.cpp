// Replication set-up, status and failover on MariaDB (MySQL 8 for status only: its GTIDs and
// statements differ, see docs/operations.md).
// Trust: the servers are the administrator's and answer for themselves; every change is made
// only after the checks that it is safe passed, and every wait on a server has a deadline.
#include "maild/store/replication.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "store/mysql/connection.hpp"

namespace maild::store::replication {
namespace {

using mysql::Connection;
using mysql::ConnectionSettings;
using mysql::MysqlError;
using Row = std::map<std::string, std::string>;

std::unique_ptr<Connection> connect(const Endpoint& endpoint, const Credentials& admin) {
  ConnectionSettings settings;
  settings.user = admin.user;
  settings.password = admin.password;
  settings.connect_timeout = admin.connect_timeout;
  settings.read_timeout = std::chrono::seconds(120);  // MASTER_GTID_WAIT has its own, shorter
  settings.write_timeout = std::chrono::seconds(30);
  return std::make_unique<Connection>(endpoint, settings, false);
}

// A SQL string literal.
std::string sql_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string field(const Row& row, const std::string& name) {
  auto found = row.find(name);
  return found == row.end() ? "" : found->second;
}

// A name -> value map of SHOW GLOBAL VARIABLES / STATUS LIKE 'pattern'.
Row show(Connection& db, const std::string& what, const std::string& pattern) {
  Row out;
  for (const auto& row : db.query_rows("SHOW GLOBAL " + what + " LIKE " + sql_literal(pattern)))
    out[row.at(0)] = row.at(1);
  return out;
}

bool on(const std::string& value) { return value == "ON" || value == "1"; }

bool is_mariadb(Connection& db) {
  return db.query_text("SELECT VERSION()").value_or("").find("MariaDB") != std::string::npos;
}

std::optional<Row> replica_row(Connection& db, bool mariadb) {
  const auto rows = db.query_named(mariadb ? "SHOW SLAVE STATUS" : "SHOW REPLICA STATUS");
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

std::string source_of(const Row& row) {
  const std::string host =
      field(row, "Master_Host").empty() ? field(row, "Source_Host") : field(row, "Master_Host");
  const std::string port =
      field(row, "Master_Port").empty() ? field(row, "Source_Port") : field(row, "Master_Port");
  if (host.empty()) return "";
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

// "running", "connecting", "stopped" or "error: ..." for a SHOW SLAVE STATUS row.
std::string replication_state(const Row& row) {
  const std::string io = field(row, "Slave_IO_Running") + field(row, "Replica_IO_Running");
  const std::string sql = field(row, "Slave_SQL_Running") + field(row, "Replica_SQL_Running");
  const std::string io_error = field(row, "Last_IO_Error");
  const std::string sql_error = field(row, "Last_SQL_Error");
  if (!sql_error.empty()) return "error: " + sql_error;
  if (io == "Yes" && sql == "Yes") return "running";
  if (!io_error.empty()) return "error: " + io_error;
  if (io == "Connecting") return "connecting";
  return "stopped";
}

std::string random_password() {
  static constexpr char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::random_device device;
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(alphabet) - 2);
  std::string out;
  for (int i = 0; i < 32; ++i) out += alphabet[pick(device)];
  return out;
}

std::string millis(std::chrono::milliseconds value) { return std::to_string(value.count()); }

// One endpoint, connected, with what failover needs to know about it.
struct Member {
  Endpoint endpoint;
  std::unique_ptr<Connection> db;
  std::string error;
  bool read_only = true;
  std::optional<Row> replica;
};

// Sets a global variable when it differs, and says which it was.
void set_global(Connection& db, const Endpoint& where, const std::string& name,
                const std::string& value, std::vector<std::string>& steps) {
  const std::string current = db.query_text("SELECT @@GLOBAL." + name).value_or("");
  const bool same =
      current == value || (on(current) && value == "ON") || (current == "0" && value == "OFF");
  if (same) {
    steps.push_back(where.to_string() + ": " + name + " is already " + value);
    return;
  }
  db.exec(
      "SET GLOBAL " + name + " = " +
      (value == "ON" || value == "OFF" || value == "AFTER_SYNC" ||
               std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })
           ? value
           : sql_literal(value)));
  steps.push_back(where.to_string() + ": set " + name + " = " + value + " (was " + current + ")");
}

// Waits up to `wait` for condition(); true when it held.
template <class Condition>
bool wait_until(std::chrono::seconds wait, Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void require_mariadb(Connection& db, const Endpoint& endpoint) {
  if (!is_mariadb(db)) {
    throw StoreError(endpoint.to_string() +
                     " is MySQL: mailctl sets replication up and fails over on MariaDB only; on "
                     "MySQL 8 use CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION = 1 "
                     "(docs/operations.md)");
  }
}

std::string gtid_wait(Connection& db, const std::string& position, std::chrono::seconds wait) {
  // 0: reached; -1: timed out.
  return db
      .query_text("SELECT MASTER_GTID_WAIT(" + sql_literal(position) + ", " +
                  std::to_string(wait.count()) + ")")
      .value_or("");
}

}  // namespace

// ---- GTID positions -------------------------------------------------------------------------

GtidPosition GtidPosition::parse(const std::string& text) {
  GtidPosition out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string_view item(text.data() + start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\n')) item.remove_prefix(1);
    Entry entry;
    const char* p = item.data();
    const char* last = item.data() + item.size();
    auto a = std::from_chars(p, last, entry.domain);
    if (a.ec == std::errc() && a.ptr < last && *a.ptr == '-') {
      auto b = std::from_chars(a.ptr + 1, last, entry.server);
      if (b.ec == std::errc() && b.ptr < last && *b.ptr == '-') {
        auto c = std::from_chars(b.ptr + 1, last, entry.sequence);
        if (c.ec == std::errc() && c.ptr == last) out.entries.push_back(entry);
      }
    }
    start = end + 1;
  }
  std::stable_sort(out.entries.begin(), out.entries.end(),
                   [](const Entry& x, const Entry& y) { return x.domain < y.domain; });
  return out;
}

std::string GtidPosition::to_string() const {
  std::string out;
  for (const Entry& entry : entries) {
    out += (out.empty() ? "" : ",") + std::to_string(entry.domain) + "-" +
           std::to_string(entry.server) + "-" + std::to_string(entry.sequence);
  }
  return out;
}

void GtidPosition::advance(const Entry& gtid) {
  auto place = std::find_if(entries.begin(), entries.end(),
                            [&](const Entry& entry) { return entry.domain >= gtid.domain; });
  if (place == entries.end() || place->domain != gtid.domain) {
    entries.insert(place, gtid);
  } else if (gtid.sequence >= place->sequence) {
    *place = gtid;
  }
}

std::uint64_t GtidPosition::sequence(std::uint32_t domain) const {
  for (const Entry& entry : entries) {
    if (entry.domain == domain) return entry.sequence;
  }
  return 0;
}

bool GtidPosition::covers(const GtidPosition& other) const {
  return std::all_of(other.entries.begin(), other.entries.end(),
                     [&](const Entry& entry) { return sequence(entry.domain) >= entry.sequence; });
}

bool GtidHistory::has(const GtidPosition::Entry& gtid) const {
  const auto same_origin = [&](const GtidPosition::Entry& entry) {
    return entry.domain == gtid.domain && entry.server == gtid.server &&
           entry.sequence >= gtid.sequence;
  };
  return std::any_of(current.entries.begin(), current.entries.end(), same_origin) ||
         std::any_of(binlog_state.entries.begin(), binlog_state.entries.end(), same_origin);
}

bool GtidHistory::contains(const GtidPosition& position) const { return missing(position).empty(); }

GtidPosition GtidHistory::missing(const GtidPosition& position) const {
  GtidPosition out;
  for (const auto& entry : position.entries) {
    if (!has(entry)) out.entries.push_back(entry);
  }
  return out;
}

namespace {

// The history of a MariaDB server, asked over `db`.
GtidHistory ask_history(Connection& db) {
  const auto rows = db.query_rows("SELECT @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_binlog_state");
  GtidHistory history;
  if (rows.empty()) return history;
  history.current = GtidPosition::parse(rows.front().at(0));
  history.binlog_state = GtidPosition::parse(rows.front().at(1));
  return history;
}

}  // namespace

// ---- maild's committed position -------------------------------------------------------------

std::filesystem::path committed_position_file(const config::Settings& settings) {
  return settings.store.path.parent_path() / "mysql-gtid-position";
}

std::optional<GtidPosition> read_committed_position(const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::exists(file, error) && !error) return std::nullopt;
  std::ifstream in(file);
  std::string line;
  if (!in) throw StoreError("cannot read maild's GTID position file " + file.string());
  std::getline(in, line);
  auto position = GtidPosition::parse(line);
  if (position.empty() || position.to_string() != line)
    throw StoreError("maild's GTID position file " + file.string() + " holds '" + line +
                     "', not a GTID position such as 0-1-42: check the endpoints (mailctl db "
                     "status), then remove the file");
  return position;
}

// ---- status ---------------------------------------------------------------------------------

std::vector<EndpointStatus> status(const std::vector<Endpoint>& endpoints,
                                   const Credentials& admin) {
  std::vector<EndpointStatus> out;
  for (const Endpoint& endpoint : endpoints) {
    EndpointStatus state;
    state.endpoint = endpoint;
    try {
      auto db = connect(endpoint, admin);
      const bool mariadb = is_mariadb(*db);
      state.reachable = true;
      state.version = db->query_text("SELECT VERSION()").value_or("");
      state.read_only =
          db->query_int("SELECT @@GLOBAL.read_only OR @@GLOBAL.innodb_read_only") != 0;
      if (mariadb) {
        state.history = ask_history(*db);
        state.gtid_position = state.history->current.to_string();
      } else {
        state.gtid_position = db->query_text("SELECT @@GLOBAL.gtid_executed").value_or("");
      }
      std::optional<Row> replica;
      try {
        replica = replica_row(*db, mariadb);
      } catch (const MysqlError& error) {
        if (error.kind == mysql::FailureKind::connection) throw;
        state.replication = "unknown (the account lacks SLAVE MONITOR)";
      }
      if (replica) {
        state.replication = replication_state(*replica);
        state.source = source_of(*replica);
        const std::string lag =
            field(*replica, "Seconds_Behind_Master") + field(*replica, "Seconds_Behind_Source");
        std::int64_t seconds = 0;
        if (!lag.empty() &&
            std::from_chars(lag.data(), lag.data() + lag.size(), seconds).ec == std::errc())
          state.lag_seconds = seconds;
      }
      state.role = !state.read_only ? "primary" : replica ? "standby" : "read-only";
      const Row variables = show(*db, "VARIABLES", "rpl_semi_sync_%");
      const Row counters = show(*db, "STATUS", "Rpl_semi_sync_%");
      const bool source_enabled = on(field(variables, "rpl_semi_sync_master_enabled")) ||
                                  on(field(variables, "rpl_semi_sync_source_enabled"));
      const bool replica_enabled = on(field(variables, "rpl_semi_sync_slave_enabled")) ||
                                   on(field(variables, "rpl_semi_sync_replica_enabled"));
      if (state.role == "primary") {
        const bool active = on(field(counters, "Rpl_semi_sync_master_status")) ||
                            on(field(counters, "Rpl_semi_sync_source_status"));
        const std::string clients = field(counters, "Rpl_semi_sync_master_clients") +
                                    field(counters, "Rpl_semi_sync_source_clients");
        state.semi_sync = !source_enabled ? "off"
                          : active        ? "on (" + (clients.empty() ? "0" : clients) + " standby)"
                                          : "on, inactive (asynchronous: no standby acknowledges)";
      } else {
        const bool active = on(field(counters, "Rpl_semi_sync_slave_status")) ||
                            on(field(counters, "Rpl_semi_sync_replica_status"));
        state.semi_sync = !replica_enabled ? "off" : active ? "standby on" : "standby on, inactive";
      }
    } catch (const StoreError& error) {
      state.reachable = false;
      state.role = "unreachable";
      state.error = error.what();
    }
    out.push_back(std::move(state));
  }
  return out;
}

std::vector<std::string> divergences(const std::vector<EndpointStatus>& states,
                                     const std::optional<GtidPosition>& committed,
                                     const std::string& where) {
  std::vector<std::string> out;
  std::vector<const EndpointStatus*> known;
  for (const auto& state : states) {
    if (state.reachable && state.history) known.push_back(&state);
  }
  const auto at = [](const EndpointStatus& state) {
    const std::string position = state.history->current.to_string();
    return state.endpoint.to_string() + " at '" + position + "'";
  };
  for (std::size_t i = 0; i < known.size(); ++i) {
    for (std::size_t j = i + 1; j < known.size(); ++j) {
      const EndpointStatus& a = *known[i];
      const EndpointStatus& b = *known[j];
      const bool a_has_b = a.history->contains(b.history->current);
      const bool b_has_a = b.history->contains(a.history->current);
      if (!a_has_b && !b_has_a) {
        out.push_back("diverged: " + at(a) + " and " + at(b) +
                      " each have transactions the other lacks (" +
                      b.history->missing(a.history->current).to_string() + " and " +
                      a.history->missing(b.history->current).to_string() +
                      "); one of them must be rebuilt from the other (docs/operations.md)");
      } else if (!a.read_only && !a_has_b) {
        out.push_back("errant: " + at(b) + " has transactions the primary " + at(a) + " lacks (" +
                      a.history->missing(b.history->current).to_string() + ")");
      } else if (!b.read_only && !b_has_a) {
        out.push_back("errant: " + at(a) + " has transactions the primary " + at(b) + " lacks (" +
                      b.history->missing(a.history->current).to_string() + ")");
      }
    }
  }
  if (committed) {
    for (const EndpointStatus* state : known) {
      if (state->read_only || state->history->contains(*committed)) continue;
      out.push_back("behind: the primary " + at(*state) +
                    " lacks transactions maild acknowledged (" +
                    state->history->missing(*committed).to_string() + ", " + where +
                    "): maild refuses to write to it; make the endpoint that has them writable");
    }
  }
  return out;
}

// ---- replicate ------------------------------------------------------------------------------

std::vector<std::string> replicate(const Endpoint& primary, const Endpoint& standby,
                                   const Credentials& admin, const ReplicateOptions& options) {
  if (primary == standby) throw StoreError("the primary and the standby are the same endpoint");
  std::vector<std::string> steps;
  std::unique_ptr<Connection> p, s;
  try {
    p = connect(primary, admin);
  } catch (const StoreError& error) {
    throw StoreError("cannot reach the primary: " + std::string(error.what()));
  }
  try {
    s = connect(standby, admin);
  } catch (const StoreError& error) {
    throw StoreError("cannot reach the standby: " + std::string(error.what()));
  }
  require_mariadb(*p, primary);
  require_mariadb(*s, standby);

  // Checks first: nothing changes unless all of them pass.
  if (p->query_int("SELECT @@GLOBAL.read_only") != 0)
    throw StoreError(primary.to_string() + " is read-only: it is not a primary");
  if (p->query_int("SELECT @@GLOBAL.server_id") == s->query_int("SELECT @@GLOBAL.server_id"))
    throw StoreError("both servers have server_id " +
                     std::to_string(p->query_int("SELECT @@GLOBAL.server_id")) +
                     "; give each its own in its configuration");
  for (auto* db : {p.get(), s.get()}) {
    const Endpoint& where = db == p.get() ? primary : standby;
    if (db->query_int("SELECT @@GLOBAL.log_bin") == 0)
      throw StoreError(where.to_string() +
                       " has no binary log; set log_bin (and restart it) in its configuration");
    if (db->query_int("SELECT @@GLOBAL.log_slave_updates") == 0)
      throw StoreError(where.to_string() +
                       " has log_slave_updates off; a standby promoted later could not be "
                       "replicated from: set log_slave_updates = ON in its configuration");
  }
  const std::string primary_pos = p->query_text("SELECT @@GLOBAL.gtid_binlog_pos").value_or("");
  const std::string standby_pos = s->query_text("SELECT @@GLOBAL.gtid_current_pos").value_or("");
  const auto existing = replica_row(*s, true);
  const bool already = existing && source_of(*existing) == primary.to_string() &&
                       replication_state(*existing) == "running" &&
                       field(*existing, "Using_Gtid") == "Slave_Pos";
  if (!already) {
    // Errant transactions: the standby's own (often accounts created with the binary log on).
    // Its replication would ask the primary for a GTID the primary never had (error 1236).
    const GtidPosition errant = ask_history(*p).missing(GtidPosition::parse(standby_pos));
    if (!errant.empty()) {
      throw StoreError(
          "the standby " + standby.to_string() + " has transactions the primary " +
          primary.to_string() + " lacks (errant GTIDs " + errant.to_string() + "; standby at '" +
          standby_pos + "', primary at '" + primary_pos +
          "'), so it cannot follow this primary; nothing was changed. If they are only set-up "
          "made on the standby with the binary log on (accounts created without SET SESSION "
          "sql_log_bin = 0), drop them from its history: RESET MASTER on the standby, and when "
          "the primary's transactions are that same set-up and nothing else, SET GLOBAL "
          "gtid_slave_pos = '" +
          primary_pos +
          "' there too, so that they are not applied twice; then db replicate again. Otherwise "
          "rebuild the standby from a backup of the primary (docs/operations.md)");
    }
    // The primary must still have every binary log the standby needs.
    const auto logs = p->query_rows("SHOW BINARY LOGS");
    if (!logs.empty()) {
      const std::string first =
          p->query_text("SELECT BINLOG_GTID_POS(" + sql_literal(logs.front().at(0)) + ", 4)")
              .value_or("");
      if (!GtidPosition::parse(standby_pos).covers(GtidPosition::parse(first)))
        throw StoreError("the primary " + primary.to_string() +
                         " no longer has the binary logs before " + first + " and the standby " +
                         standby.to_string() + " is at '" + standby_pos +
                         "': seed the standby from a backup of the primary first "
                         "(docs/operations.md)");
    }
    if (standby_pos.empty() && !options.database.empty()) {
      auto tables =
          s->prepare("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?");
      tables->bind_text(1, options.database);
      tables->step();
      if (tables->column_int(0) > 0)
        throw StoreError("the standby " + standby.to_string() + " has tables in " +
                         options.database +
                         " but no replication history: empty it, or seed it from a backup of "
                         "the primary (docs/operations.md)");
    }
  }

  // The replication account, on the primary (it replicates to the standby with everything else,
  // so it is there when the standby is promoted one day).
  std::string password = options.replication_password;
  const std::string account =
      sql_literal(options.replication_user) + "@" + sql_literal(options.replication_host);
  if (!already) {
    if (password.empty()) password = random_password();
    auto exists = p->prepare("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?");
    exists->bind_text(1, options.replication_user).bind_text(2, options.replication_host);
    exists->step();
    const bool found = exists->column_int(0) > 0;
    if (found) {
      p->exec("ALTER USER " + account + " IDENTIFIED BY " + sql_literal(password));
      steps.push_back(primary.to_string() + ": replication account " + options.replication_user +
                      "@" + options.replication_host + " exists; its password was set");
    } else {
      p->exec("CREATE USER " + account + " IDENTIFIED BY " + sql_literal(password));
      steps.push_back(primary.to_string() + ": created the replication account " +
                      options.replication_user + "@" + options.replication_host);
    }
    p->exec("GRANT REPLICATION SLAVE ON *.* TO " + account);
  }

  // Semi-sync on both (each may be the primary one day), the standby read-only.
  for (auto* db : {p.get(), s.get()}) {
    const Endpoint& where = db == p.get() ? primary : standby;
    set_global(*db, where, "rpl_semi_sync_master_wait_point", "AFTER_SYNC", steps);
    set_global(*db, where, "rpl_semi_sync_master_timeout", millis(options.semi_sync_timeout),
               steps);
    set_global(*db, where, "rpl_semi_sync_master_enabled", "ON", steps);
  }
  const bool replica_was_on =
      on(s->query_text("SELECT @@GLOBAL.rpl_semi_sync_slave_enabled").value_or(""));
  set_global(*p, primary, "rpl_semi_sync_slave_enabled", "ON", steps);
  set_global(*s, standby, "rpl_semi_sync_slave_enabled", "ON", steps);
  set_global(*s, standby, "read_only", "ON", steps);

  if (already) {
    if (!replica_was_on) {
      // The replica side of semi-sync takes effect when its connection to the primary restarts.
      s->exec("STOP SLAVE IO_THREAD");
      s->exec("START SLAVE IO_THREAD");
      steps.push_back(standby.to_string() + ": restarted the replication connection for semi-sync");
    }
    steps.push_back(standby.to_string() + " already replicates " + primary.to_string() +
                    " (GTID, running)");
  } else {
    if (existing) {
      s->exec("STOP SLAVE");
      steps.push_back(standby.to_string() + ": stopped replication from " + source_of(*existing));
    }
    // A former primary rejoining: its own binary log is where it stands, not its slave position.
    const std::string slave_pos = s->query_text("SELECT @@GLOBAL.gtid_slave_pos").value_or("");
    if (!GtidPosition::parse(slave_pos).covers(GtidPosition::parse(standby_pos))) {
      s->exec("SET GLOBAL gtid_slave_pos = " + sql_literal(standby_pos));
      steps.push_back(standby.to_string() + ": set gtid_slave_pos = " + standby_pos);
    }
    s->exec("CHANGE MASTER TO MASTER_HOST = " + sql_literal(primary.host) +
            ", MASTER_PORT = " + std::to_string(primary.port) + ", MASTER_USER = " +
            sql_literal(options.replication_user) + ", MASTER_PASSWORD = " + sql_literal(password) +
            ", MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 2");
    s->exec("START SLAVE");
    steps.push_back(standby.to_string() + ": replicating " + primary.to_string() +
                    " from GTID position '" + (standby_pos.empty() ? "" : standby_pos) + "'");
  }

  // Bounded: running, caught up with the primary, and acknowledging as a semi-sync standby.
  std::string last;
  const std::string target = p->query_text("SELECT @@GLOBAL.gtid_binlog_pos").value_or("");
  const bool ready = wait_until(options.wait, [&] {
    const auto row = replica_row(*s, true);
    last = row ? replication_state(*row) : "not configured";
    if (last != "running") return last.starts_with("error");
    const auto applied =
        GtidPosition::parse(s->query_text("SELECT @@GLOBAL.gtid_slave_pos").value_or(""));
    if (!applied.covers(GtidPosition::parse(target))) {
      last = "catching up (" + target + ")";
      return false;
    }
    const Row counters = show(*p, "STATUS", "Rpl_semi_sync_master_clients");
    if (field(counters, "Rpl_semi_sync_master_clients") == "0") {
      last = "running, not yet a semi-sync standby of the primary";
      return false;
    }
    return true;
  });
  if (!ready || last.starts_with("error"))
    throw StoreError("the standby " + standby.to_string() + " is not replicating within " +
                     std::to_string(options.wait.count()) + " s: " + last);
  steps.push_back(standby.to_string() + " is caught up at " +
                  (target.empty() ? std::string("the start") : target) +
                  " and acknowledges as a semi-sync standby");
  return steps;
}

// ---- failover -------------------------------------------------------------------------------

FailoverResult failover(const std::vector<Endpoint>& endpoints, const Credentials& admin,
                        const ReplicateOptions& options) {
  FailoverResult result;
  std::vector<Member> members;
  for (const Endpoint& endpoint : endpoints) {
    Member member{endpoint, nullptr, "", true, std::nullopt};
    try {
      member.db = connect(endpoint, admin);
      require_mariadb(*member.db, endpoint);
      member.read_only = member.db->query_int("SELECT @@GLOBAL.read_only") != 0;
      member.replica = replica_row(*member.db, true);
    } catch (const StoreError& error) {
      member.db.reset();
      member.error = error.what();
    }
    members.push_back(std::move(member));
  }

  Member* old_primary = nullptr;
  std::vector<Member*> candidates;
  for (Member& member : members) {
    if (!member.db) continue;
    if (!member.read_only) {
      if (old_primary)
        throw StoreError("two writable endpoints, " + old_primary->endpoint.to_string() + " and " +
                         member.endpoint.to_string() + "; make one read-only by hand first");
      old_primary = &member;
    } else if (member.replica) {
      candidates.push_back(&member);
    }
  }
  if (candidates.empty()) {
    std::string all;
    for (const Member& member : members)
      all += (all.empty() ? "" : "; ") + member.endpoint.to_string() + ": " +
             (member.db ? (member.read_only ? "read-only, not replicating" : "writable")
                        : member.error);
    throw StoreError("no standby to promote (" + all + ")");
  }
  if (old_primary) {
    result.old_primary = old_primary->endpoint;
  } else {
    // The primary the standbys followed, for the report.
    const std::string source = source_of(*candidates.front()->replica);
    for (const Member& member : members) {
      if (member.endpoint.to_string() == source) result.old_primary = member.endpoint;
    }
    if (!result.old_primary) result.old_primary = parse_endpoint(source);
  }

  if (old_primary) {
    // Planned: stop writes first, then let every standby apply all the primary has.
    old_primary->db->exec("SET GLOBAL read_only = 1");
    result.fenced = true;
    result.steps.push_back(old_primary->endpoint.to_string() + ": fenced (read_only = ON)");
    const std::string target =
        old_primary->db->query_text("SELECT @@GLOBAL.gtid_binlog_pos").value_or("");
    for (Member* candidate : candidates) {
      const std::string reached = gtid_wait(*candidate->db, target, options.wait);
      result.steps.push_back(candidate->endpoint.to_string() +
                             (reached == "0" ? ": applied everything up to " + target
                                             : ": did not reach " + target + " within " +
                                                   std::to_string(options.wait.count()) + " s"));
    }
  } else {
    // The primary is gone: freeze what each standby received, then let it apply all of it.
    for (Member* candidate : candidates) {
      candidate->db->exec("STOP SLAVE IO_THREAD");
      const auto row = replica_row(*candidate->db, true);
      const std::string received = row ? field(*row, "Gtid_IO_Pos") : "";
      if (!received.empty()) {
        const std::string reached = gtid_wait(*candidate->db, received, options.wait);
        result.steps.push_back(candidate->endpoint.to_string() + ": received up to " + received +
                               (reached == "0" ? ", all applied"
                                               : ", not all applied within " +
                                                     std::to_string(options.wait.count()) + " s"));
      } else {
        result.steps.push_back(candidate->endpoint.to_string() + ": received nothing yet");
      }
    }
  }

  // The most advanced: the one whose history contains every other's position (by server id
  // and sequence: standbys that diverged may show the same sequence numbers).
  std::vector<GtidHistory> histories;
  for (Member* candidate : candidates) histories.push_back(ask_history(*candidate->db));
  Member* best = nullptr;
  for (std::size_t i = 0; i < candidates.size() && !best; ++i) {
    const bool contains_all =
        std::all_of(histories.begin(), histories.end(),
                    [&](const GtidHistory& other) { return histories[i].contains(other.current); });
    if (contains_all) best = candidates[i];
  }
  if (!best) {
    std::string all;
    for (std::size_t i = 0; i < candidates.size(); ++i)
      all += (all.empty() ? "" : ", ") + candidates[i]->endpoint.to_string() + " at '" +
             histories[i].current.to_string() + "'";
    throw StoreError("the standbys diverged (" + all +
                     "): none has every transaction of the others; promote one by hand");
  }

  // Promote.
  Connection& db = *best->db;
  db.exec("STOP SLAVE");
  db.exec("RESET SLAVE ALL");
  std::vector<std::string> ignored;
  set_global(db, best->endpoint, "rpl_semi_sync_master_wait_point", "AFTER_SYNC", ignored);
  set_global(db, best->endpoint, "rpl_semi_sync_master_enabled", "ON", ignored);
  db.exec("SET GLOBAL read_only = 0");
  result.promoted = best->endpoint;
  result.gtid_position = db.query_text("SELECT @@GLOBAL.gtid_current_pos").value_or("");
  result.steps.push_back(best->endpoint.to_string() +
                         ": promoted (replication stopped and cleared, read_only = OFF) at " +
                         result.gtid_position);

  // The other standbys, and a fenced old primary, follow the new primary.
  std::vector<Member*> followers;
  for (Member* candidate : candidates) {
    if (candidate != best) followers.push_back(candidate);
  }
  if (old_primary) followers.push_back(old_primary);
  for (Member* follower : followers) {
    try {
      for (std::string& line : replicate(best->endpoint, follower->endpoint, admin, options))
        result.steps.push_back(std::move(line));
      result.standbys.push_back(follower->endpoint);
    } catch (const StoreError& error) {
      result.warnings.push_back(follower->endpoint.to_string() +
                                " could not be made a standby of the new primary: " + error.what());
    }
  }
  // What SET GLOBAL did is lost at a restart and MariaDB cannot persist it: the option files.
  const auto configure = [&](const Endpoint& endpoint, bool primary) {
    const std::string where = endpoint.to_string() + ": ";
    result.configuration.push_back(where + "read_only = " + (primary ? "OFF" : "ON"));
    result.configuration.push_back(where + "rpl_semi_sync_master_enabled = ON");
    result.configuration.push_back(where + "rpl_semi_sync_slave_enabled = ON");
    result.configuration.push_back(where + "rpl_semi_sync_master_wait_point = AFTER_SYNC");
    result.configuration.push_back(
        where + "rpl_semi_sync_master_timeout = " + millis(options.semi_sync_timeout));
  };
  configure(best->endpoint, true);
  for (const Member& member : members) {
    if (&member != best) configure(member.endpoint, false);
  }
  if (result.old_primary && std::none_of(members.begin(), members.end(), [&](const Member& member) {
        return member.endpoint == *result.old_primary;
      }))
    configure(*result.old_primary, false);
  if (result.old_primary && result.fenced) {
    result.warnings.push_back(
        "the old primary " + result.old_primary->to_string() +
        " is read-only until it restarts (MariaDB cannot persist SET GLOBAL): put read_only = ON "
        "in its configuration now, and remove read_only = ON from the new primary's");
  }
  if (result.old_primary && !result.fenced) {
    result.warnings.push_back(
        "the old primary " + result.old_primary->to_string() +
        " could not be reached, so it was not fenced: before it starts again, set read_only = ON "
        "in its configuration. It may hold transactions that never reached the new primary: "
        "rebuild it as a standby (docs/operations.md)");
  }
  if (result.standbys.empty()) {
    result.warnings.push_back(
        "the new primary " + best->endpoint.to_string() +
        " has no standby: its commits are stored on it alone. With semi-sync the first commit "
        "waits rpl_semi_sync_master_timeout, then it runs asynchronously (maild logs a warning). "
        "Add a standby: mailctl db replicate --primary " +
        best->endpoint.to_string() + " --standby HOST:PORT");
  }
  return result;
}

}  // namespace maild::store::replication
