// Process lifecycle: detaching, the pid file, dropping root, systemd notification.
// Talks to: the operating system (fork, setuid, the notify socket).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "maild/config/settings.hpp"

namespace maild::daemon {

// Detaches from the terminal. Returns in the child; the parent waits until
// the child calls report_ready() (exit 0) or dies/reports failure (exit 1),
// so `maild --daemon` returns only once maild serves or has failed.
void detach();
// Tells a waiting parent (after detach) that start-up finished; no-op otherwise.
void report_ready();

// Writes the pid file; removed by remove_pid_file(). Throws std::runtime_error.
void write_pid_file(const std::filesystem::path& file);
void remove_pid_file(const std::filesystem::path& file);

// Switches to `user` (its uid, gid and groups). Empty: nothing. Not root and
// not already that user: throws std::runtime_error.
void drop_privileges(const std::string& user);

// Whether `user` exists; "server.user: no such user: <user>" when not, else empty.
std::string check_user(const std::string& user);

// Run after the privilege drop: throws std::runtime_error when this process
// cannot write the SQLite store (the file, its -wal and -shm when present, and
// its folder, where SQLite creates them), naming the path, its owner and mode
// and the reason. A store that is not there yet needs a writable folder.
// MySQL: nothing to check on this machine.
void check_store_access(const config::Settings& settings);

// Raises the open-files limit to its hard maximum; returns the new soft limit.
unsigned long raise_file_limit();

// sd_notify(3) wrappers: no-ops when not started by systemd.
void notify(std::string_view state);

}  // namespace maild::daemon
