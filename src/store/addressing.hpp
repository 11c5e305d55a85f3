// How the store compares addresses: the domain and the local part case-insensitively (ASCII).
// Trust: addresses come from validated callers; malformed ones simply do not split.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild::store {

struct SplitAddress {
  std::string local;   // as given; "" for a catch-all source "@domain"
  std::string domain;  // lowercased
};

std::string lowercase_ascii(std::string_view text);

// Splits at the last '@'. Nothing when there is no '@' or the domain is empty.
std::optional<SplitAddress> split_address(std::string_view address);

// local@domain with the domain lowercased: the form the store keeps.
std::string stored_form(const SplitAddress& address);

}  // namespace maild::store
