// SHA-256 content hashing (content addressing of messages).
// Trust: pure function over bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace maild {

struct ContentHash {
  std::array<std::uint8_t, 32> bytes{};

  std::string hex() const;  // 64 lowercase hex characters
  bool operator==(const ContentHash&) const = default;
};

ContentHash sha256(std::string_view data);

}  // namespace maild
