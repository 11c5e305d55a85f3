// The privileged helper; see privileged_helper.hpp.
//
// Protocol: maild writes one byte. 'T': the helper answers, for tls.cert and
// then tls.key, a header {int32 errno, uint32 size} and `size` bytes of the
// file (errno 0) or nothing (errno set). 'L': the helper opens [log] file for
// appending and answers a header {errno, 0} carrying the descriptor
// (SCM_RIGHTS) when errno is 0. End of file on the socket: maild has gone; the
// helper removes the pid file and exits.
#include "daemon/privileged_helper.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "maild/config/limits.hpp"

namespace maild::daemon {

namespace {

constexpr char read_tls_request = 'T';
constexpr char open_log_request = 'L';

struct Header {
  std::int32_t error;
  std::uint32_t size;
};

bool write_all(int fd, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const auto n = send(fd, bytes, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The helper's answer for one file.
bool send_file(int socket, const std::filesystem::path& file) {
  Header header{0, 0};
  std::string text;
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) header.error = errno;
  char buffer[16384];
  while (fd >= 0 && header.error == 0) {
    const auto n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) header.error = errno;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > limits::tls_file_max.bytes) header.error = EFBIG;
  }
  if (fd >= 0) close(fd);
  OPENSSL_cleanse(buffer, sizeof buffer);
  if (header.error != 0) {
    OPENSSL_cleanse(text.data(), text.size());
    text.clear();
  }
  header.size = static_cast<std::uint32_t>(text.size());
  const bool sent =
      write_all(socket, &header, sizeof header) && write_all(socket, text.data(), text.size());
  OPENSSL_cleanse(text.data(), text.size());
  return sent;
}

// The helper's answer to 'L': the header, with the open descriptor attached.
bool send_log_file(int socket, const std::filesystem::path& file) {
  Header header{0, 0};
  const int fd = open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) header.error = errno;
  iovec part{&header, sizeof header};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* attached = CMSG_FIRSTHDR(&message);
    attached->cmsg_level = SOL_SOCKET;
    attached->cmsg_type = SCM_RIGHTS;
    attached->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(attached), &fd, sizeof fd);
  }
  ssize_t sent = -1;
  do {
    sent = sendmsg(socket, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (fd >= 0) close(fd);
  return sent == static_cast<ssize_t>(sizeof header);
}

[[noreturn]] void serve(int socket, const std::filesystem::path& cert,
                        const std::filesystem::path& key, const std::filesystem::path& log_file,
                        const std::filesystem::path& pid_file) {
  // maild's signals are for maild: the helper ends when maild's end of the socket closes.
  for (const int signal : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE}) ::signal(signal, SIG_IGN);
  prctl(PR_SET_NAME, "maild-priv", 0, 0, 0);
  for (;;) {
    char request = 0;
    const auto n = recv(socket, &request, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (request == read_tls_request) {
      if (!send_file(socket, cert) || !send_file(socket, key)) break;
    } else if (request == open_log_request && !log_file.empty()) {
      if (!send_log_file(socket, log_file)) break;
    } else {
      break;
    }
  }
  if (!pid_file.empty()) unlink(pid_file.c_str());
  std::_Exit(0);
}

// Reads exactly `size` bytes, or throws when the helper is gone or silent past the deadline.
void read_exactly(int fd, void* data, std::size_t size,
                  std::chrono::steady_clock::time_point deadline) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd ready{fd, POLLIN, 0};
    const int polled = left.count() > 0 ? poll(&ready, 1, static_cast<int>(left.count())) : 0;
    if (polled < 0 && errno == EINTR) continue;
    if (polled == 0) throw std::runtime_error("the privileged helper did not answer in time");
    const auto n = polled > 0 ? recv(fd, bytes, size, 0) : -1;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("the privileged helper has gone");
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

struct Answer {
  int error = 0;
  std::string text;
};

Answer receive_file(int fd, std::chrono::steady_clock::time_point deadline) {
  Header header{};
  read_exactly(fd, &header, sizeof header, deadline);
  if (header.size > limits::tls_file_max.bytes)
    throw std::runtime_error("the privileged helper sent an oversized answer");
  Answer answer{header.error, std::string(header.size, '\0')};
  read_exactly(fd, answer.text.data(), answer.text.size(), deadline);
  return answer;
}

void check(const Answer& answer, std::string_view setting, const std::filesystem::path& file) {
  if (answer.error == 0) return;
  const std::string reason =
      answer.error == EFBIG ? "larger than " + std::to_string(limits::tls_file_max.bytes) + " bytes"
                            : std::strerror(answer.error);
  throw std::runtime_error(std::string(setting) + " " + file.string() + ": " + reason);
}

}  // namespace

