// format_reply: single and multi-line replies with enhanced status codes.
#include <gtest/gtest.h>

#include "smtp/reply.hpp"

namespace maild::smtp {
namespace {

TEST(SmtpReply, SingleLineWithEnhancedCode) {
  EXPECT_EQ(format_reply(250, "2.0.0", "OK"), "250 2.0.0 OK\r\n");
}

TEST(SmtpReply, GreetingWithoutEnhancedCode) {
  EXPECT_EQ(format_reply(220, "", "mx.example ESMTP maild"), "220 mx.example ESMTP maild\r\n");
}

TEST(SmtpReply, MultiLineUsesDashUntilTheLastLine) {
  EXPECT_EQ(format_reply(250, "", "mx.example\nPIPELINING\nSIZE 1000"),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
}

TEST(SmtpReply, StrayCarriageReturnsAreNotSentRaw) {
  EXPECT_EQ(format_reply(500, "5.5.2", "a\r\nb"), "500-5.5.2 a\r\n500 5.5.2 b\r\n");
}

}  // namespace
}  // namespace maild::smtp
