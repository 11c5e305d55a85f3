// maild's log sink; see log.hpp.
#include "daemon/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace maild::daemon {

namespace {

// syslog(3) priorities: what journald reads from a "<N>" prefix.
int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

std::FILE* open_log_file(const std::filesystem::path& file) {
  std::FILE* stream = std::fopen(file.c_str(), "ae");
  if (stream == nullptr)
    throw std::runtime_error("log.file " + file.string() + ": " + std::strerror(errno));
  return stream;
}

// Writes whole lines to stderr or to a file that reopen() replaces.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  LineSink(std::filesystem::path file, bool journal) : file_(std::move(file)), journal_(journal) {
    stream_ = file_.empty() ? stderr : open_log_file(file_);
  }
  ~LineSink() override {
    if (stream_ != stderr) std::fclose(stream_);
  }

  std::string reopen(const LogOpener& opener) {
    if (file_.empty()) return {};
    std::FILE* fresh = nullptr;
    try {
      if (opener) {
        const int fd = opener();
        fresh = fdopen(fd, "a");
        if (fresh == nullptr) {
          const int error = errno;
          close(fd);
          return "log.file " + file_.string() + ": " + std::strerror(error);
        }
      } else {
        fresh = open_log_file(file_);
      }
    } catch (const std::exception& e) {
      return e.what();
    }
    std::lock_guard lock(mutex_);
    std::fclose(stream_);
    stream_ = fresh;
    return {};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto line = format_line(
        msg.level, msg.time, std::string_view(msg.payload.data(), msg.payload.size()), journal_);
    std::fwrite(line.data(), 1, line.size(), stream_);
    std::fflush(stream_);
  }
  void flush_() override { std::fflush(stream_); }

 private:
  std::filesystem::path file_;
  bool journal_;
  std::FILE* stream_;
};

std::shared_ptr<LineSink> sink;  // the default logger's, for reopen_log()
LogOpener opener;                // how reopen_log() opens the file; empty: itself

}  // namespace

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::trace:
      return spdlog::level::trace;
    case config::LogLevel::debug:
      return spdlog::level::debug;
    case config::LogLevel::info:
      return spdlog::level::info;
    case config::LogLevel::warn:
      return spdlog::level::warn;
    case config::LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat status {};
  if (fstat(STDERR_FILENO, &status) != 0) return false;
  return status.st_dev == device && status.st_ino == inode;
}

std::string format_line(spdlog::level::level_enum level, spdlog::log_clock::time_point when,
                        std::string_view text, bool journal) {
  std::string line;
  line.reserve(text.size() + 48);
  if (journal) line += "<" + std::to_string(syslog_priority(level)) + ">";
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t whole = seconds.count();
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char stamp[48];
  const auto length = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(stamp + length, sizeof stamp - length, ".%03d+00:00 ", static_cast<int>(millis));
  line += stamp;
  const auto name = spdlog::level::to_string_view(level);
  line.append(name.data(), name.size());
  line += ' ';
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\r') {
      line += "\\r";
    } else if (c == '\n') {
      line += "\\n";
    } else if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
      // Other control characters (a terminal's escape sequences) as \xNN.
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      line += escaped;
    } else {
      line += c;
    }
  }
  line += '\n';
  return line;
}

void setup_logging(const config::LogSettings& log) {
  auto line_sink = std::make_shared<LineSink>(log.file, log.file.empty() && stderr_is_journal());
  auto logger = std::make_shared<spdlog::logger>("maild", line_sink);
  logger->set_level(to_spdlog(log.level));
  spdlog::set_default_logger(std::move(logger));
  sink = std::move(line_sink);
}

void set_log_opener(LogOpener open) { opener = std::move(open); }

std::string reopen_log() { return sink ? sink->reopen(opener) : std::string(); }

}  // namespace maild::daemon
