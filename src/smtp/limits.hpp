// Protocol limits fixed by the RFCs (configurable ones are in mail.conf).
#pragma once

#include <cstddef>

namespace maild::smtp {

// RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
inline constexpr std::size_t command_line_max = 512;
// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
inline constexpr std::size_t text_line_max = 1000;

}  // namespace maild::smtp
