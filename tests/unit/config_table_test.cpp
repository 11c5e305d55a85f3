// The key table: binding names and defaults, defaults equal to Settings', every key reaching its
// field, and the generated sample config and reference covering every key.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config/settings_table.hpp"
#include "maild/config/load.hpp"

namespace maild::config {
namespace {

using namespace std::chrono_literals;

// CONFIG.md's keys and defaults, binding for everyone who writes a config file, plus the added
// keys.
const std::vector<std::pair<std::string, std::string>> binding_keys{
    {"server.hostname", ""},
    {"server.threads", "0"},
    {"server.user", ""},
    {"server.pid_file", ""},
    {"server.max_connections", "10000"},
    {"server.max_connections_per_ip", "50"},
    {"server.listen_backlog", "1024"},
    {"server.shutdown_grace", "30s"},
    {"server.auth_cache_ttl", "5m"},
    {"server.content_memory", "512M"},
    {"log.level", "info"},
    {"log.file", ""},
    {"store.backend", "sqlite"},
    {"store.path", "/var/lib/maild/mail.db"},
    {"store.workers", "8"},
    {"mysql.endpoints", "127.0.0.1:3306"},
    {"mysql.user", "maild"},
    {"mysql.password", ""},
    {"mysql.password_file", ""},
    {"mysql.database", "maild"},
    {"mysql.semi_sync", "true"},
    {"tls.cert", ""},
    {"tls.key", ""},
    {"smtp.listen", "0.0.0.0:25"},
    {"smtp.submission", "0.0.0.0:587"},
    {"smtp.submissions", "0.0.0.0:465"},
    {"smtp.max_message_size", "35M"},
    {"smtp.max_recipients", "100"},
    {"smtp.max_errors", "10"},
    {"smtp.relay_networks", "127.0.0.0/8, ::1/128"},
    {"smtp.require_tls_for_auth", "true"},
    {"smtp.command_timeout", "5m"},
    {"smtp.data_timeout", "10m"},
    {"smtp.bare_newline", "normalize"},
    {"smtp.max_auth_failures", "5"},
    {"smtp.received_auth_user", "false"},
    {"smtp.max_hops", "50"},
    {"smtp.postmaster", ""},
    {"pop3.listen", "0.0.0.0:110"},
    {"pop3.pop3s", "0.0.0.0:995"},
    {"pop3.plaintext_networks", "127.0.0.0/8, ::1/128"},
    {"pop3.max_auth_failures", "5"},
    {"pop3.idle_timeout", "10m"},
    {"delivery.workers", "16"},
    {"delivery.smtp_port", "25"},
    {"delivery.bind_address", ""},
    {"delivery.routes", ""},
    {"delivery.per_destination", "4"},
    {"delivery.retry_schedule", "5m, 10m, 30m, 1h, 2h, 4h"},
    {"delivery.max_queue_age", "5d"},
    {"delivery.tls", "may"},
    {"delivery.route_auth_file", ""},
    {"delivery.lease_time", "2m"},
    {"delivery.delay_warning", "4h"},
    {"dns.servers", ""},
    {"dns.timeout", "5s"},
    {"reverse.accept_source", "true"},
    {"reverse.use_source", "true"},
    {"reverse.poll_interval", "30s"},
    {"reverse.pending_max_age", "48h"},
    {"reverse.pickup_max_age", "5d"},
    {"reverse.retain_after_fetch", "24h"},
    {"reverse.unverified_policy", "accept"},
    {"reverse.trusted_peers", ""},
    {"reverse.max_unknown_tokens", "5"},
    {"reverse.max_pending_per_domain", "1000"},
    {"reverse.max_pending_per_client", "100"},
};

TEST(KeyTable, HoldsExactlyTheBindingKeysWithTheirDefaults) {
  std::vector<std::pair<std::string, std::string>> table_keys;
  for (const auto& spec : table::keys()) {
    table_keys.emplace_back(std::string(spec.section) + "." + std::string(spec.key),
                            std::string(spec.default_text));
  }
  EXPECT_EQ(table_keys, binding_keys);
}

TEST(KeyTable, EverySectionIsDeclaredAndHasKeys) {
  std::set<std::string_view> with_keys;
  for (const auto& spec : table::keys()) {
    EXPECT_NE(table::find_section(spec.section), nullptr) << spec.section;
    with_keys.insert(spec.section);
  }
  for (const auto& section : table::sections())
    EXPECT_TRUE(with_keys.count(section.name)) << section.name;
}

TEST(KeyTable, EveryEntryHasHelpAndAStore) {
  for (const auto& spec : table::keys()) {
    EXPECT_FALSE(spec.help.empty()) << spec.key;
    EXPECT_TRUE(spec.store.write && spec.store.same) << spec.key;
  }
}

TEST(Defaults, EmptyFileEqualsTheTable) {
  EXPECT_EQ(parse("", "x.conf", "/etc/maild"), table::defaults());
}

// Code that builds Settings{} directly must see the same values as an empty file.
TEST(Defaults, SettingsStructAgreesWithTheTable) {
  Settings expected;
  expected.smtp.relay_networks = {*parse_network("127.0.0.0/8"), *parse_network("::1/128")};
  expected.pop3.plaintext_networks = {*parse_network("127.0.0.0/8"), *parse_network("::1/128")};
  expected.delivery.retry_schedule = {5min, 10min, 30min, 1h, 2h, 4h};
  EXPECT_EQ(table::defaults(), expected);
}

TEST(Defaults, SpotChecks) {
  const auto settings = parse("", "x.conf", "/etc/maild");
  EXPECT_EQ(settings.server.shutdown_grace, 30s);
  EXPECT_EQ(settings.pop3.idle_timeout, 10min);
  EXPECT_EQ(settings.smtp.max_message_size, 35_MiB);
  EXPECT_EQ(settings.delivery.max_queue_age, std::chrono::days{5});
  EXPECT_EQ(settings.reverse.pending_max_age, 48h);
  EXPECT_EQ(settings.mysql.endpoints, (std::vector<Endpoint>{{"127.0.0.1", 3306}}));
  EXPECT_EQ(settings.store.path, "/var/lib/maild/mail.db");
  EXPECT_TRUE(settings.dns.servers.empty());
  EXPECT_TRUE(settings.delivery.routes.empty());
}

TEST(Defaults, WritingEveryDefaultExplicitlyChangesNothing) {
  std::string text;
  for (const auto& spec : table::keys()) {
    text += "[" + std::string(spec.section) + "]\n" + std::string(spec.key) + " = " +
            std::string(spec.default_text) + "\n";
  }
  EXPECT_EQ(parse(text, "x.conf", "/etc/maild"), table::defaults());
}

// One non-default value per key, each checked in the field it must land in.
TEST(KeyTable, EveryKeyLandsInItsField) {
  const auto s = parse(R"([server]
hostname = mx.example.org
threads = 3
user = mail
pid_file = run/maild.pid
max_connections = 11
max_connections_per_ip = 12
listen_backlog = 13
shutdown_grace = 14s
[log]
level = warn
file = log/maild.log
[store]
backend = mysql
path = db/mail.db
workers = 15
[mysql]
endpoints = db:3307
user = u
password = p
password_file = secret
database = d
semi_sync = false
[tls]
cert = c.pem
key = k.pem
[smtp]
listen = 127.0.0.1:2525
submission = 127.0.0.1:2587
submissions = 127.0.0.1:2465
max_message_size = 1M
max_recipients = 16
max_errors = 17
relay_networks = 10.0.0.0/8
require_tls_for_auth = false
command_timeout = 18s
data_timeout = 19s
bare_newline = reject
max_auth_failures = 3
received_auth_user = true
[pop3]
listen = 127.0.0.1:2110
pop3s = 127.0.0.1:2995
plaintext_networks = 192.0.2.0/24
max_auth_failures = 20
idle_timeout = 21s
[delivery]
workers = 22
smtp_port = 2525
bind_address = 192.0.2.1
routes = * = relay:25
per_destination = 23
retry_schedule = 24s
max_queue_age = 25s
tls = encrypt
[dns]
servers = 127.0.0.1:5353
timeout = 26s
[reverse]
accept_source = false
use_source = false
poll_interval = 27s
pending_max_age = 28s
pickup_max_age = 29s
retain_after_fetch = 30s
unverified_policy = reject
trusted_peers = 192.0.2.9
max_unknown_tokens = 31
max_pending_per_domain = 32
max_pending_per_client = 33
)",
                       "x.conf", "/etc/maild");
  EXPECT_EQ(s.server.hostname, "mx.example.org");
  EXPECT_EQ(s.server.threads, 3U);
  EXPECT_EQ(s.server.user, "mail");
  EXPECT_EQ(s.server.pid_file, "/etc/maild/run/maild.pid");
  EXPECT_EQ(s.server.max_connections, 11U);
  EXPECT_EQ(s.server.max_connections_per_ip, 12U);
  EXPECT_EQ(s.server.listen_backlog, 13U);
  EXPECT_EQ(s.server.shutdown_grace, 14s);
  EXPECT_EQ(s.log.level, LogLevel::warn);
  EXPECT_EQ(s.log.file, "/etc/maild/log/maild.log");
  EXPECT_EQ(s.store.backend, StoreBackend::mysql);
  EXPECT_EQ(s.store.path, "/etc/maild/db/mail.db");
  EXPECT_EQ(s.store.workers, 15U);
  EXPECT_EQ(s.mysql.endpoints, (std::vector<Endpoint>{{"db", 3307}}));
  EXPECT_EQ(s.mysql.user, "u");
  EXPECT_EQ(s.mysql.password, "p");
  EXPECT_EQ(s.mysql.password_file, "/etc/maild/secret");
  EXPECT_EQ(s.mysql.database, "d");
  EXPECT_FALSE(s.mysql.semi_sync);
  EXPECT_EQ(s.tls.cert, "/etc/maild/c.pem");
  EXPECT_EQ(s.tls.key, "/etc/maild/k.pem");
  EXPECT_EQ(s.smtp.listen, (std::vector<Endpoint>{{"127.0.0.1", 2525}}));
  EXPECT_EQ(s.smtp.submission, (std::vector<Endpoint>{{"127.0.0.1", 2587}}));
  EXPECT_EQ(s.smtp.submissions, (std::vector<Endpoint>{{"127.0.0.1", 2465}}));
  EXPECT_EQ(s.smtp.max_message_size, 1_MiB);
  EXPECT_EQ(s.smtp.max_recipients, 16U);
  EXPECT_EQ(s.smtp.max_errors, 17U);
  EXPECT_EQ(s.smtp.relay_networks, (std::vector<Network>{*parse_network("10.0.0.0/8")}));
  EXPECT_FALSE(s.smtp.require_tls_for_auth);
  EXPECT_EQ(s.smtp.command_timeout, 18s);
  EXPECT_EQ(s.smtp.data_timeout, 19s);
  EXPECT_EQ(s.smtp.bare_newline, BareNewlinePolicy::reject);
  EXPECT_EQ(s.smtp.max_auth_failures, 3U);
  EXPECT_TRUE(s.smtp.received_auth_user);
  EXPECT_EQ(s.pop3.listen, (std::vector<Endpoint>{{"127.0.0.1", 2110}}));
  EXPECT_EQ(s.pop3.pop3s, (std::vector<Endpoint>{{"127.0.0.1", 2995}}));
  EXPECT_EQ(s.pop3.plaintext_networks, (std::vector<Network>{*parse_network("192.0.2.0/24")}));
  EXPECT_EQ(s.pop3.max_auth_failures, 20U);
  EXPECT_EQ(s.pop3.idle_timeout, 21s);
  EXPECT_EQ(s.delivery.workers, 22U);
  EXPECT_EQ(s.delivery.smtp_port, 2525);
  EXPECT_EQ(s.delivery.bind_address, "192.0.2.1");
  EXPECT_EQ(s.delivery.routes, (std::vector<Route>{{"*", {"relay", 25}}}));
  EXPECT_EQ(s.delivery.per_destination, 23U);
  EXPECT_EQ(s.delivery.retry_schedule, (std::vector<Seconds>{24s}));
  EXPECT_EQ(s.delivery.max_queue_age, 25s);
  EXPECT_EQ(s.delivery.tls, TlsPolicy::encrypt);
  EXPECT_EQ(s.dns.servers, (std::vector<Endpoint>{{"127.0.0.1", 5353}}));
  EXPECT_EQ(s.dns.timeout, 26s);
  EXPECT_FALSE(s.reverse.accept_source);
  EXPECT_FALSE(s.reverse.use_source);
  EXPECT_EQ(s.reverse.poll_interval, 27s);
  EXPECT_EQ(s.reverse.pending_max_age, 28s);
  EXPECT_EQ(s.reverse.pickup_max_age, 29s);
  EXPECT_EQ(s.reverse.retain_after_fetch, 30s);
  EXPECT_EQ(s.reverse.unverified_policy, UnverifiedPolicy::reject);
  EXPECT_EQ(s.reverse.trusted_peers, (std::vector<Network>{*parse_network("192.0.2.9")}));
  EXPECT_EQ(s.reverse.max_unknown_tokens, 31U);
  EXPECT_EQ(s.reverse.max_pending_per_domain, 32U);
  EXPECT_EQ(s.reverse.max_pending_per_client, 33U);
}

// The sample is the defaults, except the service user a package runs as.
TEST(Render, SampleConfigParsesBackToTheDefaultsAndTheServiceUser) {
  auto expected = table::defaults();
  expected.server.user = "maild";
  EXPECT_EQ(parse(render_sample_config(), "mail.conf", "/etc/maild"), expected);
  EXPECT_NE(render_sample_config().find("# Default: (empty)\nuser = maild\n"), std::string::npos);
}

TEST(ChangedKeys, NamesEveryKeyThatDiffersInTableOrder) {
  const auto running = table::defaults();
  EXPECT_TRUE(changed_keys(running, running).empty());
  auto fresh = running;
  fresh.smtp.max_recipients = 7;
  fresh.server.user = "nobody";
  fresh.log.level = LogLevel::debug;
  EXPECT_EQ(changed_keys(running, fresh),
            (std::vector<std::string>{"server.user", "log.level", "smtp.max_recipients"}));
}

TEST(ChangedKeys, ParsedFilesAreComparedKeyByKey) {
  // A file that moves keys away from their defaults reports exactly those keys.
  const auto running = table::defaults();
  const auto fresh = parse("[tls]\ncert = /x.pem\n[delivery]\ntls = encrypt\n", "m.conf", "/");
  EXPECT_EQ(changed_keys(running, fresh), (std::vector<std::string>{"tls.cert", "delivery.tls"}));
}

TEST(Render, SampleConfigShowsEveryKeyWithItsHelp) {
  const auto sample = render_sample_config();
  for (const auto& section : table::sections()) {
    EXPECT_NE(sample.find("\n[" + std::string(section.name) + "]\n"), std::string::npos)
        << section.name;
  }
  for (const auto& spec : table::keys()) {
    const auto value = spec.section == "server" && spec.key == "user" ? std::string_view("maild")
                                                                      : spec.default_text;
    const std::string line = "\n" + std::string(spec.key) + " =" +
                             (value.empty() ? "" : " " + std::string(value)) + "\n";
    EXPECT_NE(sample.find(line), std::string::npos) << spec.key;
    EXPECT_NE(sample.find("# " + std::string(spec.help)), std::string::npos) << spec.key;
  }
}

TEST(Render, ReferenceHasARowPerKeyAndATablePerSection) {
  const auto reference = render_reference_markdown();
  for (const auto& section : table::sections()) {
    EXPECT_NE(reference.find("### [" + std::string(section.name) + "]\n"), std::string::npos)
        << section.name;
  }
  for (const auto& spec : table::keys()) {
    EXPECT_NE(reference.find("| `" + std::string(spec.key) + "` |"), std::string::npos) << spec.key;
  }
  EXPECT_NE(
      reference.find("| `threads` | whole number | `0` | 0..256 | I/O threads; 0 = one per core |"),
      std::string::npos);
  EXPECT_NE(reference.find("| `max_message_size` | size (bytes, K, M, G) | `35M` | 1K..2G |"),
            std::string::npos);
  EXPECT_NE(reference.find("| `hostname` | text | (empty) | - |"), std::string::npos);
}

TEST(Render, FormatsUnitsInTheLargestExactUnit) {
  EXPECT_EQ(table::format_duration(30s), "30s");
  EXPECT_EQ(table::format_duration(90s), "90s");
  EXPECT_EQ(table::format_duration(5min), "5m");
  EXPECT_EQ(table::format_duration(48h), "2d");
  EXPECT_EQ(table::format_duration(0s), "0s");
  EXPECT_EQ(table::format_size(ByteSize{100}), "100");
  EXPECT_EQ(table::format_size(512_KiB), "512K");
  EXPECT_EQ(table::format_size(35_MiB), "35M");
  EXPECT_EQ(table::format_size(2048_MiB), "2G");
  EXPECT_EQ(table::format_size(ByteSize{0}), "0");
}

}  // namespace
}  // namespace maild::config
