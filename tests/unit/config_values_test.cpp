// Every value type of mail.conf: good values, bad values, every unit, bounds at and past the edge.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "maild/config/load.hpp"

namespace maild::config {
namespace {

using namespace std::chrono_literals;

// What one value should become: a check on the parsed settings, or the exact refusal reason.
using Outcome = std::variant<std::function<bool(const Settings&)>, std::string_view>;

struct ValueCase {
  std::string_view section;
  std::string_view key;
  std::string_view value;
  Outcome outcome;
};

std::ostream& operator<<(std::ostream& out, const ValueCase& c) {
  return out << "[" << c.section << "] " << c.key << " = " << c.value;
}

// Builds a check that one field holds `expected`.
template <typename Get, typename T>
std::function<bool(const Settings&)> yields(Get get, T expected) {
  return [get, expected](const Settings& settings) { return get(settings) == expected; };
}

std::string_view refused(std::string_view reason) { return reason; }

class Value : public testing::TestWithParam<ValueCase> {};

TEST_P(Value, ParsesOrIsRefusedWithItsReason) {
  const auto& c = GetParam();
  const std::string text = "[" + std::string(c.section) + "]\n" + std::string(c.key) + " = " +
                           std::string(c.value) + "\n";
  const std::string full_key = std::string(c.section) + "." + std::string(c.key);
  if (const auto* check = std::get_if<std::function<bool(const Settings&)>>(&c.outcome)) {
    EXPECT_TRUE((*check)(parse(text, "v.conf", "/etc/maild")));
    return;
  }
  const auto reason = std::get<std::string_view>(c.outcome);
  try {
    parse(text, "v.conf", "/etc/maild");
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.reason, reason);
    EXPECT_EQ(std::string(error.what()), "v.conf:2: " + full_key + ": " + std::string(reason));
  }
}

constexpr auto command_timeout = [](const Settings& s) { return s.smtp.command_timeout; };
constexpr auto max_queue_age = [](const Settings& s) { return s.delivery.max_queue_age; };

INSTANTIATE_TEST_SUITE_P(
    Duration, Value,
    testing::Values(
        ValueCase{"smtp", "command_timeout", "30s", yields(command_timeout, Seconds{30})},
        ValueCase{"smtp", "command_timeout", "5m", yields(command_timeout, Seconds{5min})},
        ValueCase{"smtp", "command_timeout", "1h", yields(command_timeout, Seconds{1h})},
        ValueCase{"smtp", "command_timeout", "1s", yields(command_timeout, Seconds{1})},
        ValueCase{"smtp", "command_timeout", "3600s", yields(command_timeout, Seconds{1h})},
        ValueCase{"smtp", "command_timeout", "60m", yields(command_timeout, Seconds{1h})},
        ValueCase{"smtp", "command_timeout", "007s", yields(command_timeout, Seconds{7})},
        ValueCase{"smtp", "command_timeout", "3601s", refused("3601s is out of bounds (1s..1h)")},
        ValueCase{"smtp", "command_timeout", "2h", refused("2h is out of bounds (1s..1h)")},
        ValueCase{"smtp", "command_timeout", "0s", refused("0s is out of bounds (1s..1h)")},
        ValueCase{"smtp", "command_timeout", "99999999999999999999d",
                  refused("99999999999999999999d is out of bounds (1s..1h)")},
        ValueCase{"smtp", "command_timeout", "9999999999999999h",
                  refused("9999999999999999h is out of bounds (1s..1h)")},
        ValueCase{"smtp", "command_timeout", "30",
                  refused("\"30\" has no unit; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "30x",
            refused("\"30x\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "5M",
            refused("\"5M\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "s",
            refused("\"s\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "-5s",
            refused("\"-5s\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "1.5h",
            refused("\"1.5h\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "30 s",
            refused("\"30 s\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{
            "smtp", "command_timeout", "1h30m",
            refused(
                "\"1h30m\" is not a duration; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{"smtp", "command_timeout", "", refused("needs a value")},
        ValueCase{"delivery", "max_queue_age", "5d",
                  yields(max_queue_age, Seconds{std::chrono::days{5}})},
        ValueCase{"delivery", "max_queue_age", "90d",
                  yields(max_queue_age, Seconds{std::chrono::days{90}})},
        ValueCase{"delivery", "max_queue_age", "91d", refused("91d is out of bounds (1s..90d)")},
        ValueCase{"server", "shutdown_grace", "0s", refused("0s is out of bounds (1s..1h)")},
        ValueCase{"pop3", "idle_timeout", "25h", refused("25h is out of bounds (1s..1d)")},
        ValueCase{"dns", "timeout", "300s",
                  yields([](const Settings& s) { return s.dns.timeout; }, Seconds{5min})}));

constexpr auto max_message_size = [](const Settings& s) { return s.smtp.max_message_size; };

INSTANTIATE_TEST_SUITE_P(
    Size, Value,
    testing::Values(
        ValueCase{"smtp", "max_message_size", "35M", yields(max_message_size, 35_MiB)},
        ValueCase{"smtp", "max_message_size", "512K", yields(max_message_size, 512_KiB)},
        ValueCase{"smtp", "max_message_size", "2G", yields(max_message_size, 2048_MiB)},
        ValueCase{"smtp", "max_message_size", "1K", yields(max_message_size, 1_KiB)},
        ValueCase{"smtp", "max_message_size", "1024", yields(max_message_size, 1_KiB)},
        ValueCase{"smtp", "max_message_size", "1000000",
                  yields(max_message_size, ByteSize{1000000})},
        ValueCase{"smtp", "max_message_size", "2147483648", yields(max_message_size, 2048_MiB)},
        ValueCase{"smtp", "max_message_size", "1023", refused("1023 is out of bounds (1K..2G)")},
        ValueCase{"smtp", "max_message_size", "0K", refused("0K is out of bounds (1K..2G)")},
        ValueCase{"smtp", "max_message_size", "2049M", refused("2049M is out of bounds (1K..2G)")},
        ValueCase{"smtp", "max_message_size", "2147483649",
                  refused("2147483649 is out of bounds (1K..2G)")},
        ValueCase{"smtp", "max_message_size", "99999999999999999999G",
                  refused("99999999999999999999G is out of bounds (1K..2G)")},
        ValueCase{"smtp", "max_message_size", "35MB",
                  refused("\"35MB\" is not a size; use a whole number of bytes, or with K, M or G "
                          "(e.g. 35M)")},
        ValueCase{"smtp", "max_message_size", "35m",
                  refused("\"35m\" is not a size; use a whole number of bytes, or with K, M or G "
                          "(e.g. 35M)")},
        ValueCase{
            "smtp", "max_message_size", "M",
            refused(
                "\"M\" is not a size; use a whole number of bytes, or with K, M or G (e.g. 35M)")},
        ValueCase{"smtp", "max_message_size", "-1K",
                  refused("\"-1K\" is not a size; use a whole number of bytes, or with K, M or G "
                          "(e.g. 35M)")},
        ValueCase{"smtp", "max_message_size", "", refused("needs a value")}));

constexpr auto semi_sync = [](const Settings& s) { return s.mysql.semi_sync; };

INSTANTIATE_TEST_SUITE_P(
    Bool, Value,
    testing::Values(
        ValueCase{"mysql", "semi_sync", "true", yields(semi_sync, true)},
        ValueCase{"mysql", "semi_sync", "yes", yields(semi_sync, true)},
        ValueCase{"mysql", "semi_sync", "on", yields(semi_sync, true)},
        ValueCase{"mysql", "semi_sync", "1", yields(semi_sync, true)},
        ValueCase{"mysql", "semi_sync", "false", yields(semi_sync, false)},
        ValueCase{"mysql", "semi_sync", "no", yields(semi_sync, false)},
        ValueCase{"mysql", "semi_sync", "off", yields(semi_sync, false)},
        ValueCase{"mysql", "semi_sync", "0", yields(semi_sync, false)},
        ValueCase{"reverse", "use_source", "no",
                  yields([](const Settings& s) { return s.reverse.use_source; }, false)},
        ValueCase{"mysql", "semi_sync", "True",
                  refused("\"True\" is not a boolean; use true/false, yes/no, on/off or 1/0")},
        ValueCase{"mysql", "semi_sync", "maybe",
                  refused("\"maybe\" is not a boolean; use true/false, yes/no, on/off or 1/0")},
        ValueCase{"mysql", "semi_sync", "2",
                  refused("\"2\" is not a boolean; use true/false, yes/no, on/off or 1/0")},
        ValueCase{"mysql", "semi_sync", "", refused("needs a value")}));

constexpr auto threads = [](const Settings& s) { return s.server.threads; };
constexpr auto max_connections = [](const Settings& s) { return s.server.max_connections; };
constexpr auto smtp_port = [](const Settings& s) { return s.delivery.smtp_port; };

INSTANTIATE_TEST_SUITE_P(
    Count, Value,
    testing::Values(
        ValueCase{"server", "threads", "0", yields(threads, 0U)},
        ValueCase{"server", "threads", "256", yields(threads, 256U)},
        ValueCase{"server", "threads", "257", refused("257 is out of bounds (0..256)")},
        ValueCase{"server", "threads", "-1", refused("\"-1\" is not a whole number")},
        ValueCase{"server", "threads", "+4", refused("\"+4\" is not a whole number")},
        ValueCase{"server", "threads", "4.0", refused("\"4.0\" is not a whole number")},
        ValueCase{"server", "threads", "4 threads", refused("\"4 threads\" is not a whole number")},
        ValueCase{"server", "threads", "", refused("needs a value")},
        ValueCase{"server", "threads", "99999999999999999999999",
                  refused("99999999999999999999999 is out of bounds (0..256)")},
        ValueCase{"server", "max_connections", "1", yields(max_connections, 1U)},
        ValueCase{"server", "max_connections", "1000000", yields(max_connections, 1000000U)},
        ValueCase{"server", "max_connections", "0", refused("0 is out of bounds (1..1000000)")},
        ValueCase{"server", "max_connections", "1000001",
                  refused("1000001 is out of bounds (1..1000000)")},
        ValueCase{"server", "listen_backlog", "65536",
                  refused("65536 is out of bounds (1..65535)")},
        ValueCase{"store", "workers", "0", refused("0 is out of bounds (1..256)")},
        ValueCase{"smtp", "max_recipients", "100001",
                  refused("100001 is out of bounds (1..100000)")},
        ValueCase{"smtp", "max_hops", "1",
                  yields([](const Settings& s) { return s.smtp.max_hops; }, 1U)},
        ValueCase{"smtp", "max_hops", "1000",
                  yields([](const Settings& s) { return s.smtp.max_hops; }, 1000U)},
        ValueCase{"smtp", "max_hops", "0", refused("0 is out of bounds (1..1000)")},
        ValueCase{"smtp", "max_hops", "1001", refused("1001 is out of bounds (1..1000)")},
        ValueCase{"delivery", "smtp_port", "2525", yields(smtp_port, std::uint16_t{2525})},
        ValueCase{"delivery", "smtp_port", "1", yields(smtp_port, std::uint16_t{1})},
        ValueCase{"delivery", "smtp_port", "65535", yields(smtp_port, std::uint16_t{65535})},
        ValueCase{"delivery", "smtp_port", "0", refused("0 is out of bounds (1..65535)")},
        ValueCase{"delivery", "smtp_port", "65536", refused("65536 is out of bounds (1..65535)")},
        ValueCase{"delivery", "smtp_port", "smtp", refused("\"smtp\" is not a whole number")}));

INSTANTIATE_TEST_SUITE_P(
    Enum, Value,
    testing::Values(
        ValueCase{"log", "level", "trace",
                  yields([](const Settings& s) { return s.log.level; }, LogLevel::trace)},
        ValueCase{"log", "level", "debug",
                  yields([](const Settings& s) { return s.log.level; }, LogLevel::debug)},
        ValueCase{"log", "level", "info",
                  yields([](const Settings& s) { return s.log.level; }, LogLevel::info)},
        ValueCase{"log", "level", "warn",
                  yields([](const Settings& s) { return s.log.level; }, LogLevel::warn)},
        ValueCase{"log", "level", "error",
                  yields([](const Settings& s) { return s.log.level; }, LogLevel::error)},
        ValueCase{"log", "level", "verbose",
                  refused("\"verbose\" is not one of: trace, debug, info, warn, error")},
        ValueCase{"log", "level", "INFO",
                  refused("\"INFO\" is not one of: trace, debug, info, warn, error")},
        ValueCase{"log", "level", "", refused("needs a value")},
        ValueCase{"store", "backend", "mysql",
                  yields([](const Settings& s) { return s.store.backend; }, StoreBackend::mysql)},
        ValueCase{"store", "backend", "sqlite",
                  yields([](const Settings& s) { return s.store.backend; }, StoreBackend::sqlite)},
        ValueCase{"store", "backend", "postgres",
                  refused("\"postgres\" is not one of: sqlite, mysql")},
        ValueCase{"delivery", "tls", "encrypt",
                  yields([](const Settings& s) { return s.delivery.tls; }, TlsPolicy::encrypt)},
        ValueCase{"delivery", "tls", "may",
                  yields([](const Settings& s) { return s.delivery.tls; }, TlsPolicy::may)},
        ValueCase{"delivery", "tls", "dane", refused("\"dane\" is not one of: may, encrypt")},
        ValueCase{"reverse", "unverified_policy", "tag",
                  yields([](const Settings& s) { return s.reverse.unverified_policy; },
                         UnverifiedPolicy::tag)},
        ValueCase{"reverse", "unverified_policy", "reject",
                  yields([](const Settings& s) { return s.reverse.unverified_policy; },
                         UnverifiedPolicy::reject)},
        ValueCase{"reverse", "unverified_policy", "accept",
                  yields([](const Settings& s) { return s.reverse.unverified_policy; },
                         UnverifiedPolicy::accept)},
        ValueCase{"reverse", "unverified_policy", "drop",
                  refused("\"drop\" is not one of: accept, tag, reject")}));

constexpr auto smtp_listen = [](const Settings& s) { return s.smtp.listen; };
using Endpoints = std::vector<Endpoint>;

INSTANTIATE_TEST_SUITE_P(
    EndpointList, Value,
    testing::Values(
        ValueCase{"smtp", "listen", "", yields(smtp_listen, Endpoints{})},
        ValueCase{"smtp", "listen", "127.0.0.1:2525",
                  yields(smtp_listen, Endpoints{{"127.0.0.1", 2525}})},
        ValueCase{"smtp", "listen", "0.0.0.0:25,[::]:25 , 127.0.0.2:2525",
                  yields(smtp_listen, Endpoints{{"0.0.0.0", 25}, {"::", 25}, {"127.0.0.2", 2525}})},
        ValueCase{"smtp", "listen", "localhost:2525",
                  refused("\"localhost:2525\" needs an IP address, not a name")},
        ValueCase{"dns", "servers", "ns.example:53",
                  refused("\"ns.example:53\" needs an IP address, not a name")},
        ValueCase{"smtp", "listen", "0.0.0.0",
                  refused("\"0.0.0.0\" is not host:port or [IPv6 address]:port")},
        ValueCase{"smtp", "listen", "::1:25",
                  refused("\"::1:25\" is not host:port or [IPv6 address]:port")},
        ValueCase{"smtp", "listen", "host:0",
                  refused("\"host:0\" is not host:port or [IPv6 address]:port")},
        ValueCase{"smtp", "listen", "a:1,,b:2", refused("empty item in the list \"a:1,,b:2\"")},
        ValueCase{"smtp", "listen", "a:1,", refused("empty item in the list \"a:1,\"")},
        ValueCase{"pop3", "pop3s", "",
                  yields([](const Settings& s) { return s.pop3.pop3s; }, Endpoints{})},
        ValueCase{"dns", "servers", "127.0.0.1:5353",
                  yields([](const Settings& s) { return s.dns.servers; },
                         Endpoints{{"127.0.0.1", 5353}})},
        ValueCase{"mysql", "endpoints", "db1:3306, db2:3307",
                  yields([](const Settings& s) { return s.mysql.endpoints; },
                         Endpoints{{"db1", 3306}, {"db2", 3307}})},
        ValueCase{"mysql", "endpoints", "", refused("needs at least one host:port")}));

constexpr auto relay_networks = [](const Settings& s) { return s.smtp.relay_networks; };

INSTANTIATE_TEST_SUITE_P(
    NetworkList, Value,
    testing::Values(
        ValueCase{"smtp", "relay_networks", "", yields(relay_networks, std::vector<Network>{})},
        ValueCase{"smtp", "relay_networks", "10.0.0.0/8, 2001:db8::/32,192.0.2.1",
                  yields(relay_networks, std::vector<Network>{*parse_network("10.0.0.0/8"),
                                                              *parse_network("2001:db8::/32"),
                                                              *parse_network("192.0.2.1")})},
        ValueCase{"smtp", "relay_networks", "10.0.0.0/33",
                  refused("\"10.0.0.0/33\" is not an address or address/prefix")},
        ValueCase{"smtp", "relay_networks", "localhost",
                  refused("\"localhost\" is not an address or address/prefix")},
        ValueCase{"reverse", "trusted_peers", "192.0.2.25",
                  yields([](const Settings& s) { return s.reverse.trusted_peers; },
                         std::vector<Network>{*parse_network("192.0.2.25/32")})}));

constexpr auto retry_schedule = [](const Settings& s) { return s.delivery.retry_schedule; };

INSTANTIATE_TEST_SUITE_P(
    DurationList, Value,
    testing::Values(
        ValueCase{"delivery", "retry_schedule", "1m",
                  yields(retry_schedule, std::vector<Seconds>{1min})},
        ValueCase{"delivery", "retry_schedule", "1s, 1h,7d",
                  yields(retry_schedule, std::vector<Seconds>{1s, 1h, std::chrono::days{7}})},
        ValueCase{"delivery", "retry_schedule", "", refused("needs at least one duration")},
        ValueCase{"delivery", "retry_schedule", "1m, 8d", refused("8d is out of bounds (1s..7d)")},
        ValueCase{"delivery", "retry_schedule", "1m, 0s", refused("0s is out of bounds (1s..7d)")},
        ValueCase{"delivery", "retry_schedule", "1m, 5",
                  refused("\"5\" has no unit; use a whole number with s, m, h or d (e.g. 30s)")},
        ValueCase{"delivery", "retry_schedule", "1m,", refused("empty item in the list \"1m,\"")}));

constexpr auto routes = [](const Settings& s) { return s.delivery.routes; };

INSTANTIATE_TEST_SUITE_P(
    RouteList, Value,
    testing::Values(
        ValueCase{"delivery", "routes", "", yields(routes, std::vector<Route>{})},
        ValueCase{"delivery", "routes", "example.org = 127.0.0.2:2526, * = smarthost.example:587",
                  yields(routes, std::vector<Route>{{"example.org", {"127.0.0.2", 2526}},
                                                    {"*", {"smarthost.example", 587}}})},
        ValueCase{"delivery", "routes", "Example.ORG=[::1]:25",
                  yields(routes, std::vector<Route>{{"example.org", {"::1", 25}}})},
        ValueCase{"delivery", "routes", "example.org = h:25 # comment",
                  yields(routes, std::vector<Route>{{"example.org", {"h", 25}}})},
        ValueCase{"delivery", "routes", "example.org",
                  refused("\"example.org\" is not domain = host:port")},
        ValueCase{"delivery", "routes", "= h:25", refused("\"= h:25\" is not domain = host:port")},
        ValueCase{"delivery", "routes", "a b = h:25",
                  refused("\"a b = h:25\" is not domain = host:port")},
        ValueCase{"delivery", "routes", "example.org = host",
                  refused("\"host\" is not host:port or [IPv6 address]:port")},
        ValueCase{"delivery", "routes", "a = h:1, A = h:2",
                  refused("route for \"a\" given twice")}));

constexpr auto bind_address = [](const Settings& s) { return s.delivery.bind_address; };

INSTANTIATE_TEST_SUITE_P(
    AddressStringAndPath, Value,
    testing::Values(
        ValueCase{"delivery", "bind_address", "", yields(bind_address, std::string())},
        ValueCase{"delivery", "bind_address", "192.0.2.1",
                  yields(bind_address, std::string("192.0.2.1"))},
        ValueCase{"delivery", "bind_address", "2001:db8::1",
                  yields(bind_address, std::string("2001:db8::1"))},
        ValueCase{"delivery", "bind_address", "mx.example.org",
                  refused("\"mx.example.org\" is not an IP address")},
        ValueCase{"smtp", "postmaster", "",
                  yields([](const Settings& s) { return s.smtp.postmaster; }, std::string())},
        ValueCase{"smtp", "postmaster", "hostmaster@example.org",
                  yields([](const Settings& s) { return s.smtp.postmaster; },
                         std::string("hostmaster@example.org"))},
        ValueCase{"smtp", "postmaster", "postmaster",
                  refused("\"postmaster\" is not a mail address local@domain")},
        ValueCase{"smtp", "postmaster", "<a@example.org>",
                  refused("\"<a@example.org>\" is not a mail address local@domain")},
        ValueCase{"smtp", "postmaster", "a@b@example.org",
                  refused("\"a@b@example.org\" is not a mail address local@domain")},
        ValueCase{"smtp", "postmaster", "a@", refused("\"a@\" is not a mail address local@domain")},
        ValueCase{"smtp", "postmaster", "a b@example.org",
                  refused("\"a b@example.org\" is not a mail address local@domain")},
        ValueCase{"server", "hostname", "mx.example.org",
                  yields([](const Settings& s) { return s.server.hostname; },
                         std::string("mx.example.org"))},
        ValueCase{
            "mysql", "password", "p@ss w;rd#1",
            yields([](const Settings& s) { return s.mysql.password; }, std::string("p@ss w;rd#1"))},
        ValueCase{"store", "path", "data/mail.db",
                  yields([](const Settings& s) { return s.store.path; },
                         std::filesystem::path("/etc/maild/data/mail.db"))},
        ValueCase{"store", "path", "../mail.db",
                  yields([](const Settings& s) { return s.store.path; },
                         std::filesystem::path("/etc/mail.db"))},
        ValueCase{"store", "path", "/var/mail.db",
                  yields([](const Settings& s) { return s.store.path; },
                         std::filesystem::path("/var/mail.db"))},
        ValueCase{"log", "file", "",
                  yields([](const Settings& s) { return s.log.file; }, std::filesystem::path())}));

}  // namespace
}  // namespace maild::config
