// Address splitting and case folding shared by every backend.
// Trust: pure functions over caller-validated strings.
#include "store/addressing.hpp"

#include <algorithm>

namespace maild::store {

std::string lowercase_ascii(std::string_view text) {
  std::string out(text);
  // Only ASCII folds: UTF-8 local parts (SMTPUTF8) compare byte for byte beyond that.
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

std::optional<SplitAddress> split_address(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at + 1 == address.size()) return std::nullopt;
  return SplitAddress{std::string(address.substr(0, at)), lowercase_ascii(address.substr(at + 1))};
}

std::string stored_form(const SplitAddress& address) {
  return address.local + "@" + address.domain;
}

}  // namespace maild::store
