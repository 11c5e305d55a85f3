// maild's log line: UTC timestamp with its offset, level, one line per entry, journal priority.
#include <gtest/gtest.h>

#include <chrono>

#include "daemon/log.hpp"

namespace maild::daemon {
namespace {

using namespace std::chrono_literals;

// 2026-12-08T00:10:20.123Z
const spdlog::log_clock::time_point when{
    std::chrono::sys_days{std::chrono::year{2026} / 12 / 8}.time_since_epoch() + 10min + 20s +
    123ms};

TEST(LogLine, UtcTimestampWithOffsetThenLevelThenText) {
  EXPECT_EQ(format_line(spdlog::level::info, when, "maild ready", false),
            "2026-12-08T00:10:20.123+00:00 info maild ready\n");
}

TEST(LogLine, CarriageReturnAndLineFeedInsideAnEntryAreEscaped) {
  EXPECT_EQ(format_line(spdlog::level::debug, when, "a\r\nb\nc\rd", false),
            "2026-12-08T00:10:20.123+00:00 debug a\\r\\nb\\nc\\rd\n");
}

TEST(LogLine, OtherControlCharactersAreEscapedButTab) {
  EXPECT_EQ(format_line(spdlog::level::info, when, "a\x1b[31mb\tc\x7f", false),
            "2026-12-08T00:10:20.123+00:00 info a\\x1b[31mb\tc\\x7f\n");
}

TEST(LogLine, JournalLinesStartWithTheSyslogPriority) {
  const std::pair<spdlog::level::level_enum, const char*> cases[] = {
      {spdlog::level::trace, "<7>"}, {spdlog::level::debug, "<7>"},
      {spdlog::level::info, "<6>"},  {spdlog::level::warn, "<4>"},
      {spdlog::level::err, "<3>"},   {spdlog::level::critical, "<2>"}};
  for (const auto& [level, prefix] : cases) {
    const auto line = format_line(level, when, "x", true);
    EXPECT_EQ(line.rfind(prefix, 0), 0U) << line;
    EXPECT_EQ(line.substr(3, 30), "2026-12-08T00:10:20.123+00:00 ");
  }
}

TEST(LogLine, MillisecondsAreZeroPadded) {
  EXPECT_EQ(format_line(spdlog::level::warn, when - 120ms, "x", false),
            "2026-12-08T00:10:20.003+00:00 warning x\n");
}

}  // namespace
}  // namespace maild::daemon
