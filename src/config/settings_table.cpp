// Every mail.conf key, declared once: type, bounds, default, help and where it lands in Settings.
// Trust: compiled-in data only; the parser, the sample config and the docs all read it from here.
#include "config/settings_table.hpp"

#include <array>
#include <utility>

namespace maild::config::table {

namespace {

using namespace std::chrono_literals;

constexpr Seconds one_day = 24h;

template <typename Section, typename Field>
std::function<bool(const Settings&, const Settings&)> same_field(Section Settings::*section,
                                                                 Field Section::*field) {
  return [section, field](const Settings& a, const Settings& b) {
    return (a.*section).*field == (b.*section).*field;
  };
}

template <typename Section, typename Field>
Binding into(Section Settings::*section, Field Section::*field) {
  return {[section, field](Settings& settings, Value value) {
            (settings.*section).*field = std::get<Field>(std::move(value));
          },
          same_field(section, field)};
}

template <typename E, std::size_t N>
using WordTable = std::array<std::pair<std::string_view, E>, N>;

template <typename E, std::size_t N>
EnumType words_of(const WordTable<E, N>& table) {
  EnumType type;
  for (const auto& [word, value] : table) type.words.push_back(word);
  return type;
}

// The parser admits only the table's words, so the lookup always finds one.
template <typename Section, typename E, std::size_t N>
Binding into_enum(Section Settings::*section, E Section::*field, const WordTable<E, N>& table) {
  return {[section, field, &table](Settings& settings, Value value) {
            const auto& word = std::get<EnumWord>(value).word;
            for (const auto& [candidate, enum_value] : table) {
              if (candidate == word) (settings.*section).*field = enum_value;
            }
          },
          same_field(section, field)};
}

constexpr WordTable<LogLevel, 5> log_levels{{{"trace", LogLevel::trace},
                                             {"debug", LogLevel::debug},
                                             {"info", LogLevel::info},
                                             {"warn", LogLevel::warn},
                                             {"error", LogLevel::error}}};
constexpr WordTable<StoreBackend, 2> store_backends{
    {{"sqlite", StoreBackend::sqlite}, {"mysql", StoreBackend::mysql}}};
constexpr WordTable<TlsPolicy, 2> tls_policies{
    {{"may", TlsPolicy::may}, {"encrypt", TlsPolicy::encrypt}}};
constexpr WordTable<UnverifiedPolicy, 3> unverified_policies{
    {{"accept", UnverifiedPolicy::accept},
     {"tag", UnverifiedPolicy::tag},
     {"reject", UnverifiedPolicy::reject}}};
constexpr WordTable<BareNewlinePolicy, 2> bare_newline_policies{
    {{"normalize", BareNewlinePolicy::normalize}, {"reject", BareNewlinePolicy::reject}}};

std::vector<KeySpec> build_keys() {
  using S = Settings;
  return {
      // [server]
      {"server", "hostname", StringType{}, "",
       "Used in greetings, Received and EHLO; empty = the machine's name",
       into(&S::server, &ServerSettings::hostname)},
      {"server", "threads", CountType{0, 256}, "0", "I/O threads; 0 = one per core",
       into(&S::server, &ServerSettings::threads)},
      {"server", "user", StringType{}, "",
       "Drop root to this user after binding ports; empty = stay",
       into(&S::server, &ServerSettings::user)},
      {"server", "pid_file", PathType{}, "", "Written when detached; empty = none",
       into(&S::server, &ServerSettings::pid_file)},
      {"server", "max_connections", CountType{1, 1'000'000}, "10000",
       "All listeners together; beyond it: 421 (SMTP) / -ERR (POP3), then close",
       into(&S::server, &ServerSettings::max_connections)},
      {"server", "max_connections_per_ip", CountType{1, 1'000'000}, "50",
       "Connections from one client address, all listeners together",
       into(&S::server, &ServerSettings::max_connections_per_ip)},
      {"server", "listen_backlog", CountType{1, 65535}, "1024",
       "The listen(2) backlog of every listener",
       into(&S::server, &ServerSettings::listen_backlog)},
      {"server", "shutdown_grace", DurationType{1s, 1h}, "30s",
       "On SIGTERM, how long sessions may finish before they are closed",
       into(&S::server, &ServerSettings::shutdown_grace)},
      {"server", "auth_cache_ttl", DurationType{0s, one_day}, "5m",
       "How long a verified password is remembered (POP3 and SMTP AUTH); 0s = check every time",
       into(&S::server, &ServerSettings::auth_cache_ttl)},
      {"server", "content_memory", SizeType{1_MiB, 65536_MiB}, "512M",
       "Message content all sessions may hold in memory at once; a message past it is read "
       "but refused with 452 4.3.1 (keep it above max_message_size)",
       into(&S::server, &ServerSettings::content_memory)},

      // [log]
      {"log", "level", words_of(log_levels), "info", "Least severe level written",
       into_enum(&S::log, &LogSettings::level, log_levels)},
      {"log", "file", PathType{}, "", "Log file; empty = stderr",
       into(&S::log, &LogSettings::file)},

      // [store]
      {"store", "backend", words_of(store_backends), "sqlite", "Where mail and accounts are kept",
       into_enum(&S::store, &StoreSettings::backend, store_backends)},
      {"store", "path", PathType{}, "/var/lib/maild/mail.db",
       "The SQLite database file; with mysql, its folder keeps maild's GTID position "
       "(mysql-gtid-position)",
       into(&S::store, &StoreSettings::path)},
      {"store", "workers", CountType{1, 256}, "8", "Store worker threads (and MySQL connections)",
       into(&S::store, &StoreSettings::workers)},

      // [mysql]
      {"mysql", "endpoints", EndpointListType{false, false}, "127.0.0.1:3306",
       "Primary and standbys, any order; maild writes to the writable one",
       into(&S::mysql, &MysqlSettings::endpoints)},
      {"mysql", "user", StringType{}, "maild", "MySQL user", into(&S::mysql, &MysqlSettings::user)},
      {"mysql", "password", StringType{}, "", "MySQL password; prefer password_file",
       into(&S::mysql, &MysqlSettings::password)},
      {"mysql", "password_file", PathType{}, "", "Read the password from this file instead",
       into(&S::mysql, &MysqlSettings::password_file)},
      {"mysql", "database", StringType{}, "maild", "MySQL database (schema) name",
       into(&S::mysql, &MysqlSettings::database)},
      {"mysql", "semi_sync", BoolType{}, "true",
       "Require the standby's acknowledgement before a commit returns",
       into(&S::mysql, &MysqlSettings::semi_sync)},

      // [tls]
      {"tls", "cert", PathType{}, "", "PEM certificate chain; empty disables STARTTLS, 465 and 995",
       into(&S::tls, &TlsSettings::cert)},
      {"tls", "key", PathType{}, "", "PEM private key of cert", into(&S::tls, &TlsSettings::key)},

      // [smtp]
      {"smtp", "listen", EndpointListType{true, true}, "0.0.0.0:25", "MX listeners; empty disables",
       into(&S::smtp, &SmtpSettings::listen)},
      {"smtp", "submission", EndpointListType{true, true}, "0.0.0.0:587",
       "Submission listeners: STARTTLS + AUTH required before MAIL; empty disables",
       into(&S::smtp, &SmtpSettings::submission)},
      {"smtp", "submissions", EndpointListType{true, true}, "0.0.0.0:465",
       "Submission listeners with implicit TLS + AUTH; empty disables",
       into(&S::smtp, &SmtpSettings::submissions)},
      {"smtp", "max_message_size", SizeType{1_KiB, 2048_MiB}, "35M",
       "Largest message accepted (advertised in EHLO SIZE)",
       into(&S::smtp, &SmtpSettings::max_message_size)},
      {"smtp", "max_recipients", CountType{1, 100'000}, "100", "RCPT TO commands per message",
       into(&S::smtp, &SmtpSettings::max_recipients)},
      {"smtp", "max_errors", CountType{1, 1000}, "10", "Protocol errors before 421 and close",
       into(&S::smtp, &SmtpSettings::max_errors)},
      {"smtp", "relay_networks", NetworkListType{}, "127.0.0.0/8, ::1/128",
       "Clients allowed to relay without AUTH", into(&S::smtp, &SmtpSettings::relay_networks)},
      {"smtp", "require_tls_for_auth", BoolType{}, "true", "Refuse AUTH before STARTTLS",
       into(&S::smtp, &SmtpSettings::require_tls_for_auth)},
      {"smtp", "command_timeout", DurationType{1s, 1h}, "5m",
       "A whole command line, from its first byte (and the wait for it); then 421 and close",
       into(&S::smtp, &SmtpSettings::command_timeout)},
      {"smtp", "data_timeout", DurationType{1s, 1h}, "10m",
       "All of a message's content (DATA) or of one BDAT chunk, then 421 and close; also of a "
       "GET callback's answer",
       into(&S::smtp, &SmtpSettings::data_timeout)},
      {"smtp", "bare_newline", words_of(bare_newline_policies), "normalize",
       "Bare CR or LF in message content: normalize to CRLF, or reject (550 5.5.2)",
       into_enum(&S::smtp, &SmtpSettings::bare_newline, bare_newline_policies)},
      {"smtp", "max_auth_failures", CountType{1, 1000}, "5",
       "Failed AUTH per client address per minute, then 421 and close",
       into(&S::smtp, &SmtpSettings::max_auth_failures)},
      {"smtp", "received_auth_user", BoolType{}, "false",
       "Name the authenticated user in the Received header",
       into(&S::smtp, &SmtpSettings::received_auth_user)},
      {"smtp", "max_hops", CountType{1, 1000}, "50",
       "Received: header fields a message may carry; above it 554 5.4.6 (mail loop), and the "
       "queue bounces what it would relay with more",
       into(&S::smtp, &SmtpSettings::max_hops)},
      {"smtp", "postmaster", MailAddressType{}, "",
       "Where postmaster@<every local domain> goes unless the domain has its own; empty = where "
       "the bare <postmaster> goes",
       into(&S::smtp, &SmtpSettings::postmaster)},

      // [pop3]
      {"pop3", "listen", EndpointListType{true, true}, "0.0.0.0:110",
       "POP3 listeners (STLS); empty disables", into(&S::pop3, &Pop3Settings::listen)},
      {"pop3", "pop3s", EndpointListType{true, true}, "0.0.0.0:995",
       "POP3 listeners with implicit TLS; empty disables", into(&S::pop3, &Pop3Settings::pop3s)},
      {"pop3", "plaintext_networks", NetworkListType{}, "127.0.0.0/8, ::1/128",
       "USER/PASS without TLS only from here", into(&S::pop3, &Pop3Settings::plaintext_networks)},
      {"pop3", "max_auth_failures", CountType{1, 1000}, "5",
       "Per client address per minute, then -ERR and close",
       into(&S::pop3, &Pop3Settings::max_auth_failures)},
      {"pop3", "idle_timeout", DurationType{1s, one_day}, "10m",
       "Inactivity autologout timer (RFC 1939 says at least 10m); a command line must also "
       "complete within it from its first byte",
       into(&S::pop3, &Pop3Settings::idle_timeout)},

      // [delivery]
      {"delivery", "workers", CountType{1, 10'000}, "16", "Concurrent outbound deliveries",
       into(&S::delivery, &DeliverySettings::workers)},
      {"delivery", "smtp_port", PortType{}, "25",
       "Port of remote MX hosts, for delivery and for GET callbacks",
       into(&S::delivery, &DeliverySettings::smtp_port)},
      {"delivery", "bind_address", AddressType{}, "",
       "Source address of outbound connections (delivery and GET); empty = the system's choice",
       into(&S::delivery, &DeliverySettings::bind_address)},
      {"delivery", "routes", RouteListType{}, "",
       "Static routes, e.g. example.org = 127.0.0.2:2526, * = smarthost.example:587",
       into(&S::delivery, &DeliverySettings::routes)},
      {"delivery", "per_destination", CountType{1, 1000}, "4",
       "Concurrent connections to one destination; also GET callbacks per sender domain and per MX "
       "address",
       into(&S::delivery, &DeliverySettings::per_destination)},
      {"delivery", "retry_schedule", DurationListType{1s, 7 * one_day}, "5m, 10m, 30m, 1h, 2h, 4h",
       "Waits between attempts; the last one repeats until max_queue_age",
       into(&S::delivery, &DeliverySettings::retry_schedule)},
      {"delivery", "max_queue_age", DurationType{1s, 90 * one_day}, "5d", "Then bounce",
       into(&S::delivery, &DeliverySettings::max_queue_age)},
      {"delivery", "tls", words_of(tls_policies), "may",
       "Outbound TLS (per-domain policy can override)",
       into_enum(&S::delivery, &DeliverySettings::tls, tls_policies)},
      {"delivery", "route_auth_file", PathType{}, "",
       "Smarthost logins for routes: lines of HOST:PORT USER PASSWORD (# comments), read at "
       "start; sent with AUTH PLAIN, only over TLS",
       into(&S::delivery, &DeliverySettings::route_auth_file)},
      {"delivery", "lease_time", DurationType{5s, one_day}, "2m",
       "How long a node holds recipients it is delivering (renewed while it works); "
       "another node takes over a dead node's recipients after this",
       into(&S::delivery, &DeliverySettings::lease_time)},
      {"delivery", "delay_warning", DurationType{0s, 90 * one_day}, "4h",
       "Tell the sender once when a message is still queued after this long; 0 = never",
       into(&S::delivery, &DeliverySettings::delay_warning)},

      // [dns]
      {"dns", "servers", EndpointListType{true, true}, "",
       "Resolvers; empty = /etc/resolv.conf; e.g. 127.0.0.1:5353 for tests",
       into(&S::dns, &DnsSettings::servers)},
      {"dns", "timeout", DurationType{1s, 5min}, "5s", "Per query",
       into(&S::dns, &DnsSettings::timeout)},

      // [reverse]
      {"reverse", "accept_source", BoolType{}, "true", "Advertise SOURCE and accept it",
       into(&S::reverse, &ReverseSettings::accept_source)},
      {"reverse", "use_source", BoolType{}, "true",
       "Send SOURCE instead of DATA when the peer advertises it",
       into(&S::reverse, &ReverseSettings::use_source)},
      {"reverse", "poll_interval", DurationType{1s, one_day}, "30s",
       "How often pending retrievals are fetched again and pickups expired or purged",
       into(&S::reverse, &ReverseSettings::poll_interval)},
      {"reverse", "pending_max_age", DurationType{1s, 90 * one_day}, "48h",
       "How long a pending pickup is kept before it is given up",
       into(&S::reverse, &ReverseSettings::pending_max_age)},
      {"reverse", "pickup_max_age", DurationType{1s, 90 * one_day}, "5d",
       "How long a message waits to be fetched by GET",
       into(&S::reverse, &ReverseSettings::pickup_max_age)},
      {"reverse", "retain_after_fetch", DurationType{1s, 90 * one_day}, "24h",
       "How long a fetched message is kept for a repeated GET",
       into(&S::reverse, &ReverseSettings::retain_after_fetch)},
      {"reverse", "unverified_policy", words_of(unverified_policies), "accept",
       "Default for domains without their own policy",
       into_enum(&S::reverse, &ReverseSettings::unverified_policy, unverified_policies)},
      {"reverse", "trusted_peers", NetworkListType{}, "",
       "Addresses allowed to GET without the DNS check, and non-public addresses GET callbacks may "
       "connect to",
       into(&S::reverse, &ReverseSettings::trusted_peers)},
      {"reverse", "max_unknown_tokens", CountType{1, 1000}, "5",
       "Unknown GET tokens per client address per minute until their 550 comes at the longest "
       "delay",
       into(&S::reverse, &ReverseSettings::max_unknown_tokens)},
      {"reverse", "max_pending_per_domain", CountType{1, 1'000'000}, "1000",
       "Pending retrievals from one sender domain; SOURCE beyond it gets 452",
       into(&S::reverse, &ReverseSettings::max_pending_per_domain)},
      {"reverse", "max_pending_per_client", CountType{1, 1'000'000}, "100",
       "Pending retrievals announced by one client address; SOURCE beyond it gets 452",
       into(&S::reverse, &ReverseSettings::max_pending_per_client)},
  };
}

}  // namespace

const std::vector<SectionSpec>& sections() {
  static const std::vector<SectionSpec> all{
      {"server", "The process: its name, threads, privileges and connection limits."},
      {"log", "Where and how much maild logs."},
      {"store", "The SQL store that holds mail, accounts and queues."},
      {"mysql", "The MySQL connection (store.backend = mysql only)."},
      {"tls", "The certificate for STARTTLS, SMTPS (465) and POP3S (995)."},
      {"smtp", "Inbound SMTP: MX, submission and their limits."},
      {"pop3", "POP3 access to mailboxes."},
      {"delivery", "Outbound delivery: the queue, retries and routing."},
      {"dns", "The resolver used for MX lookups and checks."},
      {"reverse", "SOURCE/GET, see SOURCE-GET.md."},
  };
  return all;
}

const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> all = build_keys();
  return all;
}

const SectionSpec* find_section(std::string_view name) {
  for (const auto& section : sections()) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

const KeySpec* find_key(std::string_view section, std::string_view key) {
  for (const auto& spec : keys()) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

Settings defaults() {
  Settings settings;
  for (const auto& spec : keys()) {
    // A default that does not parse is a bug in this file; the tests catch it first.
    spec.store(settings, parse_value(spec, spec.default_text, {}));
  }
  return settings;
}

}  // namespace maild::config::table

namespace maild::config {

namespace table {

const std::vector<SampleValue>& sample_values() {
  // A packaged maild binds its ports as root and then runs as the user the
  // package creates (config/maild.sysusers).
  static const std::vector<SampleValue> values{{"server", "user", "maild"}};
  return values;
}

}  // namespace table

std::vector<std::string> changed_keys(const Settings& running, const Settings& fresh) {
  std::vector<std::string> changed;
  for (const auto& spec : table::keys()) {
    if (!spec.store.same(running, fresh))
      changed.push_back(std::string(spec.section) + "." + std::string(spec.key));
  }
  return changed;
}

}  // namespace maild::config
