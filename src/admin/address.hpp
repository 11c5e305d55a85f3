// Checks and normalises the addresses and domain names given on the command
// line before the store sees them. Trust: none; everything here is user input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maild::admin {

// Each returns the normalised form (domain lowercased) or throws RequestError
// naming what is wrong.
std::string domain_name(std::string_view text);      // example.test
std::string mailbox_address(std::string_view text);  // local@example.test
std::string alias_source(std::string_view text);  // local@example.test or @example.test (catch-all)

// The domain part of an address or an alias source.
std::string_view domain_of(std::string_view address);

// An optional DOMAIN argument at args[index] (list filters), validated.
std::optional<std::string> optional_domain(const std::vector<std::string>& args, std::size_t index);

}  // namespace maild::admin
