// Protocol limits fixed by the RFCs (configurable ones are in mail.conf).
#pragma once

#include <cstddef>

namespace maild::smtp {

// RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
inline constexpr std::size_t command_line_max = 512;
// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF.
inline constexpr std::size_t text_line_max = 1000;

// Replies from remote servers (the outbound client). RFC 5321 4.5.3.1.5 says
// 512 octets per reply line; real servers send longer texts, so we accept up
// to this many octets per line, CRLF included.
inline constexpr std::size_t reply_line_max = 2048;
// Lines in one (multi-line) reply; an EHLO reply has one per extension.
inline constexpr std::size_t reply_lines_max = 100;
// Octets of reply text kept in a one-line summary (the queue's last reply, DSNs).
inline constexpr std::size_t reply_summary_text_max = 400;

}  // namespace maild::smtp
