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

std::string check_user(const std::string& user) {
  if (user.empty() || getpwnam(user.c_str()) != nullptr) return {};
  return "server.user: no such user: " + user;
}

namespace {

std::string running_as() {
  const passwd* entry = getpwuid(geteuid());
  return entry != nullptr ? entry->pw_name : "uid " + std::to_string(geteuid());
}

// "owner root, mode 0644", for the message that says why maild cannot write a file.
std::string owner_and_mode(const std::filesystem::path& path) {
  struct stat status {};
  if (stat(path.c_str(), &status) != 0) return errno_text();
  const passwd* owner = getpwuid(status.st_uid);
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
  return "owner " +
         (owner != nullptr ? std::string(owner->pw_name) : std::to_string(status.st_uid)) +
         ", mode " + mode;
}

void require_access(const std::filesystem::path& path, int how, std::string_view what) {
  if (access(path.c_str(), how) == 0) return;
  const std::string reason = errno_text();
  throw std::runtime_error("store.path: " + std::string(what) + " " + path.string() + " (" +
                           owner_and_mode(path) + ") is not writable by maild running as " +
                           running_as() + ": " + reason);
}

}  // namespace

void check_store_access(const config::Settings& settings) {
  if (settings.store.backend != config::StoreBackend::sqlite) return;
  const auto& path = settings.store.path;
  std::error_code ignored;
  auto folder = path.parent_path();
  if (folder.empty()) folder = ".";
  // A missing folder is made by maild: then its nearest existing ancestor must be writable.
  while (!std::filesystem::exists(folder, ignored) && folder.has_parent_path() &&
         folder != folder.parent_path())
    folder = folder.parent_path();
  require_access(folder, W_OK | X_OK, "the store's folder");
  if (!std::filesystem::exists(path, ignored)) return;
  require_access(path, R_OK | W_OK, "the store");
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::filesystem::path companion(path.string() + suffix);
    if (std::filesystem::exists(companion, ignored))
      require_access(companion, R_OK | W_OK, "the store's file");
  }
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
