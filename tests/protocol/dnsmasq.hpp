// A private dnsmasq for tests: on a free loopback port (UDP and TCP), serving
// only the records a test gives it, started and stopped by PID. Every wait is
// bounded. Used by the resolver's tests and the GET authorisation tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace maild::testing {

inline std::string dnsmasq_path() {
  for (const char* candidate : {"/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

// A loopback port free for both UDP and TCP right now.
inline std::uint16_t free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    std::uint16_t port = 0;
    if (::bind(udp, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::getsockname(udp, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
      const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
      if (::bind(tcp, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) port = 0;
      ::close(tcp);
    }
    ::close(udp);
    if (port != 0) return port;
  }
  return 0;
}

// True once the server on `port` answers a query (any answer will do).
inline bool answers(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval wait{0, 100'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  // id 0x4242, RD, one question: mx.test IN MX.
  const unsigned char query[] = {0x42, 0x42, 0x01, 0x00, 0,   1,   0,   0, 0, 0,  0, 0, 2,
                                 'm',  'x',  4,    't',  'e', 's', 't', 0, 0, 15, 0, 1};
  unsigned char reply[512];
  const bool ok = ::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&address),
                           sizeof address) > 0 &&
                  ::recv(fd, reply, sizeof reply, 0) >= 12 && reply[0] == 0x42 && reply[1] == 0x42;
  ::close(fd);
  return ok;
}

// A private dnsmasq in the foreground, logging to a file, stopped by PID.
class Dnsmasq {
 public:
  // Starts it on a free port; retries a few ports if one was taken meanwhile.
  // `zone`: dnsmasq options that make up what it serves (--mx-host=..., --host-record=...).
  bool start(const std::string& binary, const std::filesystem::path& folder,
             const std::vector<std::string>& zone) {
    log_ = folder / "dnsmasq.log";
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (port_ == 0) continue;
      // --keep-in-foreground, not --no-daemon: in debug mode dnsmasq serves a
      // TCP connection inline, and c-ares keeps its TCP connection open.
      std::vector<std::string> args = {binary,
                                       "--keep-in-foreground",
                                       "--port=" + std::to_string(port_),
                                       "--listen-address=127.0.0.1",
                                       "--bind-interfaces",
                                       "--no-resolv",
                                       "--no-hosts",
                                       "--conf-file=/dev/null",
                                       "--pid-file=",
                                       "--log-facility=-",
                                       "--log-queries"};
      args.insert(args.end(), zone.begin(), zone.end());
      if (!spawn(args)) return false;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        if (answers(port_)) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // died, e.g. the port was taken
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      stop();
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  std::uint16_t port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  bool spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    const int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) pid_ = -1;
    return error == 0;
  }

  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::filesystem::path log_;
};

}  // namespace maild::testing
