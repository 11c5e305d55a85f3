// Builds Received and Return-Path trace lines from session facts.
// Trust: none in the client-supplied parts; they are sanitized before use.
#include "smtp/received.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace maild::smtp {
namespace {

constexpr std::size_t fold_width = 78;  // RFC 5322 2.1.1 SHOULD
constexpr std::size_t helo_max = 255;   // a domain's maximum length
constexpr std::size_t field_max = 320;  // other client-supplied parts

// Printable ASCII without comment and clause delimiters; UTF-8 only in an
// SMTPUTF8 message, where header fields may hold it (RFC 6532).
std::string sanitize(std::string_view text, bool utf8, std::size_t max) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= max) break;
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      out.push_back(utf8 ? c : '?');
    } else if (u > 0x20 && u < 0x7f && c != '(' && c != ')' && c != '\\' && c != ';') {
      out.push_back(c);
    }
  }
  // Capping may cut a UTF-8 sequence; an unfinished one is dropped.
  while (!out.empty() && !valid_utf8(out)) out.pop_back();
  return out;
}

// Groups of words; each group starts on a new line, words fold greedily.
std::string fold(const std::vector<std::vector<std::string>>& groups) {
  std::string out = "Received:";
  std::size_t column = out.size();
  bool first_group = true;
  for (const auto& group : groups) {
    bool line_has_word = false;
    if (!first_group) {
      out += "\r\n\t";
      column = 1;
    }
    for (const auto& word : group) {
      const bool fits = column + 1 + word.size() <= fold_width;
      if (line_has_word && !fits) {
        out += "\r\n\t";
        column = 1;
      } else if (first_group || line_has_word) {
        out += ' ';
        ++column;
      }
      out += word;
      column += word.size();
      line_has_word = true;
    }
    first_group = false;
  }
  out += "\r\n";
  return out;
}

}  // namespace

std::string protocol_name(bool esmtp, bool tls, bool authenticated, bool utf8) {
  if (!esmtp) return "SMTP";  // RFC 3848 names only ESMTP variants
  std::string name = utf8 ? "UTF8SMTP" : "ESMTP";
  if (tls) name += 'S';
  if (authenticated) name += 'A';
  return name;
}

std::string rfc5322_date(std::chrono::system_clock::time_point time) {
  namespace chrono = std::chrono;
  static constexpr const char* day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto whole_seconds = chrono::floor<chrono::seconds>(time);
  const auto day = chrono::floor<chrono::days>(whole_seconds);
  const chrono::year_month_day date{day};
  const chrono::hh_mm_ss clock{whole_seconds - day};
  return fmt::format(
      "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000", day_names[chrono::weekday{day}.c_encoding()],
      static_cast<unsigned>(date.day()), month_names[static_cast<unsigned>(date.month()) - 1],
      static_cast<int>(date.year()), clock.hours().count(), clock.minutes().count(),
      clock.seconds().count());
}

std::string received_header(const ReceivedInfo& info) {
  std::string helo = sanitize(info.helo, info.utf8, helo_max);
  if (helo.empty()) helo = "unknown";
  // TCP-info is an address literal: IPv6 ones carry the "IPv6:" tag (RFC 5321 4.1.3).
  const std::string ip = sanitize(info.client_ip, false, field_max);
  const bool v6 = ip.find(':') != std::string::npos;
  std::vector<std::vector<std::string>> groups;
  groups.push_back({"from", helo, fmt::format("([{}{}])", v6 ? "IPv6:" : "", ip)});
  groups.push_back({"by", sanitize(info.hostname, false, helo_max), "(maild)", "with",
                    protocol_name(info.esmtp, info.tls, info.authenticated, info.utf8), "id",
                    sanitize(info.session_id, false, field_max)});
  if (info.tls_summary) {
    groups.push_back({"(using", sanitize(info.tls_summary->version, false, field_max), "with",
                      "cipher", sanitize(info.tls_summary->cipher, false, field_max) + ")"});
  }
  if (info.authenticated_user) {
    groups.push_back(
        {"(authenticated", "as", sanitize(*info.authenticated_user, info.utf8, field_max) + ")"});
  }
  if (info.recipient && !info.recipient->is_null()) {
    // A parsed Path holds no control characters; UTF-8 belongs only in an SMTPUTF8 message.
    const std::string address = info.recipient->address();
    const bool printable = std::all_of(address.begin(), address.end(), [&](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u != 0x7f && (u < 0x80 || info.utf8);
    });
    if (printable && address.size() <= field_max) groups.push_back({"for", "<" + address + ">"});
  }
  groups.back().back() += ";";
  groups.back().push_back(rfc5322_date(info.time));
  return fold(groups);
}

std::string return_path_line(const Path& reverse_path) {
  std::string address = reverse_path.address();
  std::erase_if(address, [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  return "Return-Path: <" + address + ">\r\n";
}

}  // namespace maild::smtp
