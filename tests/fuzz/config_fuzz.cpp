// libFuzzer target: arbitrary bytes as mail.conf text. The parser must either return Settings or
// throw ConfigError; anything else (a crash, another exception, a sanitizer report) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "maild/config/load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    // An absolute base_dir keeps path resolution lexical: parse never touches the file system.
    const auto settings = maild::config::parse(text, "fuzz.conf", "/fuzz");
    // Whatever parsed must render back to text that parses to the same addresses.
    for (const auto& network : settings.smtp.relay_networks) {
      const auto again = maild::parse_network(network.to_string());
      if (!again || !(*again == network)) __builtin_trap();
    }
    for (const auto& endpoint : settings.smtp.listen) {
      const auto again = maild::parse_endpoint(endpoint.to_string());
      if (!again || !(*again == endpoint)) __builtin_trap();
    }
  } catch (const maild::config::ConfigError&) {
    // Refusing bad input with a located error is the expected outcome, not a failure.
  }
  return 0;
}
