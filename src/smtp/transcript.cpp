// The session transcript; see transcript.hpp. Pure.
#include "smtp/transcript.hpp"

#include <algorithm>

#include "smtp/token.hpp"

namespace maild::smtp {

void Transcript::server(std::string_view wire) {
  while (!wire.empty()) {
    const auto end = wire.find("\r\n");
    add("> ", wire.substr(0, end));
    if (end == std::string_view::npos) break;
    wire.remove_prefix(end + 2);
  }
}

void Transcript::add(std::string_view prefix, std::string_view line) {
  std::string entry(prefix);
  if (line.size() > line_max) {
    entry.append(line.substr(0, line_max));
    entry.append(" [cut]");
  } else {
    entry.append(line);
  }
  size_ += entry.size();
  lines_.push_back(std::move(entry));
  while (size_ > budget_ && !lines_.empty()) {
    size_ -= lines_.front().size();
    lines_.pop_front();
    ++dropped_;
  }
}

std::string Transcript::text() const {
  std::string out;
  out.reserve(size_ + lines_.size() + 40);
  if (dropped_ > 0) out += "[" + std::to_string(dropped_) + " earlier lines dropped]\n";
  for (const auto& line : lines_) {
    out += line;
    out += '\n';
  }
  return out;
}

std::string redact_command(std::string_view line) {
  const auto starts_with = [line](std::string_view verb) {
    if (line.size() < verb.size()) return false;
    for (std::size_t i = 0; i < verb.size(); ++i)
      if ((line[i] | 0x20) != verb[i]) return false;
    return true;
  };
  if (starts_with("auth")) {
    const auto mechanism_end = line.find(' ', 5);
    return std::string(line.substr(0, std::min(mechanism_end, line.size()))) + " ...";
  }
  for (const std::string_view verb : {std::string_view("source"), std::string_view("get")}) {
    if (!starts_with(verb)) continue;
    const auto argument = line.find_first_not_of(" \t", verb.size());
    if (argument == std::string_view::npos) return std::string(line);
    return std::string(line.substr(0, argument)) + shown_token(line.substr(argument));
  }
  return std::string(line);
}

}  // namespace maild::smtp
