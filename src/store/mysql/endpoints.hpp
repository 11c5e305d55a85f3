// The MySQL endpoints ([mysql] endpoints: a primary and standbys, in any order) and their roles:
// connect to one, ask what it is, find the one maild may write to, and check that it can hold
// maild's store. The store's pool uses this; `mailctl db` commands can too.
// Trust: the servers are the administrator's and what they say about themselves is believed;
// each question is asked over a fresh connection with the connect and read timeouts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "maild/core/net_types.hpp"
#include "maild/store/replication.hpp"
#include "store/mysql/connection.hpp"

namespace maild::store::mysql {

// What a server says about itself.
struct ServerFacts {
  std::string version;  // VERSION(), e.g. "10.11.6-MariaDB-log" or "8.0.36"
  bool mariadb = false;
  int major = 0, minor = 0;
  bool read_only = true;          // @@read_only or @@innodb_read_only: not a primary
  bool semi_sync_source = false;  // rpl_semi_sync_master_enabled (MariaDB) / _source_ (MySQL 8)
  // Rpl_semi_sync_master_status: enabled and a standby acknowledges (off: it fell back to
  // asynchronous replication after rpl_semi_sync_master_timeout without an acknowledgement).
  bool semi_sync_active = false;
  std::uint64_t max_allowed_packet = 0;
  std::string innodb;  // information_schema.ENGINES.SUPPORT: "DEFAULT", "YES", or "" when absent
  std::int64_t server_id = 0;
  std::optional<replication::GtidHistory> history;  // MariaDB's GTIDs; MySQL's are not compared
};

ServerFacts ask(Connection& connection);

// Rpl_semi_sync_master_status (or _source_): whether commits wait for a standby right now.
bool semi_sync_active(Connection& connection);

// What maild needs of the server it writes to.
struct Requirements {
  std::uint64_t max_allowed_packet = 0;  // [smtp] max_message_size plus headroom
  bool semi_sync = false;                // [mysql] semi_sync
};

// Why this server cannot hold maild's store, one sentence per reason naming the setting to
// change; empty when it can. Says nothing about read_only (see find_writable).
std::vector<std::string> unmet(const ServerFacts& facts, const Requirements& requirements);

// One endpoint as it answered just now.
struct EndpointState {
  Endpoint endpoint;
  std::optional<ServerFacts> facts;  // nothing when it could not be asked
  std::string error;                 // why not
  std::string describe() const;      // "127.0.0.1:3306: writable MariaDB 10.11.6" or the error
};

// Asks every endpoint in turn, each over its own connection (without selecting the database).
std::vector<EndpointState> survey(const std::vector<Endpoint>& endpoints,
                                  const ConnectionSettings& settings);

// The only writable endpoint lacks transactions maild already acknowledged.
struct BehindCommitted : StoreError {
  using StoreError::StoreError;
};

// The endpoint maild writes to: the only one with read_only and innodb_read_only off. Throws
// StoreError naming every endpoint and what it answered when there is none, or more than one
// (two primaries: writing to either could lose the other's mail), or when it fails a requirement;
// BehindCommitted when it is MariaDB and its history lacks `committed` (the position of maild's
// last commit): writing there would build on a history without mail maild acknowledged.
struct Writable {
  Endpoint endpoint;
  ServerFacts facts;
};
Writable find_writable(const std::vector<Endpoint>& endpoints, const ConnectionSettings& settings,
                       const Requirements& requirements,
                       const replication::GtidPosition& committed = {});

// "127.0.0.1:3306, 10.0.0.2:3306"
std::string describe(const std::vector<Endpoint>& endpoints);

}  // namespace maild::store::mysql
