// Fuzzes the header section reader: removing our Authentication-Results
// fields never touches the body, only ever removes, never a Received field,
// and leaves nothing to remove a second time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/header_section.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first octet picks the authserv-id, so that inputs can match it.
  constexpr std::string_view ids[] = {"mx.example.test", "MX.example.test.", "a", "\"q\""};
  const auto ours = ids[data[0] % 4];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);

  using namespace maild::smtp;
  const auto header = header_section_size(input);
  if (header > input.size()) std::abort();
  const auto received = count_received(input);
  std::string content = input;
  const auto removed = remove_own_authentication_results(content, ours);
  if ((removed == 0) != (content == input)) std::abort();
  if (content.size() > input.size()) std::abort();
  // The body is the same octets, and what is gone came out of the header section.
  const auto cut = input.size() - content.size();
  if (header_section_size(content) != header - cut) std::abort();
  if (std::string_view(content).substr(header - cut) != std::string_view(input).substr(header))
    std::abort();
  if (count_received(content) != received) std::abort();
  if (remove_own_authentication_results(content, ours) != 0) std::abort();
  (void)authserv_id(input);
  return 0;
}
