// The process settings read from mail.conf (see docs/configuration.md).
// Every key is declared once, in src/config/settings_table.cpp, with its type,
// unit, default, bounds and help; this struct is only where the values land.
// Trust: the file is the administrator's; every value is validated on load.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "maild/core/net_types.hpp"
#include "maild/core/units.hpp"

namespace maild::config {

enum class LogLevel { trace, debug, info, warn, error };
enum class StoreBackend { sqlite, mysql };
enum class TlsPolicy { may, encrypt };
enum class UnverifiedPolicy { accept, tag, reject };
enum class BareNewlinePolicy { normalize, reject };

// One static route: mail for `domain` ("*" = every other domain) goes to `next_hop`.
struct Route {
  std::string domain;
  Endpoint next_hop;
  bool operator==(const Route&) const = default;
};

struct ServerSettings {
  std::string hostname;  // empty in the file = the machine's name, filled in on load
  unsigned threads = 0;  // 0 in the file = one per core, filled in on load
  std::string user;
  std::filesystem::path pid_file;
  unsigned max_connections = 10000;
  unsigned max_connections_per_ip = 50;
  unsigned listen_backlog = 1024;
  Seconds shutdown_grace{30};         // added key: how long sessions may finish on SIGTERM
  Seconds auth_cache_ttl{300};        // added key: how long a verified password is remembered
  ByteSize content_memory = 512_MiB;  // added key: message content in memory, all sessions at once
  bool operator==(const ServerSettings&) const = default;
};

struct LogSettings {
  LogLevel level = LogLevel::info;
  std::filesystem::path file;  // empty = stderr
  bool operator==(const LogSettings&) const = default;
};

struct StoreSettings {
  StoreBackend backend = StoreBackend::sqlite;
  std::filesystem::path path = "/var/lib/maild/mail.db";
  unsigned workers = 8;
  bool operator==(const StoreSettings&) const = default;
};

struct MysqlSettings {
  std::vector<Endpoint> endpoints{{"127.0.0.1", 3306}};
  std::string user = "maild";
  std::string password;
  std::filesystem::path password_file;
  std::string database = "maild";
  bool semi_sync = true;
  bool operator==(const MysqlSettings&) const = default;
};

struct TlsSettings {
  std::filesystem::path cert;
  std::filesystem::path key;
  bool operator==(const TlsSettings&) const = default;
};

struct SmtpSettings {
  std::vector<Endpoint> listen{{"0.0.0.0", 25}};
  std::vector<Endpoint> submission{{"0.0.0.0", 587}};
  std::vector<Endpoint> submissions{{"0.0.0.0", 465}};
  ByteSize max_message_size = 35_MiB;
  unsigned max_recipients = 100;
  unsigned max_errors = 10;
  std::vector<Network> relay_networks;  // default 127.0.0.0/8, ::1/128, filled by the table
  bool require_tls_for_auth = true;
  Seconds command_timeout{300};
  Seconds data_timeout{600};
  BareNewlinePolicy bare_newline = BareNewlinePolicy::normalize;  // added key
  unsigned max_auth_failures = 5;                                 // added key
  bool received_auth_user = false;                                // added key
  unsigned max_hops = 50;  // Received: fields in arriving content; above it 554 5.4.6
  std::string postmaster;  // postmaster@<every local domain> goes here; "" = the bare <postmaster>
  bool operator==(const SmtpSettings&) const = default;
};

struct Pop3Settings {
  std::vector<Endpoint> listen{{"0.0.0.0", 110}};
  std::vector<Endpoint> pop3s{{"0.0.0.0", 995}};
  std::vector<Network> plaintext_networks;  // default 127.0.0.0/8, ::1/128
  unsigned max_auth_failures = 5;
  Seconds idle_timeout{600};  // added key: RFC 1939's autologout timer
  bool operator==(const Pop3Settings&) const = default;
};

struct DeliverySettings {
  unsigned workers = 16;
  std::uint16_t smtp_port = 25;
  std::string bind_address;
  std::vector<Route> routes;
  unsigned per_destination = 4;
  std::vector<Seconds> retry_schedule;  // default 5m, 10m, 30m, 1h, 2h, 4h
  Seconds max_queue_age{5 * 86400};
  TlsPolicy tls = TlsPolicy::may;
  std::filesystem::path route_auth_file;  // added key: smarthost logins, HOST:PORT USER PASSWORD
  Seconds lease_time{120};                // added key: a node's hold on recipients it delivers
  Seconds delay_warning{14400};           // added key: 0 = no delay notices
  bool operator==(const DeliverySettings&) const = default;
};

struct DnsSettings {
  std::vector<Endpoint> servers;  // empty = /etc/resolv.conf
  Seconds timeout{5};
  bool operator==(const DnsSettings&) const = default;
};

struct ReverseSettings {
  bool accept_source = true;
  bool use_source = true;
  Seconds poll_interval{30};
  Seconds pending_max_age{48 * 3600};
  Seconds pickup_max_age{5 * 86400};
  Seconds retain_after_fetch{24 * 3600};
  UnverifiedPolicy unverified_policy = UnverifiedPolicy::accept;
  std::vector<Network> trusted_peers;
  unsigned max_unknown_tokens =
      5;  // added key: per client address per minute, then the longest delay
  unsigned max_pending_per_domain = 1000;  // added key: SOURCE beyond it gets 452
  unsigned max_pending_per_client = 100;   // added key: per announcing client address, then 452
  bool operator==(const ReverseSettings&) const = default;
};

struct Settings {
  ServerSettings server;
  LogSettings log;
  StoreSettings store;
  MysqlSettings mysql;
  TlsSettings tls;
  SmtpSettings smtp;
  Pop3Settings pop3;
  DeliverySettings delivery;
  DnsSettings dns;
  ReverseSettings reverse;
  bool operator==(const Settings&) const = default;
};

}  // namespace maild::config
