// The key table shared by the parser and the renderers (private to src/config).
// Trust: compiled-in data; file text is checked against it in parser.cpp.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "maild/config/settings.hpp"

namespace maild::config::table {

// What a key accepts. Bounds are inclusive and carry their unit in their type.
struct StringType {};
struct PathType {};         // relative to the config file's folder
struct AddressType {};      // an IP address, or empty
struct MailAddressType {};  // a mail address local@domain, or empty
struct BoolType {};
struct CountType {
  unsigned min;
  unsigned max;
};
struct PortType {};  // a TCP port, within port_bounds
struct DurationType {
  Seconds min;
  Seconds max;
};
struct SizeType {
  ByteSize min;
  ByteSize max;
};
struct EnumType {
  std::vector<std::string_view> words;
};
struct EndpointListType {
  bool may_be_empty;
  bool addresses_only;  // listeners and resolvers: an IP address, not a name
};
struct NetworkListType {};
struct DurationListType {
  Seconds min;
  Seconds max;
};
struct RouteListType {};

inline constexpr CountType port_bounds{1, 65535};

using ValueType = std::variant<StringType, PathType, AddressType, MailAddressType, BoolType,
                               CountType, PortType, DurationType, SizeType, EnumType,
                               EndpointListType, NetworkListType, DurationListType, RouteListType>;

// An enum value as its word; the key's store function maps it onto the enum.
struct EnumWord {
  std::string word;
};

// A parsed value, one alternative per ValueType (StringType, AddressType and MailAddressType share
// std::string).
using Value = std::variant<std::string, std::filesystem::path, bool, unsigned, std::uint16_t,
                           Seconds, ByteSize, EnumWord, std::vector<Endpoint>, std::vector<Network>,
                           std::vector<Seconds>, std::vector<Route>>;

struct KeySpec {
  std::string_view section;
  std::string_view key;
  ValueType type;
  std::string_view default_text;  // exactly as written in a config file
  std::string_view help;
  std::function<void(Settings&, Value)> store;
};

struct SectionSpec {
  std::string_view name;
  std::string_view help;
};

// In the order the sample config and the reference list them.
const std::vector<SectionSpec>& sections();
const std::vector<KeySpec>& keys();

const SectionSpec* find_section(std::string_view name);
const KeySpec* find_key(std::string_view section, std::string_view key);

// Why a value was refused; parser.cpp adds the file, line and key.
struct InvalidValue : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses `text` as `spec.type` says; relative paths resolve against base_dir.
// Throws InvalidValue.
Value parse_value(const KeySpec& spec, std::string_view text,
                  const std::filesystem::path& base_dir);

// Every key at its default, built from the table's default texts.
Settings defaults();

// In the largest unit that divides exactly: "90s", "5m", "48h", "5d"; "512K", "35M", "100".
std::string format_duration(Seconds duration);
std::string format_size(ByteSize size);

}  // namespace maild::config::table
