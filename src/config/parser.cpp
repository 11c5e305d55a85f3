// Turns mail.conf text into Settings, checking every line against the key table.
// Trust: the text is the administrator's but may be anything; the first problem stops the load.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>

#include "config/settings_table.hpp"
#include "maild/config/load.hpp"

namespace maild::config {

namespace {

using table::InvalidValue;
using table::KeySpec;
using table::Value;

std::string describe(const std::string& file, unsigned line, const std::string& key,
                     const std::string& reason) {
  std::string location = file;
  if (line != 0) location += ":" + std::to_string(line);
  std::string text = location.empty() ? std::string() : location + ": ";
  if (!key.empty()) text += key + ": ";
  return text + reason;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// A comment starts at ';' or '#' after whitespace, so "password = a;b" keeps "a;b".
std::string_view strip_inline_comment(std::string_view text) {
  for (std::size_t i = 1; i < text.size(); ++i) {
    if ((text[i] == ';' || text[i] == '#') && is_space(text[i - 1])) return text.substr(0, i);
  }
  return text;
}

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits only; a number too large for 64 bits saturates, so the bounds check refuses it.
std::optional<std::uint64_t> parse_whole(std::string_view text) {
  if (!all_digits(text)) return std::nullopt;
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::uint64_t>::max();
  return value;
}

std::uint64_t saturating_multiply(std::uint64_t value, std::uint64_t factor) {
  if (value > std::numeric_limits<std::uint64_t>::max() / factor)
    return std::numeric_limits<std::uint64_t>::max();
  return value * factor;
}

void require_value(std::string_view text) {
  if (text.empty()) throw InvalidValue("needs a value");
}

std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  if (text.empty()) return items;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const auto item = trim(rest.substr(0, comma));
    if (item.empty()) throw InvalidValue("empty item in the list " + in_quotes(text));
    items.push_back(item);
    if (comma == std::string_view::npos) return items;
    rest.remove_prefix(comma + 1);
  }
}

unsigned parse_count(const table::CountType& type, std::string_view text) {
  require_value(text);
  const auto value = parse_whole(text);
  if (!value) throw InvalidValue(in_quotes(text) + " is not a whole number");
  if (*value < type.min || *value > type.max) {
    throw InvalidValue(std::string(text) + " is out of bounds (" + std::to_string(type.min) + ".." +
                       std::to_string(type.max) + ")");
  }
  return static_cast<unsigned>(*value);
}

std::uint16_t parse_port(std::string_view text) {
  return static_cast<std::uint16_t>(parse_count(table::port_bounds, text));
}

Seconds parse_duration(std::string_view text, Seconds min, Seconds max) {
  constexpr std::string_view units_hint = "use a whole number with s, m, h or d (e.g. 30s)";
  require_value(text);
  if (all_digits(text))
    throw InvalidValue(in_quotes(text) + " has no unit; " + std::string(units_hint));
  const auto count = parse_whole(text.substr(0, text.size() - 1));
  Seconds unit{0};
  switch (text.back()) {
    case 's':
      unit = std::chrono::seconds{1};
      break;
    case 'm':
      unit = std::chrono::minutes{1};
      break;
    case 'h':
      unit = std::chrono::hours{1};
      break;
    case 'd':
      unit = std::chrono::days{1};
      break;
    default:
      break;
  }
  if (!count || unit == Seconds{0})
    throw InvalidValue(in_quotes(text) + " is not a duration; " + std::string(units_hint));
  const std::uint64_t seconds =
      saturating_multiply(*count, static_cast<std::uint64_t>(unit.count()));
  if (seconds < static_cast<std::uint64_t>(min.count()) ||
      seconds > static_cast<std::uint64_t>(max.count())) {
    throw InvalidValue(std::string(text) + " is out of bounds (" + table::format_duration(min) +
                       ".." + table::format_duration(max) + ")");
  }
  return Seconds{static_cast<Seconds::rep>(seconds)};
}

ByteSize parse_size(const table::SizeType& type, std::string_view text) {
  require_value(text);
  std::uint64_t unit_bytes = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 'K':
      unit_bytes = (1_KiB).bytes;
      break;
    case 'M':
      unit_bytes = (1_MiB).bytes;
      break;
    case 'G':
      unit_bytes = (1024_MiB).bytes;
      break;
    default:
      break;
  }
  if (unit_bytes != 1) digits.remove_suffix(1);
  const auto count = parse_whole(digits);
  if (!count) {
    throw InvalidValue(in_quotes(text) +
                       " is not a size; use a whole number of bytes, or with K, M or G (e.g. 35M)");
  }
  const ByteSize size{saturating_multiply(*count, unit_bytes)};
  if (size < type.min || size > type.max) {
    throw InvalidValue(std::string(text) + " is out of bounds (" + table::format_size(type.min) +
                       ".." + table::format_size(type.max) + ")");
  }
  return size;
}

