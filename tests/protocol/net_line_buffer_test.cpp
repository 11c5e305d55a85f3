// LineBuffer: only CRLF ends a line, limits hold at and past their edge.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/line_buffer.hpp"

namespace maild::net {
namespace {

std::vector<Line> drain(LineBuffer& buffer) {
  std::vector<Line> out;
  while (auto line = buffer.next()) out.push_back(*line);
  return out;
}

TEST(LineBuffer, SplitsOnCrlfOnly) {
  LineBuffer buffer(512);
  buffer.append("NOOP\r\nA\nB\rC\r\n");
  auto lines = drain(buffer);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "NOOP");
  EXPECT_EQ(lines[1].text, "A\nB\rC");  // bare LF and bare CR are data
  EXPECT_FALSE(buffer.has_pending());
}

TEST(LineBuffer, LineArrivingByteByByte) {
  LineBuffer buffer(512);
  const std::string input = "QUIT\r\n";
  for (std::size_t i = 0; i + 1 < input.size(); ++i) {
    buffer.append(input.substr(i, 1));
    EXPECT_FALSE(buffer.next().has_value()) << i;
  }
  buffer.append("\n");
  auto line = buffer.next();
  ASSERT_TRUE(line);
  EXPECT_EQ(line->text, "QUIT");
}

TEST(LineBuffer, CrAtChunkBoundary) {
  LineBuffer buffer(512);
  buffer.append("NOOP\r");
  EXPECT_FALSE(buffer.next());
  buffer.append("\nQUIT\r\n");
  auto lines = drain(buffer);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "NOOP");
  EXPECT_EQ(lines[1].text, "QUIT");
}

TEST(LineBuffer, LimitCountsTheCrlf) {
  LineBuffer buffer(10);
  buffer.append(std::string(8, 'a') + "\r\n");  // exactly 10 octets: allowed
  auto at_edge = buffer.next();
  ASSERT_TRUE(at_edge);
  EXPECT_FALSE(at_edge->too_long);
  EXPECT_EQ(at_edge->text, std::string(8, 'a'));

  buffer.append(std::string(9, 'b') + "\r\nNEXT\r\n");  // 11 octets: too long
  auto past_edge = buffer.next();
  ASSERT_TRUE(past_edge);
  EXPECT_TRUE(past_edge->too_long);
  auto next = buffer.next();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->text, "NEXT");
}

TEST(LineBuffer, OverlongLineIsDiscardedWhileArrivingWithBoundedMemory) {
  LineBuffer buffer(16);
  for (int i = 0; i < 1000; ++i) {
    buffer.append(std::string(100, 'x'));
    EXPECT_FALSE(buffer.next().has_value());
  }
  buffer.append("tail\r");
  EXPECT_FALSE(buffer.next().has_value());
  buffer.append("\nNOOP\r\n");
  auto dropped = buffer.next();
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(dropped->too_long);
  auto next = buffer.next();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->text, "NOOP");
  EXPECT_FALSE(buffer.has_pending());
}

TEST(LineBuffer, PipelinedLinesComeOutInOrder) {
  LineBuffer buffer(512);
  buffer.append("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\npartial");
  auto lines = drain(buffer);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].text, "DATA");
  EXPECT_TRUE(buffer.has_pending());
  buffer.clear();
  EXPECT_FALSE(buffer.has_pending());
}

TEST(LineBuffer, PrepareAndCommitPartially) {
  LineBuffer buffer(512);
  auto space = buffer.prepare(64);
  const std::string data = "NOOP\r\n";
  std::copy(data.begin(), data.end(), space.begin());
  buffer.commit(data.size());
  auto line = buffer.next();
  ASSERT_TRUE(line);
  EXPECT_EQ(line->text, "NOOP");
  EXPECT_FALSE(buffer.has_pending());
}

}  // namespace
}  // namespace maild::net
