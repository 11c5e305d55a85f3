// Base64 through OpenSSL's EVP block coder, with strict validation in front of it.
// Trust: none in the text to decode; OpenSSL is only given input already checked.
#include "maild/core/base64.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace maild {
namespace {

// EVP_*Block take an int length; large inputs go through in slices of whole groups.
constexpr std::size_t encode_slice = 3 * (std::size_t{1} << 20);
constexpr std::size_t decode_slice = 4 * (std::size_t{1} << 20);

constexpr std::array<std::int8_t, 256> make_values() {
  std::array<std::int8_t, 256> values{};
  for (auto& v : values) v = -1;
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    values[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return values;
}
constexpr auto values = make_values();

int value_of(char c) { return values[static_cast<unsigned char>(c)]; }

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  while (!data.empty()) {
    const auto slice = data.substr(0, encode_slice);
    std::string block((slice.size() + 2) / 3 * 4 + 1, '\0');  // +1: OpenSSL writes a NUL
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(block.data()),
                                        reinterpret_cast<const unsigned char*>(slice.data()),
                                        static_cast<int>(slice.size()));
    if (written < 0 || static_cast<std::size_t>(written) + 1 != block.size()) {
      throw std::runtime_error("base64 encoding failed in OpenSSL");
    }
    block.pop_back();
    out += block;
    data.remove_prefix(slice.size());
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (value_of(text[i]) < 0) return std::nullopt;  // also catches "=" before the end
  }
  if (padding > 0) {
    // The last data character carries bits past the end; they must be zero.
    const int last = value_of(text[text.size() - padding - 1]);
    if ((padding == 1 && (last & 0x03) != 0) || (padding == 2 && (last & 0x0f) != 0)) {
      return std::nullopt;
    }
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  while (!text.empty()) {
    const auto slice = text.substr(0, decode_slice);
    std::string block(slice.size() / 4 * 3, '\0');
    // Already validated, so OpenSSL cannot disagree unless it is broken.
    const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(block.data()),
                                        reinterpret_cast<const unsigned char*>(slice.data()),
                                        static_cast<int>(slice.size()));
    if (written < 0 || static_cast<std::size_t>(written) != block.size()) {
      throw std::runtime_error("base64 decoding failed in OpenSSL");
    }
    out += block;
    text.remove_prefix(slice.size());
  }
  out.resize(out.size() - padding);  // EVP_DecodeBlock counts padding as zero bytes
  return out;
}

}  // namespace maild
