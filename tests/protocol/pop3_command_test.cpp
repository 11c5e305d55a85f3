// POP3 command parsing, byte-stuffing and TOP's cut: table-driven.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "pop3/command.hpp"

namespace maild::pop3 {
namespace {

struct Row {
  const char* line;
  Verb verb;
  const char* argument;
  std::optional<std::uint64_t> number;
  std::optional<std::uint64_t> lines;
};

class Parses : public ::testing::TestWithParam<Row> {};

TEST_P(Parses, AsExpected) {
  const auto& row = GetParam();
  const auto parsed = parse_command(row.line);
  ASSERT_TRUE(std::holds_alternative<Command>(parsed))
      << row.line << ": " << std::get<std::string>(parsed);
  const auto& command = std::get<Command>(parsed);
  EXPECT_EQ(command.verb, row.verb) << row.line;
  EXPECT_EQ(command.argument, row.argument) << row.line;
  EXPECT_EQ(command.number, row.number) << row.line;
  EXPECT_EQ(command.lines, row.lines) << row.line;
}

INSTANTIATE_TEST_SUITE_P(
    Lines, Parses,
    ::testing::Values(
        Row{"USER bob@example.test", Verb::user, "bob@example.test", {}, {}},
        Row{"user bob", Verb::user, "bob", {}, {}},
        Row{"PASS with spaces inside", Verb::pass, "with spaces inside", {}, {}},
        Row{"AUTH PLAIN AGJvYgBzZWNyZXQ=", Verb::auth, "PLAIN AGJvYgBzZWNyZXQ=", {}, {}},
        Row{"AUTH PLAIN", Verb::auth, "PLAIN", {}, {}}, Row{"STLS", Verb::stls, "", {}, {}},
        Row{"CAPA", Verb::capa, "", {}, {}}, Row{"STAT", Verb::stat, "", {}, {}},
        Row{"LIST", Verb::list, "", {}, {}}, Row{"LIST 3", Verb::list, "", 3, {}},
        Row{"UIDL", Verb::uidl, "", {}, {}}, Row{"UIDL 12", Verb::uidl, "", 12, {}},
        Row{"RETR 1", Verb::retr, "", 1, {}}, Row{"DELE 2", Verb::dele, "", 2, {}},
        Row{"RSET", Verb::rset, "", {}, {}}, Row{"NOOP", Verb::noop, "", {}, {}},
        Row{"TOP 1 0", Verb::top, "", 1, 0}, Row{"top 4 10", Verb::top, "", 4, 10},
        Row{"QUIT", Verb::quit, "", {}, {}},
        Row{"APOP bob 0123456789abcdef", Verb::unknown, "", {}, {}},
        Row{"XTND", Verb::unknown, "", {}, {}}));

class Refuses : public ::testing::TestWithParam<const char*> {};

TEST_P(Refuses, WithAReason) {
  const auto parsed = parse_command(GetParam());
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << GetParam();
  EXPECT_FALSE(std::get<std::string>(parsed).empty());
}

INSTANTIATE_TEST_SUITE_P(Lines, Refuses,
                         ::testing::Values("USER", "USER a b", "PASS", "RETR", "RETR x", "RETR -1",
                                           "RETR 1 2", "DELE", "LIST a", "LIST 1 2", "TOP 1",
                                           "TOP a b", "TOP 1 2 3", "STAT now", "QUIT now",
                                           "RETR 99999999999999999999999", "USER a\tb", "NOOP\x01",
                                           "AUTH", "AUTH  PLAIN"));

TEST(Parse, ArgumentsLongerThan40OctetsAsRfc2449Allows) {
  const std::string address = "firstname.lastname.department@example.test";  // 42 octets
  const auto parsed = parse_command("USER " + address);
  ASSERT_TRUE(std::holds_alternative<Command>(parsed));
  EXPECT_EQ(std::get<Command>(parsed).argument, address);
}

TEST(ByteStuffer, DoublesLeadingDotsAndEnds) {
  ByteStuffer stuffer;
  std::string out;
  stuffer.append("a\r\n.b\r\n..c\r\n.\r\nx.y\r\n", out);
  stuffer.finish(out);
  EXPECT_EQ(out, "a\r\n..b\r\n...c\r\n..\r\nx.y\r\n.\r\n");
}

TEST(ByteStuffer, LeadingDotOfTheWholeMessage) {
  ByteStuffer stuffer;
  std::string out;
  stuffer.append(".first\r\n", out);
  stuffer.finish(out);
  EXPECT_EQ(out, "..first\r\n.\r\n");
}

TEST(ByteStuffer, BareLfDoesNotStartALine) {
  ByteStuffer stuffer;
  std::string out;
  stuffer.append("a\n.b\r\n", out);
  stuffer.finish(out);
  EXPECT_EQ(out, "a\n.b\r\n.\r\n");
}

TEST(ByteStuffer, SameResultInEveryChunking) {
  const std::string text = "x\r\n.a\r\n\r\n..\r\n.";
  ByteStuffer whole;
  std::string expected;
  whole.append(text, expected);
  whole.finish(expected);
  for (std::size_t at = 0; at <= text.size(); ++at) {
    ByteStuffer split;
    std::string out;
    split.append(text.substr(0, at), out);
    split.append(text.substr(at), out);
    split.finish(out);
    EXPECT_EQ(out, expected) << at;
  }
}

TEST(ByteStuffer, AddsTheMissingFinalCrlf) {
  ByteStuffer stuffer;
  std::string out;
  stuffer.append("no end", out);
  stuffer.finish(out);
  EXPECT_EQ(out, "no end\r\n.\r\n");
}

TEST(Top, HeaderAndLines) {
  const std::string message = "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
  EXPECT_EQ(top_of(message, 0), "A: 1\r\nB: 2\r\n\r\n");
  EXPECT_EQ(top_of(message, 2), "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n");
  EXPECT_EQ(top_of(message, 3), message);
  EXPECT_EQ(top_of(message, 99), message);
  EXPECT_EQ(top_of("A: only header\r\n", 5), "A: only header\r\n");
}

}  // namespace
}  // namespace maild::pop3
