// Replication between MySQL/MariaDB endpoints, for `mailctl db replicate | status | failover`:
// set a standby up behind a primary with semi-synchronous replication, report each endpoint's
// role and state, and promote the most advanced standby when the primary is lost.
// Talks to the servers over fresh connections as an administrator account; trusts what the
// servers say about themselves, and checks every precondition before changing anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/core/net_types.hpp"
#include "maild/store/types.hpp"

namespace maild::store::replication {

// A GTID position ("0-1-42,1-2-7") as domain -> (server, sequence). Exposed for tests.
struct GtidPosition {
  struct Entry {
    std::uint32_t domain = 0;
    std::uint32_t server = 0;
    std::uint64_t sequence = 0;
  };
  // One per domain, in domain order (a @@gtid_binlog_state has one per domain and server id).
  std::vector<Entry> entries;
  static GtidPosition parse(const std::string& text);
  std::string to_string() const;  // "0-1-42,1-2-7"
  bool empty() const { return entries.empty(); }
  std::uint64_t sequence(std::uint32_t domain) const;  // 0 when the domain is absent
  // Every domain of `other` is at or below this one's sequence. Sequence numbers alone: two
  // servers that diverged count the same numbers, so this is no proof of history (GtidHistory).
  bool covers(const GtidPosition& other) const;
  // Takes `gtid` as its domain's entry unless the entry there has a higher sequence.
  void advance(const Entry& gtid);
};

// Which transactions a MariaDB server has, as far as its GTID variables tell.
struct GtidHistory {
  GtidPosition current;       // @@gtid_current_pos: the last GTID applied, per domain
  GtidPosition binlog_state;  // @@gtid_binlog_state: per domain and server id, the last logged
  // Whether the transaction `gtid` (domain-server-sequence) is among them: the server's last GTID
  // in that domain, or the last its binary log holds from that server id there, is the same
  // server id's at the same or a later sequence. A sequence number alone proves nothing: a
  // server that diverged has the same numbers from another server id.
  bool has(const GtidPosition::Entry& gtid) const;
  bool contains(const GtidPosition& position) const;         // has() every entry
  GtidPosition missing(const GtidPosition& position) const;  // the entries it has not
};

// An account with the privileges replication needs (docs/operations.md lists them).
struct Credentials {
  std::string user;
  std::string password;
  std::chrono::seconds connect_timeout{5};
};

// What one endpoint answered just now.
struct EndpointStatus {
  Endpoint endpoint;
  bool reachable = false;
  std::string error;    // why it could not be asked
  std::string role;     // "primary", "standby", "read-only" (no replication), "unreachable"
  std::string version;  // VERSION()
  bool read_only = true;
  std::string gtid_position;           // @@gtid_current_pos
  std::optional<GtidHistory> history;  // MariaDB only
  // Replication as a standby: "running", "stopped", "connecting", "error: ..." or "" (none).
  std::string replication;
  std::string source;                       // the primary it replicates from, "" when none
  std::optional<std::int64_t> lag_seconds;  // Seconds_Behind_Master, when known
  // Semi-sync: "on (N standbys)", "on, inactive (fell back to asynchronous)", "off", or for a
  // standby "standby on" / "standby off".
  std::string semi_sync;
};

// Asks every endpoint; never throws for an endpoint that cannot be asked.
std::vector<EndpointStatus> status(const std::vector<Endpoint>& endpoints,
                                   const Credentials& admin);

struct ReplicateOptions {
  std::string replication_user = "maild_repl";
  std::string replication_password;    // empty: a random one is made (and set on the primary)
  std::string replication_host = "%";  // where the replication account may connect from
  std::chrono::milliseconds semi_sync_timeout{10000};
  std::chrono::seconds wait{30};  // for the standby to connect and acknowledge
  std::string database;           // [mysql] database: a new standby must have no tables in it
};

// Makes `standby` replicate `primary` with GTID and semi-synchronous replication (AFTER_SYNC).
// Idempotent: a standby already replicating this primary is left as it is. Returns one line per
// thing it did or found already done; throws StoreError when a precondition fails.
std::vector<std::string> replicate(const Endpoint& primary, const Endpoint& standby,
                                   const Credentials& admin, const ReplicateOptions& options);

struct FailoverResult {
  Endpoint promoted;
  std::string gtid_position;            // the new primary's, after promotion
  std::optional<Endpoint> old_primary;  // the writable endpoint before (if any was known)
  bool fenced = false;                  // the old primary was reached and made read-only
  std::vector<Endpoint> standbys;       // standbys now replicating the new primary
  std::vector<std::string> steps;       // what was done, in order
  std::vector<std::string> warnings;    // what the administrator must do next
  // The option-file lines that make the change survive a restart, per server ("HOST:PORT: key =
  // value"): SET GLOBAL does not, and MariaDB cannot persist it.
  std::vector<std::string> configuration;
};

// Promotes the most advanced reachable standby among `endpoints` and fences the old primary.
// Throws StoreError (and changes nothing) when no standby can be promoted.
FailoverResult failover(const std::vector<Endpoint>& endpoints, const Credentials& admin,
                        const ReplicateOptions& options);

// Where maild keeps the GTID position of the last commit it acknowledged: in the folder of
// [store] path, which is maild's state folder whatever the backend.
std::filesystem::path committed_position_file(const config::Settings& settings);

// The position in that file; nothing when there is none. Throws StoreError when it exists but
// cannot be read or holds no position.
std::optional<GtidPosition> read_committed_position(const std::filesystem::path& file);

// What is wrong between the endpoints' histories, one sentence each: endpoints that diverged
// (each has transactions the other lacks), a standby with transactions the primary lacks
// (errant), and a primary that lacks what maild acknowledged (`committed`, from `where`).
std::vector<std::string> divergences(const std::vector<EndpointStatus>& states,
                                     const std::optional<GtidPosition>& committed,
                                     const std::string& where);

}  // namespace maild::store::replication
