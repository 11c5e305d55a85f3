// SMTP replies: the one place that formats them (STYLE.md 6).
// Trust: the text is ours; CR and LF inside it never reach the wire unformatted.
#pragma once

#include <string>
#include <string_view>

namespace maild::smtp {

// "250-first\r\n250 last\r\n": each '\n' in text starts a continuation line.
// enhanced ("2.0.0", RFC 2034) is put before the text of every line when not empty.
std::string format_reply(int code, std::string_view enhanced, std::string_view text);

}  // namespace maild::smtp