PrivilegedHelper::PrivilegedHelper(std::filesystem::path cert, std::filesystem::path key,
                                   std::filesystem::path log_file, std::filesystem::path pid_file)
    : cert_(std::move(cert)), key_(std::move(key)), log_file_(std::move(log_file)) {
  int ends[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
    throw std::runtime_error(std::string("privileged helper: socketpair: ") + std::strerror(errno));
  const pid_t child = fork();
  if (child < 0) {
    const int error = errno;
    close(ends[0]);
    close(ends[1]);
    throw std::runtime_error(std::string("privileged helper: fork: ") + std::strerror(error));
  }
  if (child == 0) {
    // Keep only the socket (as fd 3): no listener, no ready pipe, no terminal.
    const int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd <= 2; ++fd) dup2(null, fd);
    dup2(ends[1], 3);
    close_range(4, ~0U, 0);
    serve(3, cert_, key_, log_file_, pid_file);
  }
  close(ends[1]);
  socket_ = ends[0];
  pid_ = child;
}

PrivilegedHelper::~PrivilegedHelper() {
  close(socket_);
  const auto deadline = std::chrono::steady_clock::now() + limits::privileged_helper_wait;
  while (waitpid(pid_, nullptr, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

net::PemFiles PrivilegedHelper::read_tls_files() {
  std::lock_guard lock(mutex_);
  // After a lost answer the stream is out of step for good: say so rather than misread it.
  if (broken_) throw std::runtime_error("the privileged helper stopped answering earlier");
  const auto deadline = std::chrono::steady_clock::now() + limits::privileged_helper_wait;
  Answer cert;
  Answer key;
  try {
    if (!write_all(socket_, &read_tls_request, 1))
      throw std::runtime_error("the privileged helper has gone");
    cert = receive_file(socket_, deadline);
    key = receive_file(socket_, deadline);
  } catch (...) {
    broken_ = true;
    throw;
  }
  net::PemFiles files;
  files.cert = std::move(cert.text);
  files.key = std::move(key.text);
  OPENSSL_cleanse(key.text.data(), key.text.size());
  check(cert, "tls.cert", cert_);
  check(key, "tls.key", key_);
  return files;
}

}  // namespace maild::daemon

namespace maild::daemon {

int PrivilegedHelper::open_log_file() {
  std::lock_guard lock(mutex_);
  if (broken_) throw std::runtime_error("the privileged helper stopped answering earlier");
  const auto deadline = std::chrono::steady_clock::now() + limits::privileged_helper_wait;
  Header header{};
  int fd = -1;
  try {
    if (!write_all(socket_, &open_log_request, 1))
      throw std::runtime_error("the privileged helper has gone");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd ready{socket_, POLLIN, 0};
    if (poll(&ready, 1, static_cast<int>(std::max<long>(left.count(), 0))) <= 0)
      throw std::runtime_error("the privileged helper did not answer in time");
    iovec part{&header, sizeof header};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    // The header is 8 bytes on a stream socket the helper writes in one sendmsg: it comes whole.
    const auto n = recvmsg(socket_, &message, MSG_CMSG_CLOEXEC);
    if (n != static_cast<ssize_t>(sizeof header))
      throw std::runtime_error("the privileged helper has gone");
    for (cmsghdr* attached = CMSG_FIRSTHDR(&message); attached != nullptr;
         attached = CMSG_NXTHDR(&message, attached)) {
      if (attached->cmsg_level == SOL_SOCKET && attached->cmsg_type == SCM_RIGHTS)
        std::memcpy(&fd, CMSG_DATA(attached), sizeof fd);
    }
  } catch (...) {
    broken_ = true;
    throw;
  }
  if (header.error != 0)
    throw std::runtime_error("log.file " + log_file_.string() + ": " + std::strerror(header.error));
  if (fd < 0) throw std::runtime_error("log.file " + log_file_.string() + ": no descriptor came");
  return fd;
}

}  // namespace maild::daemon
