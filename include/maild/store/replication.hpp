// Replication between MySQL/MariaDB endpoints, for `mailctl db replicate | status | failover`:
// set a standby up behind a primary with semi-synchronous replication, report each endpoint's
// role and state, and promote the most advanced standby when the primary is lost.
// Talks to the servers over fresh connections as an administrator account; trusts what the
// servers say about themselves, and checks every precondition before changing anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "maild/core/net_types.hpp"
#include "maild/store/types.hpp"

namespace maild::store::replication {

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
  std::string gtid_position;  // @@gtid_current_pos
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
};

// Promotes the most advanced reachable standby among `endpoints` and fences the old primary.
// Throws StoreError (and changes nothing) when no standby can be promoted.
FailoverResult failover(const std::vector<Endpoint>& endpoints, const Credentials& admin,
                        const ReplicateOptions& options);

// A GTID position ("0-1-42,1-2-7") as domain -> (server, sequence). Exposed for tests.
struct GtidPosition {
  struct Entry {
    std::uint32_t domain = 0;
    std::uint32_t server = 0;
    std::uint64_t sequence = 0;
  };
  std::vector<Entry> entries;  // one per domain, in domain order
  static GtidPosition parse(const std::string& text);
  std::uint64_t sequence(std::uint32_t domain) const;  // 0 when the domain is absent
  // Every domain of `other` is at or below this one's sequence.
  bool covers(const GtidPosition& other) const;
};

}  // namespace maild::store::replication
