// maild's log: one line per entry, UTC timestamps with their offset, CR and LF
// inside an entry escaped; to stderr or to [log] file, which SIGHUP and SIGUSR1
// reopen for logrotate. Under systemd (stderr is the journal stream named by
// JOURNAL_STREAM) each line starts with its syslog priority, "<3>", so that
// `journalctl -p` filters by level.
// Talks to: the log file or stderr; trusts nothing in the messages it writes.
#pragma once

#include <spdlog/common.h>

#include <filesystem>
#include <functional>
#include <string>

#include "maild/config/settings.hpp"

namespace maild::daemon {

spdlog::level::level_enum to_spdlog(config::LogLevel level);

// Installs the default logger as [log] says. Throws std::runtime_error when
// the file cannot be opened.
void setup_logging(const config::LogSettings& log);

// Opens [log] file for appending and returns the descriptor, or throws
// std::runtime_error naming the file and the reason.
using LogOpener = std::function<int()>;
// From now on reopen_log() opens the file through `open` (maild's privileged
// helper, after the drop); by default it opens the file itself.
void set_log_opener(LogOpener open);

// Opens [log] file again (after logrotate renamed it); stderr needs nothing.
// Returns the reason it could not, leaving the old file in use; empty on success.
std::string reopen_log();

// True when stderr is the journal's stream (JOURNAL_STREAM is stderr's device:inode).
bool stderr_is_journal();

// One log line as written: "<6>2026-12-08T00:10:20.123+00:00 info text" (the
// priority only when `journal`), CR and LF in `text` as \r and \n, other
// control characters but tab as \xNN.
std::string format_line(spdlog::level::level_enum level, spdlog::log_clock::time_point when,
                        std::string_view text, bool journal);

}  // namespace maild::daemon
