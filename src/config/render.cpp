// Renders the key table as the sample mail.conf and as the Markdown reference.
// Trust: reads compiled-in data only; the output is checked in by hand and compared by a test.
#include <sstream>

#include "config/settings_table.hpp"
#include "maild/config/load.hpp"

namespace maild::config {

namespace table {

std::string format_duration(Seconds duration) {
  using namespace std::chrono;
  const auto count = duration.count();
  if (count != 0 && duration % days{1} == Seconds{0})
    return std::to_string(duration_cast<days>(duration).count()) + "d";
  if (count != 0 && duration % hours{1} == Seconds{0})
    return std::to_string(duration_cast<hours>(duration).count()) + "h";
  if (count != 0 && duration % minutes{1} == Seconds{0})
    return std::to_string(duration_cast<minutes>(duration).count()) + "m";
  return std::to_string(count) + "s";
}

std::string format_size(ByteSize size) {
  struct Unit {
    ByteSize size;
    const char* suffix;
  };
  for (const Unit unit : {Unit{1024_MiB, "G"}, Unit{1_MiB, "M"}, Unit{1_KiB, "K"}}) {
    if (size.bytes != 0 && size.bytes % unit.size.bytes == 0)
      return std::to_string(size.bytes / unit.size.bytes) + unit.suffix;
  }
  return std::to_string(size.bytes);
}

}  // namespace table

namespace {

std::string join_words(const std::vector<std::string_view>& words) {
  std::string text;
  for (const auto word : words) text += (text.empty() ? "" : ", ") + std::string(word);
  return text;
}

std::string type_name(const table::ValueType& type) {
  return std::visit(
      [](const auto& t) -> std::string {
        using T = std::decay_t<decltype(t)>;
        if constexpr (std::is_same_v<T, table::StringType>) return "text";
        if constexpr (std::is_same_v<T, table::PathType>) return "path";
        if constexpr (std::is_same_v<T, table::AddressType>) return "IP address";
        if constexpr (std::is_same_v<T, table::MailAddressType>) return "mail address";
        if constexpr (std::is_same_v<T, table::BoolType>) return "boolean";
        if constexpr (std::is_same_v<T, table::CountType>) return "whole number";
        if constexpr (std::is_same_v<T, table::PortType>) return "port";
        if constexpr (std::is_same_v<T, table::DurationType>) return "duration (s, m, h, d)";
        if constexpr (std::is_same_v<T, table::SizeType>) return "size (bytes, K, M, G)";
        if constexpr (std::is_same_v<T, table::EnumType>) return "one of: " + join_words(t.words);
        if constexpr (std::is_same_v<T, table::EndpointListType>) return "list of host:port";
        if constexpr (std::is_same_v<T, table::NetworkListType>) return "list of address[/prefix]";
        if constexpr (std::is_same_v<T, table::DurationListType>)
          return "list of durations (s, m, h, d)";
        if constexpr (std::is_same_v<T, table::RouteListType>) return "list of domain = host:port";
      },
      type);
}

// Empty when the type itself is the only limit.
std::string bounds_text(const table::ValueType& type) {
  return std::visit(
      [](const auto& t) -> std::string {
        using T = std::decay_t<decltype(t)>;
        if constexpr (std::is_same_v<T, table::CountType>) {
          return std::to_string(t.min) + ".." + std::to_string(t.max);
        } else if constexpr (std::is_same_v<T, table::PortType>) {
          return std::to_string(table::port_bounds.min) + ".." +
                 std::to_string(table::port_bounds.max);
        } else if constexpr (std::is_same_v<T, table::DurationType>) {
          return table::format_duration(t.min) + ".." + table::format_duration(t.max);
        } else if constexpr (std::is_same_v<T, table::SizeType>) {
          return table::format_size(t.min) + ".." + table::format_size(t.max);
        } else if constexpr (std::is_same_v<T, table::DurationListType>) {
          return "at least one; each " + table::format_duration(t.min) + ".." +
                 table::format_duration(t.max);
        } else if constexpr (std::is_same_v<T, table::EndpointListType>) {
          std::string bounds = t.may_be_empty ? "" : "at least one";
          if (t.addresses_only) bounds += "IP addresses only";
          return bounds;
        } else {
          return "";
        }
      },
      type);
}

std::string type_and_bounds(const table::KeySpec& spec) {
  const auto bounds = bounds_text(spec.type);
  return type_name(spec.type) + (bounds.empty() ? "" : ", " + bounds);
}

std::string markdown_cell(std::string_view text) {
  std::string cell;
  for (const char c : text) {
    if (c == '|') cell += '\\';
    cell += c;
  }
  return cell;
}

// The sample's value: the key's default unless table::sample_values() names another.
std::string_view sample_text(const table::KeySpec& spec) {
  for (const auto& sample : table::sample_values()) {
    if (sample.section == spec.section && sample.key == spec.key) return sample.text;
  }
  return spec.default_text;
}

}  // namespace

std::string render_sample_config() {
  std::ostringstream out;
  out << "# mail.conf: maild's configuration, every key at its default except [server] user.\n"
         "#\n"
         "# Generated by `maild-config-render sample` from src/config/settings_table.cpp;\n"
         "# docs/configuration.md explains each key. A file may be empty or set only the\n"
         "# keys that differ from these defaults.\n"
         "#\n"
         "# Syntax: [section], key = value; a comment starts with # or ; at the start of a\n"
         "# line, or after whitespace at its end. Durations: 30s, 5m, 2h, 5d. Sizes: bytes,\n"
         "# or 512K, 35M, 2G. Lists are comma-separated. Relative paths are relative to\n"
         "# this file's folder.\n";
  for (const auto& section : table::sections()) {
    out << "\n[" << section.name << "]\n# " << section.help << "\n";
    for (const auto& spec : table::keys()) {
      if (spec.section != section.name) continue;
      out << "\n# " << spec.help << ". [" << type_and_bounds(spec) << "]\n";
      const auto value = sample_text(spec);
      if (value != spec.default_text)
        out << "# Default: " << (spec.default_text.empty() ? "(empty)" : spec.default_text) << "\n";
      out << spec.key << " =";
      if (!value.empty()) out << " " << value;
      out << "\n";
    }
  }
  return out.str();
}

std::string render_reference_markdown() {
  std::ostringstream out;
  bool first = true;
  for (const auto& section : table::sections()) {
    out << (first ? "" : "\n") << "### [" << section.name << "]\n\n" << section.help << "\n\n";
    first = false;
    out << "| Key | Type and unit | Default | Bounds | Meaning |\n"
           "|-----|---------------|---------|--------|---------|\n";
    for (const auto& spec : table::keys()) {
      if (spec.section != section.name) continue;
      const auto bounds = bounds_text(spec.type);
      out << "| `" << spec.key << "` | " << markdown_cell(type_name(spec.type)) << " | "
          << (spec.default_text.empty() ? std::string("(empty)")
                                        : "`" + markdown_cell(spec.default_text) + "`")
          << " | " << (bounds.empty() ? std::string("-") : markdown_cell(bounds)) << " | "
          << markdown_cell(spec.help) << " |\n";
    }
  }
  return out.str();
}

}  // namespace maild::config
