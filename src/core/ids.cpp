// Session ids and random tokens; randomness comes from OpenSSL's CSPRNG.
// Trust: OpenSSL's RAND_bytes is trusted; ids are not secrets, tokens are.
#include "maild/core/ids.hpp"

#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <stdexcept>

namespace maild {
namespace {

constexpr char base36[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::size_t prefix_length = 4;   // 36^4 ≈ 1.7 million process prefixes
constexpr std::size_t counter_length = 8;  // 36^8 ≈ 2.8e12 ids per process before wrapping

std::string make_process_prefix() {
  std::array<unsigned char, prefix_length> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    // Session ids are not secrets; a weaker source only makes a clash across processes likelier.
    std::random_device device;
    for (auto& byte : random) byte = static_cast<unsigned char>(device());
  }
  std::string prefix;
  for (unsigned char byte : random) prefix.push_back(base36[byte % 36]);
  return prefix;
}

}  // namespace

std::string next_session_id() {
  static const std::string prefix = make_process_prefix();
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);

  std::string id(prefix_length + counter_length, '0');
  prefix.copy(id.data(), prefix_length);
  for (std::size_t i = id.size(); i > prefix_length; --i) {
    id[i - 1] = base36[n % 36];
    n /= 36;
  }
  return id;
}

std::string random_hex_128() {
  std::array<unsigned char, 16> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    throw std::runtime_error("OpenSSL's random generator failed (RAND_bytes)");
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned char b : random) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

}  // namespace maild
