// maild's privileged helper: a small process forked before maild drops root.
// It stays root and does three things only: reads tls.cert and tls.key when
// maild asks (SIGHUP reloads a renewed certificate whose key only root may
// read, as certbot leaves it), opens [log] file again after logrotate (its
// folder may be root's alone), and removes the pid file when maild exits (its
// folder, /run, may be root's alone).
// Talks to: maild over a socketpair. Trusts the request's kind, nothing else:
// the files it reads are fixed when it is forked, and it answers only them.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <mutex>

#include "net/tls.hpp"

namespace maild::daemon {

class PrivilegedHelper {
 public:
  // Forks the helper. Call as root, before any thread starts and before
  // drop_privileges(). Throws std::runtime_error when it cannot.
  // Empty paths: that service is not offered.
  PrivilegedHelper(std::filesystem::path cert, std::filesystem::path key,
                   std::filesystem::path log_file, std::filesystem::path pid_file);
  // Closes the socket: the helper removes the pid file and exits; waits for
  // that up to limits::privileged_helper_wait.
  ~PrivilegedHelper();
  PrivilegedHelper(const PrivilegedHelper&) = delete;
  PrivilegedHelper& operator=(const PrivilegedHelper&) = delete;

  // Reads both files through the helper. Throws std::runtime_error naming the
  // setting, the file and the reason ("tls.key /etc/...: Permission denied").
  // Blocks up to limits::privileged_helper_wait: call it off the I/O threads.
  net::PemFiles read_tls_files();

  // Opens [log] file for appending through the helper; returns the descriptor.
  // Throws std::runtime_error naming the file and the reason. Blocks up to
  // limits::privileged_helper_wait: call it off the I/O threads.
  int open_log_file();

 private:
  std::mutex mutex_;  // one request at a time
  bool broken_ = false;
  int socket_ = -1;
  pid_t pid_ = -1;
  std::filesystem::path cert_;
  std::filesystem::path key_;
  std::filesystem::path log_file_;
};

}  // namespace maild::daemon
