// The session transcript: bounded, oldest lines dropped first, secrets redacted.
#include <gtest/gtest.h>

#include <string>

#include "smtp/status.hpp"
#include "smtp/transcript.hpp"

namespace maild::smtp {
namespace {

TEST(SmtpTranscript, KeepsBothDirectionsInOrder) {
  Transcript t;
  t.client("EHLO client.example");
  t.server("250-mx.example greets client.example\r\n250 HELP\r\n");
  EXPECT_EQ(t.text(),
            "< EHLO client.example\n> 250-mx.example greets client.example\n> 250 HELP\n");
  EXPECT_EQ(t.dropped(), 0u);
}

TEST(SmtpTranscript, DropsTheOldestLinesPastItsBudgetAndSaysSo) {
  Transcript t(40);
  t.client("0123456789");  // 12 bytes with its prefix
  t.client("abcdefghij");
  t.client("ABCDEFGHIJ");
  EXPECT_EQ(t.dropped(), 0u);  // 36 bytes: at most 40
  t.client("klmnopqrst");      // 48: the first goes
  EXPECT_EQ(t.dropped(), 1u);
  EXPECT_EQ(t.text(), "[1 earlier lines dropped]\n< abcdefghij\n< ABCDEFGHIJ\n< klmnopqrst\n");
}

TEST(SmtpTranscript, CutsOverlongLines) {
  Transcript t;
  t.client(std::string(Transcript::line_max + 100, 'x'));
  const auto text = t.text();
  EXPECT_EQ(text, "< " + std::string(Transcript::line_max, 'x') + " [cut]\n");
}

TEST(SmtpTranscript, ALineLargerThanTheWholeBudgetLeavesNothingBehind) {
  Transcript t(16);
  t.client("this line is longer than sixteen bytes");
  EXPECT_EQ(t.dropped(), 1u);
  EXPECT_EQ(t.text(), "[1 earlier lines dropped]\n");
}

TEST(SmtpTranscript, RedactsAuthAndTokens) {
  EXPECT_EQ(redact_command("AUTH PLAIN AGJvYgBzZWNyZXQ="), "AUTH PLAIN ...");
  EXPECT_EQ(redact_command("auth login"), "auth login ...");
  EXPECT_EQ(redact_command("SOURCE 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"), "SOURCE 5f0c2e8a...");
  EXPECT_EQ(redact_command("get   5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"), "get   5f0c2e8a...");
  EXPECT_EQ(redact_command("MAIL FROM:<a@b.example>"), "MAIL FROM:<a@b.example>");
  EXPECT_EQ(redact_command("SOURCE"), "SOURCE");
}

TEST(SmtpStatus, PermanentIsFiveHundredAndUp) {
  EXPECT_TRUE(status::bad_sequence.permanent());
  EXPECT_TRUE(status::refused.permanent());
  EXPECT_FALSE(status::local_error.permanent());
  EXPECT_FALSE(status::ok.permanent());
  EXPECT_EQ(status::refused.enhanced, "5.7.1");
}

}  // namespace
}  // namespace maild::smtp
