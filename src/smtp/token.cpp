// Token syntax and redaction; see token.hpp. Pure.
#include "smtp/token.hpp"

#include <algorithm>

namespace maild::smtp {

bool valid_token(std::string_view text) {
  return text.size() == token_length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string shown_token(std::string_view token) {
  if (token.size() <= token_shown) return std::string(token);
  return std::string(token.substr(0, token_shown)) + "...";
}

std::string redact_token(std::string_view text, std::string_view token) {
  if (token.empty()) return std::string(text);
  const std::string shown = shown_token(token);
  std::string out;
  for (;;) {
    const auto at = text.find(token);
    if (at == std::string_view::npos) break;
    out.append(text.substr(0, at)).append(shown);
    text.remove_prefix(at + token.size());
  }
  out.append(text);
  return out;
}

}  // namespace maild::smtp
