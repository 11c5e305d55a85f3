// Formats results for stdout; talks to nothing but the stream it is given.
// Trust: none in the values: every string is escaped (JSON) or neutralised (tables).
#include "output.hpp"

#include <algorithm>
#include <array>
#include <ctime>

namespace maild::admin {

namespace {

unsigned char byte_at(std::string_view s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF), or 0 if there is none.
std::size_t utf8_length_at(std::string_view s, std::size_t i) {
  const unsigned char lead = byte_at(s, i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead == 0xE0) {
    length = 3, low = 0xA0;
  } else if (lead == 0xED) {
    length = 3, high = 0x9F;
  } else if (lead >= 0xE1 && lead <= 0xEF) {
    length = 3;
  } else if (lead == 0xF0) {
    length = 4, low = 0x90;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    length = 4;
  } else if (lead == 0xF4) {
    length = 4, high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > s.size() || byte_at(s, i + 1) < low || byte_at(s, i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if ((byte_at(s, i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Width on a terminal, counted in code points (good enough for tables).
std::size_t display_width(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string human(const Value& value) {
  if (const auto* number = std::get_if<std::int64_t>(&value)) return std::to_string(*number);
  return printable(std::get<std::string>(value));
}

std::string json_value(const Value& value) {
  if (const auto* number = std::get_if<std::int64_t>(&value)) return std::to_string(*number);
  return json_string(std::get<std::string>(value));
}

void pad(std::string& line, std::size_t width, std::string_view cell, bool align_right) {
  const std::string fill(width - display_width(cell), ' ');
  if (align_right) line += fill;
  line += cell;
  if (!align_right) line += fill;
}

}  // namespace

std::string json_string(std::string_view text) {
  static constexpr std::array<char, 16> hex{'0', '1', '2', '3', '4', '5', '6', '7',
                                            '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = byte_at(text, i);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0x0F];
        } else if (const std::size_t length = utf8_length_at(text, i); length == 0) {
          out += "\\ufffd";
        } else {
          out.append(text.substr(i, length));
          i += length;
          continue;
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_length_at(text, i);
    const unsigned char c = byte_at(text, i);
    // C0 controls, DEL and C1 controls (U+0080..U+009F) can all move or recolour a terminal.
    const bool control =
        c < 0x20 || c == 0x7F || (length == 2 && c == 0xC2 && byte_at(text, i + 1) < 0xA0);
    if (length == 0 || control) {
      out += '?';
      i += std::max<std::size_t>(length, 1);
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

std::string iso_time(std::chrono::sys_seconds time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buffer{};
  const std::size_t n = std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buffer.data(), n);
}

std::string render_table(const Table& table) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const Column& column : table.columns) widths.push_back(display_width(column.header));
  for (const auto& row : table.rows) {
    auto& line = cells.emplace_back();
    for (std::size_t c = 0; c < row.size(); ++c) {
      line.push_back(human(row[c]));
      widths[c] = std::max(widths[c], display_width(line.back()));
    }
  }
  const auto render_line = [&](const std::vector<std::string_view>& line) {
    std::string out;
    for (std::size_t c = 0; c < line.size(); ++c) {
      const bool last = c + 1 == line.size();
      if (c > 0) out += "  ";
      // The last column is not padded, so lines carry no trailing blanks.
      if (last && !table.columns[c].align_right) {
        out += line[c];
      } else {
        pad(out, widths[c], line[c], table.columns[c].align_right);
      }
    }
    return out + '\n';
  };
  std::vector<std::string_view> header;
  for (const Column& column : table.columns) header.push_back(column.header);
  std::string out = render_line(header);
  for (const auto& line : cells) out += render_line({line.begin(), line.end()});
  return out;
}

std::string render_record(const Record& record) {
  std::size_t width = 0;
  for (const Field& field : record) width = std::max(width, display_width(field.label));
  std::string out;
  for (const Field& field : record) {
    if (field.label.empty()) continue;
    out += field.label;
    out += std::string(width - display_width(field.label) + 2, ' ');
    out += human(field.value);
    out += '\n';
  }
  return out;
}

std::string record_json(const Record& record) {
  std::string out = "{";
  for (const Field& field : record) {
    if (field.key.empty()) continue;
    if (out.size() > 1) out += ", ";
    out += json_string(field.key) + ": " + json_value(field.value);
  }
  return out + "}";
}

std::string table_json(const Table& table) {
  std::string out = "[";
  for (const auto& row : table.rows) {
    Record record;
    for (std::size_t c = 0; c < row.size(); ++c)
      record.push_back({{}, table.columns[c].key, row[c]});
    if (out.size() > 1) out += ",";
    out += "\n  " + record_json(record);
  }
  return out + (table.rows.empty() ? "]" : "\n]");
}

void Output::table(const Table& table) {
  out_ << (json_ ? table_json(table) + '\n' : render_table(table));
}

void Output::record(const Record& record) {
  out_ << (json_ ? record_json(record) + '\n' : render_record(record));
}

void Output::record_with_table(const Record& record, std::string_view key, const Table& table) {
  if (!json_) {
    out_ << render_record(record) << '\n' << render_table(table);
    return;
  }
  std::string object = record_json(record);
  object.pop_back();  // the closing brace: the array goes in before it
  if (object.size() > 1) object += ", ";
  out_ << object << json_string(key) << ": " << table_json(table) << "}\n";
}

void Output::confirm(std::string_view message) {
  if (json_) {
    out_ << "{\"ok\": true, \"message\": " << json_string(message) << "}\n";
  } else {
    out_ << message << '\n';
  }
}

void Output::raw(std::string_view bytes) {
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace maild::admin