bool parse_bool(std::string_view text) {
  require_value(text);
  for (std::string_view word : {"true", "yes", "on", "1"}) {
    if (text == word) return true;
  }
  for (std::string_view word : {"false", "no", "off", "0"}) {
    if (text == word) return false;
  }
  throw InvalidValue(in_quotes(text) + " is not a boolean; use true/false, yes/no, on/off or 1/0");
}

table::EnumWord parse_enum(const table::EnumType& type, std::string_view text) {
  require_value(text);
  if (std::find(type.words.begin(), type.words.end(), text) != type.words.end()) {
    return table::EnumWord{std::string(text)};
  }
  std::string choices;
  for (const auto word : type.words) choices += (choices.empty() ? "" : ", ") + std::string(word);
  throw InvalidValue(in_quotes(text) + " is not one of: " + choices);
}

Endpoint parse_one_endpoint(std::string_view text) {
  auto endpoint = parse_endpoint(text);
  if (!endpoint) throw InvalidValue(in_quotes(text) + " is not host:port or [IPv6 address]:port");
  return *endpoint;
}

std::vector<Endpoint> parse_endpoints(const table::EndpointListType& type, std::string_view text) {
  std::vector<Endpoint> endpoints;
  for (const auto item : split_list(text)) {
    auto endpoint = parse_one_endpoint(item);
    if (type.addresses_only && !parse_ip(endpoint.host))
      throw InvalidValue(in_quotes(item) + " needs an IP address, not a name");
    endpoints.push_back(std::move(endpoint));
  }
  if (endpoints.empty() && !type.may_be_empty) throw InvalidValue("needs at least one host:port");
  return endpoints;
}

std::vector<Network> parse_networks(std::string_view text) {
  std::vector<Network> networks;
  for (const auto item : split_list(text)) {
    auto network = parse_network(item);
    if (!network) throw InvalidValue(in_quotes(item) + " is not an address or address/prefix");
    networks.push_back(*network);
  }
  return networks;
}

std::vector<Seconds> parse_durations(const table::DurationListType& type, std::string_view text) {
  std::vector<Seconds> durations;
  for (const auto item : split_list(text))
    durations.push_back(parse_duration(item, type.min, type.max));
  if (durations.empty()) throw InvalidValue("needs at least one duration");
  return durations;
}

std::vector<Route> parse_routes(std::string_view text) {
  std::vector<Route> routes;
  for (const auto item : split_list(text)) {
    const auto equals = item.find('=');
    if (equals == std::string_view::npos)
      throw InvalidValue(in_quotes(item) + " is not domain = host:port");
    const auto domain_text = trim(item.substr(0, equals));
    const bool domain_ok =
        !domain_text.empty() && std::none_of(domain_text.begin(), domain_text.end(), [](char c) {
          return is_space(c) || c == '=' || c == ':' || c == '[' || c == ']';
        });
    if (!domain_ok) throw InvalidValue(in_quotes(item) + " is not domain = host:port");
    std::string domain(domain_text);
    // Domains compare case-insensitively; the lower case form is what routing looks up.
    std::transform(domain.begin(), domain.end(), domain.begin(), [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    const bool repeated = std::any_of(routes.begin(), routes.end(),
                                      [&](const Route& r) { return r.domain == domain; });
    if (repeated) throw InvalidValue("route for " + in_quotes(domain) + " given twice");
    routes.push_back(Route{std::move(domain), parse_one_endpoint(trim(item.substr(equals + 1)))});
  }
  return routes;
}

std::filesystem::path parse_path(std::string_view text, const std::filesystem::path& base_dir) {
  std::filesystem::path path{std::string(text)};
  if (path.empty() || path.is_absolute() || base_dir.empty()) return path;
  return (base_dir / path).lexically_normal();
}

std::string parse_address(std::string_view text) {
  if (!text.empty() && !parse_ip(text))
    throw InvalidValue(in_quotes(text) + " is not an IP address");
  return std::string(text);
}

// local@domain: one '@' with text on both sides, no space, control or angle bracket.
std::string parse_mail_address(std::string_view text) {
  const auto at = text.rfind('@');
  const bool plain = std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '<' || c == '>';
  });
  if (!text.empty() && (!plain || at == std::string_view::npos || at == 0 ||
                        at + 1 == text.size() || text.find('@') != at))
    throw InvalidValue(in_quotes(text) + " is not a mail address local@domain");
  return std::string(text);
}

}  // namespace

ConfigError::ConfigError(std::string file_name, unsigned line_number, std::string key_name,
                         std::string why)
    : std::runtime_error(describe(file_name, line_number, key_name, why)),
      file(std::move(file_name)),
      line(line_number),
      key(std::move(key_name)),
      reason(std::move(why)) {}

