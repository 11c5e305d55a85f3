// Message text conversions for mail export and mail inject: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace maild::admin {

// The store keeps CRLF lines: bare LFs become CRLF and a final line end is added.
std::string to_crlf(std::string_view text);

// One mboxrd entry: "From SENDER ASCTIME" (MAILER-DAEMON for the null sender),
// the message with LF line ends and every /^>*From / line quoted with one more
// '>', then a blank line.
std::string mboxrd_entry(std::string_view sender, std::chrono::sys_seconds received_at,
                         std::string_view message);

// "Thu Jan  1 00:00:00 1970", the asctime(3) form used on mbox From lines, in UTC.
std::string asctime_utc(std::chrono::sys_seconds time);

}  // namespace maild::admin
