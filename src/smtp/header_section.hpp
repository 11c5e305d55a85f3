// What acceptance reads and changes in a message's header section (RFC 5322
// 2.2): the Received fields it counts against a loop (RFC 5321 6.3), and the
// Authentication-Results fields that claim to be ours, which it removes
// before adding its own (RFC 8601 5). The body is never touched.
// Trust: none; the content is the client's. Pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace maild::smtp {

// The octets of `content` that are its header section: up to and including
// the empty line that ends it, or all of it when there is none. Lines end in
// LF, with or without a CR before it.
std::size_t header_section_size(std::string_view content);

// The Received fields of the header section, by field name without regard to case.
std::size_t count_received(std::string_view content);

// The authserv-id an Authentication-Results field value starts with (RFC 8601
// 2.2: after optional CFWS, a token or a quoted-string), unfolded and
// unquoted; none when the value does not start with one.
std::optional<std::string> authserv_id(std::string_view value);

// Removes from the header section every Authentication-Results field whose
// authserv-id is `ours` (ASCII case ignored, as is one trailing dot), with its
// continuation lines; returns how many. Everything else stays byte for byte.
std::size_t remove_own_authentication_results(std::string& content, std::string_view ours);

}  // namespace maild::smtp