namespace table {

Value parse_value(const KeySpec& spec, std::string_view text,
                  const std::filesystem::path& base_dir) {
  return std::visit(
      [&](const auto& type) -> Value {
        using T = std::decay_t<decltype(type)>;
        if constexpr (std::is_same_v<T, StringType>) return std::string(text);
        if constexpr (std::is_same_v<T, PathType>) return parse_path(text, base_dir);
        if constexpr (std::is_same_v<T, AddressType>) return parse_address(text);
        if constexpr (std::is_same_v<T, MailAddressType>) return parse_mail_address(text);
        if constexpr (std::is_same_v<T, BoolType>) return parse_bool(text);
        if constexpr (std::is_same_v<T, CountType>) return parse_count(type, text);
        if constexpr (std::is_same_v<T, PortType>) return parse_port(text);
        if constexpr (std::is_same_v<T, DurationType>)
          return parse_duration(text, type.min, type.max);
        if constexpr (std::is_same_v<T, SizeType>) return parse_size(type, text);
        if constexpr (std::is_same_v<T, EnumType>) return parse_enum(type, text);
        if constexpr (std::is_same_v<T, EndpointListType>) return parse_endpoints(type, text);
        if constexpr (std::is_same_v<T, NetworkListType>) return parse_networks(text);
        if constexpr (std::is_same_v<T, DurationListType>) return parse_durations(type, text);
        if constexpr (std::is_same_v<T, RouteListType>) return parse_routes(text);
      },
      spec.type);
}

}  // namespace table

Settings parse(std::string_view text, const std::string& file_name,
               const std::filesystem::path& base_dir) {
  Settings settings = table::defaults();
  std::map<std::string, unsigned, std::less<>> first_line_of_key;
  std::optional<std::string_view> section;
  unsigned line_number = 0;

  while (!text.empty()) {
    const auto newline = text.find('\n');
    const auto raw_line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;

    const auto line = trim(raw_line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;

    if (line.front() == '[') {
      const auto header = trim(strip_inline_comment(line));
      if (header.size() < 2 || header.back() != ']') {
        throw ConfigError(file_name, line_number, "", "malformed section header; expected [name]");
      }
      const auto name = trim(header.substr(1, header.size() - 2));
      const auto* known = table::find_section(name);
      if (known == nullptr)
        throw ConfigError(file_name, line_number, "",
                          "unknown section [" + std::string(name) + "]");
      section = known->name;
      continue;
    }

    const auto equals = line.find('=');
    const auto key =
        equals == std::string_view::npos ? std::string_view() : trim(line.substr(0, equals));
    if (key.empty()) {
      throw ConfigError(file_name, line_number, "",
                        "malformed line; expected [section], key = value or a comment");
    }
    if (!section)
      throw ConfigError(file_name, line_number, std::string(key), "key outside any section");

    const std::string full_key = std::string(*section) + "." + std::string(key);
    const auto* spec = table::find_key(*section, key);
    if (spec == nullptr) throw ConfigError(file_name, line_number, full_key, "unknown key");
    const auto [previous, inserted] = first_line_of_key.try_emplace(full_key, line_number);
    if (!inserted) {
      throw ConfigError(
          file_name, line_number, full_key,
          "duplicate key (first set on line " + std::to_string(previous->second) + ")");
    }

    const auto value_text = trim(strip_inline_comment(line.substr(equals + 1)));
    try {
      spec->store(settings, table::parse_value(*spec, value_text, base_dir));
    } catch (const InvalidValue& error) {
      throw ConfigError(file_name, line_number, full_key, error.what());
    }
  }
  return settings;
}

Settings load_file(const std::filesystem::path& file) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> stream(std::fopen(file.c_str(), "rb"),
                                                               &std::fclose);
  if (!stream)
    throw ConfigError(file.string(), 0, "", std::string("cannot open: ") + std::strerror(errno));
  std::string text;
  std::array<char, 8192> buffer{};
  std::size_t count = 0;
  while ((count = std::fread(buffer.data(), 1, buffer.size(), stream.get())) > 0)
    text.append(buffer.data(), count);
  // fread reports errors only through ferror; errno tells which (e.g. EISDIR for a folder).
  if (std::ferror(stream.get()) != 0) {
    throw ConfigError(file.string(), 0, "", std::string("cannot read: ") + std::strerror(errno));
  }
  return parse(text, file.string(), std::filesystem::absolute(file).parent_path());
}

void resolve_machine_defaults(Settings& settings) {
  if (settings.server.hostname.empty()) {
    std::array<char, HOST_NAME_MAX + 1> name{};
    if (gethostname(name.data(), name.size() - 1) != 0) {
      throw std::system_error(errno, std::generic_category(), "gethostname");
    }
    settings.server.hostname = name.data();
  }
  if (settings.server.threads == 0)
    settings.server.threads = std::max(1U, std::thread::hardware_concurrency());
}

}  // namespace maild::config
