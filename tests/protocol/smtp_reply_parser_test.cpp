// Remote SMTP replies: codes, multi-line replies, enhanced status codes,
// malformed and over-long ones, one row per case; then EHLO extensions.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "smtp/limits.hpp"
#include "smtp/reply_parser.hpp"

namespace maild::smtp {
namespace {

struct ReplyCase {
  std::string name;
  std::string wire;
  ServerReply expected;  // code 0: malformed
  std::string summary;   // expected summary() when well-formed
};

ReplyCase good(std::string name, std::string wire, ServerReply expected, std::string summary) {
  return {std::move(name), std::move(wire), std::move(expected), std::move(summary)};
}
ReplyCase bad(std::string name, std::string wire) {
  return {std::move(name), std::move(wire), ServerReply{}, ""};
}

const std::vector<ReplyCase> reply_cases = {
    good("greeting", "220 mx.example.org ESMTP\r\n", {220, "", {"mx.example.org ESMTP"}},
         "220 2.0.0 mx.example.org ESMTP"),
    good("enhanced", "250 2.1.5 Ok\r\n", {250, "2.1.5", {"Ok"}}, "250 2.1.5 Ok"),
    good("enhanced with long parts", "550 5.123.456 no\r\n", {550, "5.123.456", {"no"}},
         "550 5.123.456 no"),
    good("enhanced alone", "250 2.0.0\r\n", {250, "2.0.0", {""}}, "250 2.0.0"),
    good("code alone", "250\r\n", {250, "", {""}}, "250 2.0.0"),
    good("code and space", "354 \r\n", {354, "", {""}}, "354 3.0.0"),
    good("multi-line", "250-mx greets you\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
         {250, "", {"mx greets you", "PIPELINING", "SIZE 1000"}},
         "250 2.0.0 mx greets you; PIPELINING; SIZE 1000"),
    good("multi-line enhanced on every line",
         "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
         {550, "5.7.1", {"first", "second", "third"}}, "550 5.7.1 first; second; third"),
    good("continuation without text", "250-\r\n250 last\r\n", {250, "", {"", "last"}},
         "250 2.0.0 last"),
    good("enhanced class must match the code", "451 5.1.1 odd\r\n", {451, "", {"5.1.1 odd"}},
         "451 4.0.0 5.1.1 odd"),
    good("enhanced subject of four digits is text", "250 2.1234.5 x\r\n", {250, "", {"2.1234.5 x"}},
         "250 2.0.0 2.1234.5 x"),
    good("enhanced glued to text is text", "250 2.1.5Ok\r\n", {250, "", {"2.1.5Ok"}},
         "250 2.0.0 2.1.5Ok"),
    good("tab and eight-bit text", "550 5.1.1 nicht\tzust\xc3\xa4ndig\r\n",
         {550, "5.1.1", {"nicht\tzust\xc3\xa4ndig"}}, "550 5.1.1 nicht?zust??ndig"),
    good("421", "421 4.3.2 shutting down\r\n", {421, "4.3.2", {"shutting down"}},
         "421 4.3.2 shutting down"),
    good("559 is the highest", "559 x\r\n", {559, "", {"x"}}, "559 5.0.0 x"),
    bad("empty line", "\r\n"),
    bad("two digits", "25\r\n"),
    bad("letters", "abc hello\r\n"),
    bad("first digit 1", "150 nope\r\n"),
    bad("first digit 6", "650 nope\r\n"),
    bad("second digit 6", "260 nope\r\n"),
    bad("third digit a letter", "25x nope\r\n"),
    bad("no separator", "250hello\r\n"),
    bad("wrong separator", "250_hello\r\n"),
    bad("codes differ", "250-first\r\n251 second\r\n"),
    bad("NUL in text", std::string("250 a\0b\r\n", 9)),
    bad("bare CR in text", "250 a\rb\r\n"),
    bad("bare LF in text", "250 a\nb\r\n"),
    bad("DEL in text", "250 a\x7f\r\n"),
    bad("unfinished", "250-more to come\r\n"),
    bad("no CRLF", "250 ok"),
    bad("bytes after the reply", "250 ok\r\n250 again\r\n"),
    bad("line too long", "250 " + std::string(reply_line_max - 5, 'x') + "\r\n"),
};

TEST(ReplyParser, EveryCase) {
  for (const auto& c : reply_cases) {
    const auto result = parse_reply(c.wire);
    if (c.expected.code == 0) {
      EXPECT_TRUE(std::holds_alternative<std::string>(result)) << c.name;
      continue;
    }
    const auto* reply = std::get_if<ServerReply>(&result);
    ASSERT_NE(reply, nullptr) << c.name << ": " << std::get<std::string>(result);
    EXPECT_EQ(*reply, c.expected) << c.name;
    EXPECT_EQ(reply->summary(), c.summary) << c.name;
  }
}

TEST(ReplyParser, TheLongestLineIsAccepted) {
  const std::string text(reply_line_max - 6, 'x');
  const auto result = parse_reply("250 " + text + "\r\n");
  ASSERT_TRUE(std::holds_alternative<ServerReply>(result));
  EXPECT_EQ(std::get<ServerReply>(result).lines.front(), text);
}

TEST(ReplyParser, TheNumberOfLinesIsBounded) {
  std::string wire;
  for (std::size_t i = 0; i + 1 < reply_lines_max; ++i) wire += "250-line\r\n";
  EXPECT_TRUE(std::holds_alternative<ServerReply>(parse_reply(wire + "250 last\r\n")));
  EXPECT_TRUE(
      std::holds_alternative<std::string>(parse_reply(wire + "250-one too many\r\n250 x\r\n")));
}

TEST(ReplyParser, SummaryTextIsBounded) {
  std::string wire;
  for (int i = 0; i < 20; ++i) wire += "550-5.7.1 " + std::string(100, 'a') + "\r\n";
  wire += "550 5.7.1 end\r\n";
  const auto reply = std::get<ServerReply>(parse_reply(wire));
  EXPECT_EQ(reply.summary().size(), std::string("550 5.7.1 ").size() + reply_summary_text_max);
}

TEST(ReplyParser, LineByLineAndReset) {
  ReplyParser parser;
  EXPECT_EQ(parser.feed("250-mx"), ReplyParser::Status::incomplete);
  EXPECT_EQ(parser.feed("250 2.0.0 done"), ReplyParser::Status::complete);
  const auto reply = parser.take();
  EXPECT_EQ(reply.code, 250);
  EXPECT_EQ(reply.lines, (std::vector<std::string>{"mx", "done"}));
  EXPECT_EQ(parser.feed("550 no"), ReplyParser::Status::complete);  // take() started afresh
  EXPECT_EQ(parser.take().code, 550);
  EXPECT_EQ(parser.feed("xyz"), ReplyParser::Status::malformed);
  EXPECT_EQ(parser.feed("250 fine"), ReplyParser::Status::malformed);  // stays malformed
  EXPECT_FALSE(parser.problem().empty());
  parser.reset();
  EXPECT_EQ(parser.feed("250 fine"), ReplyParser::Status::complete);
}

ServerReply ehlo(const std::string& wire) { return std::get<ServerReply>(parse_reply(wire)); }

TEST(Extensions, AllThatMaildUses) {
  const auto offered = parse_extensions(
      ehlo("250-mx.example.org greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
           "250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n"
           "250-SMTPUTF8\r\n250-CHUNKING\r\n250-SOURCE\r\n250 DSN\r\n"));
  Extensions expected;
  expected.pipelining = true;
  expected.size = 10240000;
  expected.eight_bit_mime = true;
  expected.starttls = true;
  expected.enhanced_status_codes = true;
  expected.auth = {"PLAIN", "LOGIN"};
  expected.smtputf8 = true;
  expected.chunking = true;
  expected.source = true;
  expected.dsn = true;
  EXPECT_EQ(offered, expected);
}

TEST(Extensions, CaseOldAuthSyntaxAndOddSizes) {
  const auto offered = parse_extensions(
      ehlo("250-mx pipelining\r\n250-pipelining\r\n250-Size\r\n250-AUTH=login plain\r\n"
           "250-AUTH PLAIN CRAM-MD5\r\n250 X-UNKNOWN stuff\r\n"));
  EXPECT_TRUE(offered.pipelining);
  EXPECT_EQ(offered.size, std::optional<std::uint64_t>(0));  // SIZE without a number: no limit
  EXPECT_EQ(offered.auth, (std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"}));
  EXPECT_FALSE(offered.starttls);
  EXPECT_FALSE(offered.source);
  EXPECT_TRUE(parse_extensions(ehlo("250-mx\r\n250 source\r\n")).source);
  EXPECT_EQ(parse_extensions(ehlo("250-mx\r\n250 SIZE lots\r\n")).size,
            std::optional<std::uint64_t>(0));
}

TEST(Extensions, TheGreetingLineIsNoKeyword) {
  const auto offered = parse_extensions(ehlo("250 STARTTLS\r\n"));
  EXPECT_FALSE(offered.starttls);
}

}  // namespace
}  // namespace maild::smtp
