// Process lifecycle; see lifecycle.hpp.
#include "daemon/lifecycle.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace maild::daemon {

namespace {
int ready_pipe = -1;  // write end, held by the detached child until start-up ends

std::string errno_text() { return std::strerror(errno); }
}  // namespace

void detach() {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe: " + errno_text());
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error("fork: " + errno_text());
  if (child > 0) {
    close(fds[1]);
    char status = 0;
    const auto n = read(fds[0], &status, 1);
    if (n == 1 && status == 'R') std::_Exit(0);
    int wstatus = 0;
    waitpid(child, &wstatus, WNOHANG);
    std::_Exit(1);
  }
  close(fds[0]);
  ready_pipe = fds[1];
  if (setsid() < 0) throw std::runtime_error("setsid: " + errno_text());
  const int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    // stderr stays until report_ready(): start-up errors still reach the terminal.
    if (null > STDERR_FILENO) close(null);
  }
}

void report_ready() {
  if (ready_pipe < 0) return;
  const char ready = 'R';
  [[maybe_unused]] const auto n = write(ready_pipe, &ready, 1);
  close(ready_pipe);
  ready_pipe = -1;
  const int null = open("/dev/null", O_WRONLY);
  if (null >= 0) {
    dup2(null, STDERR_FILENO);
    close(null);
  }
}

void write_pid_file(const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::trunc);
  out << getpid() << '\n';
  if (!out.flush()) throw std::runtime_error("server.pid_file " + file.string() + ": cannot write");
}

void remove_pid_file(const std::filesystem::path& file) {
  std::error_code ignored;
  std::filesystem::remove(file, ignored);
}

void drop_privileges(const std::string& user) {
  if (user.empty()) return;
  errno = 0;
  const passwd* entry = getpwnam(user.c_str());
  if (entry == nullptr) throw std::runtime_error("server.user: no such user: " + user);
  if (geteuid() != 0) {
    if (geteuid() == entry->pw_uid) return;
    throw std::runtime_error("server.user: cannot switch to " + user + " without root");
  }
  if (initgroups(entry->pw_name, entry->pw_gid) != 0 || setgid(entry->pw_gid) != 0 ||
      setuid(entry->pw_uid) != 0)
    throw std::runtime_error("server.user: cannot switch to " + user + ": " + errno_text());
  if (entry->pw_uid != 0 && setuid(0) == 0)
    throw std::runtime_error("server.user: root could be regained after switching to " + user);
}

unsigned long raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<unsigned long>(limit.rlim_cur);
}

void notify(std::string_view state) {
  const std::string text(state);
  sd_notify(0, text.c_str());
}

}  // namespace maild::daemon
