// Header section reading for acceptance; see header_section.hpp.
#include "smtp/header_section.hpp"

#include <algorithm>
#include <vector>

namespace maild::smtp {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_text(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return lower(x) == lower(y); });
}

// Where the line starting at `at` ends, after its LF (or at the end of `text`).
std::size_t line_end(std::string_view text, std::size_t at) {
  const auto lf = text.find('\n', at);
  return lf == std::string_view::npos ? text.size() : lf + 1;
}

bool is_empty_line(std::string_view line) { return line == "\n" || line == "\r\n"; }

// One field of the header section: its first line and the continuation lines after it.
struct Field {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string_view name;   // "" for a line that is no field (no colon on it)
  std::string_view value;  // after the colon, to the end of the field
};

// The fields of the header section, in order.
std::vector<Field> fields_of(std::string_view content) {
  const auto header = content.substr(0, header_section_size(content));
  std::vector<Field> fields;
  std::size_t at = 0;
  while (at < header.size()) {
    const auto first_end = line_end(header, at);
    const auto first = header.substr(at, first_end - at);
    if (is_empty_line(first)) break;
    auto end = first_end;
    while (end < header.size() && is_wsp(header[end])) end = line_end(header, end);
    Field field{at, end, {}, {}};
    // A line that starts with white space continues a field; alone it is none.
    const auto colon = first.find(':');
    if (!is_wsp(first.front()) && colon != std::string_view::npos) {
      auto name = first.substr(0, colon);
      while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);  // RFC 5322 obs-optional
      field.name = name;
      field.value = header.substr(at + colon + 1, end - at - colon - 1);
    }
    fields.push_back(field);
    at = end;
  }
  return fields;
}

// RFC 2045 5.1 tspecials, which end a token.
bool is_tspecial(char c) {
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos;
}

// Skips white space, line ends and (nested) comments; false on an unterminated comment.
bool skip_cfws(std::string_view text, std::size_t& at) {
  while (at < text.size()) {
    const char c = text[at];
    if (is_wsp(c) || c == '\r' || c == '\n') {
      ++at;
      continue;
    }
    if (c != '(') return true;
    unsigned depth = 0;
    for (; at < text.size(); ++at) {
      if (text[at] == '\\') {
        ++at;  // a quoted-pair: the next octet is literal
      } else if (text[at] == '(') {
        ++depth;
      } else if (text[at] == ')' && --depth == 0) {
        break;
      }
    }
    if (at >= text.size()) return false;
    ++at;
  }
  return true;
}

// Lower case, without one trailing dot: how two authserv-ids compare.
std::string comparable(std::string_view id) {
  if (!id.empty() && id.back() == '.') id.remove_suffix(1);
  std::string out(id);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

}  // namespace

std::size_t header_section_size(std::string_view content) {
  std::size_t at = 0;
  while (at < content.size()) {
    const auto end = line_end(content, at);
    if (is_empty_line(content.substr(at, end - at))) return end;
    at = end;
  }
  return content.size();
}

std::size_t count_received(std::string_view content) {
  const auto fields = fields_of(content);
  return static_cast<std::size_t>(std::count_if(
      fields.begin(), fields.end(), [](const Field& f) { return same_text(f.name, "Received"); }));
}

std::optional<std::string> authserv_id(std::string_view value) {
  std::size_t at = 0;
  if (!skip_cfws(value, at) || at == value.size()) return std::nullopt;
  std::string id;
  if (value[at] == '"') {
    for (++at; at < value.size() && value[at] != '"'; ++at) {
      if (value[at] == '\\' && at + 1 < value.size()) ++at;
      if (value[at] == '\r' || value[at] == '\n') continue;  // folding inside the quotes
      id.push_back(value[at]);
    }
    if (at == value.size()) return std::nullopt;  // unterminated
  } else {
    for (; at < value.size(); ++at) {
      const auto u = static_cast<unsigned char>(value[at]);
      if (u <= 0x20 || u == 0x7f || is_tspecial(value[at])) break;
      id.push_back(value[at]);
    }
  }
  if (id.empty()) return std::nullopt;
  return id;
}

std::size_t remove_own_authentication_results(std::string& content, std::string_view ours) {
  const auto own = comparable(ours);
  const auto is_ours = [&](const Field& field) {
    if (!same_text(field.name, "Authentication-Results")) return false;
    const auto id = authserv_id(field.value);
    return id && comparable(*id) == own;
  };
  const auto fields = fields_of(content);
  const auto removed =
      static_cast<std::size_t>(std::count_if(fields.begin(), fields.end(), is_ours));
  if (removed == 0) return 0;
  std::string kept;
  kept.reserve(content.size());
  for (const auto& field : fields)
    if (!is_ours(field)) kept.append(content, field.begin, field.end - field.begin);
  const auto rest = fields.empty() ? 0 : fields.back().end;
  kept.append(content, rest, std::string::npos);
  content = std::move(kept);
  return removed;
}

}  // namespace maild::smtp
