// Units that the settings and the protocol limits are declared in.
// Trust: plain value types; no I/O.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>

namespace maild {

// A size in octets. Parsed from "512K", "35M" (binary multiples).
struct ByteSize {
  std::uint64_t bytes = 0;

  constexpr auto operator<=>(const ByteSize&) const = default;
};

constexpr ByteSize operator""_KiB(unsigned long long n) { return ByteSize{n * 1024}; }
constexpr ByteSize operator""_MiB(unsigned long long n) { return ByteSize{n * 1024 * 1024}; }

// Durations are whole seconds in mail.conf ("30s", "5m", "2h", "5d").
using Seconds = std::chrono::seconds;

}  // namespace maild
