// The header section as acceptance reads it: where it ends, its Received
// fields, and the removal of Authentication-Results fields that claim our
// authserv-id (RFC 8601 5), with the body byte for byte as it came.
#include <gtest/gtest.h>

#include <string>

#include "smtp/header_section.hpp"

namespace maild::smtp {
namespace {

constexpr std::string_view ours = "mx.example.test";

TEST(HeaderSection, EndsAfterTheFirstEmptyLine) {
  EXPECT_EQ(header_section_size("A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore\r\n"), 14u);
  EXPECT_EQ(header_section_size("\r\nbody\r\n"), 2u);
  EXPECT_EQ(header_section_size("A: 1\nB: 2\n\nbody\n"), 11u);
  EXPECT_EQ(header_section_size("A: 1\r\nB: 2\r\n"), 12u);  // no body: all of it
  EXPECT_EQ(header_section_size(""), 0u);
  // A line of white space is no empty line: it continues the field.
  EXPECT_EQ(header_section_size("A: 1\r\n \r\n\r\nx"), 11u);
}

TEST(HeaderSection, CountsReceivedFieldsOfTheHeaderOnly) {
  EXPECT_EQ(count_received(""), 0u);
  EXPECT_EQ(count_received("Subject: x\r\n\r\nReceived: in the body\r\n"), 0u);
  EXPECT_EQ(count_received("Received: a\r\nreceived: b\r\nRECEIVED : c\r\n"
                           "X-Received: d\r\nReceived-SPF: e\r\n\r\nReceived: f\r\n"),
            3u);
  // Folded: one field over three lines.
  EXPECT_EQ(count_received("Received: from a\r\n\tby b\r\n Received: no\r\nSubject: x\r\n\r\n"),
            1u);
  // A header without a body still counts.
  EXPECT_EQ(count_received("Received: a\r\nReceived: b"), 2u);
}

TEST(HeaderSection, ReadsTheAuthservId) {
  struct Case {
    std::string_view value;
    std::optional<std::string> id;
  };
  const Case cases[] = {
      {" mx.example.test; source-get=pass", "mx.example.test"},
      {" mx.example.test 1; spf=pass", "mx.example.test"},  // with a version
      {" mx.example.test;", "mx.example.test"},
      {"mx.example.test;none", "mx.example.test"},
      {" (a comment) mx.example.test; none", "mx.example.test"},
      {" (nested (comment) \\) here) mx.example.test; none", "mx.example.test"},
      {"\r\n\tmx.example.test\r\n\t; none", "mx.example.test"},  // folded
      {" (c)\r\n (d)mx.example.test(e); none", "mx.example.test"},
      {" \"mx.example.test\"; none", "mx.example.test"},
      {" \"mx.exa\\mple.test\"; none", "mx.example.test"},
      {" MX.Example.Test; none", "MX.Example.Test"},
      {" ; none", std::nullopt},
      {"", std::nullopt},
      {"   \r\n", std::nullopt},
      {" (unterminated mx.example.test; none", std::nullopt},
      {" \"unterminated; none", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(authserv_id(c.value), c.id) << c.value;
}

struct Removal {
  std::string_view name;
  std::string input;
  std::string expected;
  std::size_t removed;
};

TEST(HeaderSection, RemovesOurAuthenticationResultsOnly) {
  const std::string body = "\r\nAuthentication-Results: mx.example.test; source-get=pass\r\n";
  const Removal cases[] = {
      {"plain", "Authentication-Results: mx.example.test; source-get=pass\r\nSubject: x\r\n" + body,
       "Subject: x\r\n" + body, 1},
      {"any case, name and id",
       "authentication-RESULTS: MX.EXAMPLE.TEST; source-get=pass\r\nSubject: x\r\n" + body,
       "Subject: x\r\n" + body, 1},
      {"trailing dot", "Authentication-Results: mx.example.test.; spf=pass\r\n\r\n", "\r\n", 1},
      {"space before the colon", "Authentication-Results : mx.example.test; x=pass\r\n\r\n", "\r\n",
       1},
      {"folded, with its continuation lines",
       "To: a\r\nAuthentication-Results:\r\n mx.example.test;\r\n\tsource-get=pass\r\nFrom: b\r\n" +
           body,
       "To: a\r\nFrom: b\r\n" + body, 1},
      {"comment first", "Authentication-Results: (forged) mx.example.test; x=pass\r\nA: b\r\n\r\n",
       "A: b\r\n\r\n", 1},
      {"version number", "Authentication-Results: mx.example.test 1; x=pass\r\nA: b\r\n\r\n",
       "A: b\r\n\r\n", 1},
      {"quoted", "Authentication-Results: \"mx.example.test\"; x=pass\r\n\r\n", "\r\n", 1},
      {"several, between others",
       "Authentication-Results: mx.example.test; a=pass\r\nReceived: x\r\n"
       "Authentication-Results: other.example; b=pass\r\n"
       "Authentication-Results: mx.example.test; c=pass\r\n\r\nbody",
       "Received: x\r\nAuthentication-Results: other.example; b=pass\r\n\r\nbody", 2},
      {"the last field, no body", "A: b\r\nAuthentication-Results: mx.example.test; x=pass",
       "A: b\r\n", 1},
      {"LF line ends", "Authentication-Results: mx.example.test; x=pass\nA: b\n\nbody\n",
       "A: b\n\nbody\n", 1},
      {"another server's", "Authentication-Results: mx.example.test.evil; x=pass\r\n\r\n",
       "Authentication-Results: mx.example.test.evil; x=pass\r\n\r\n", 0},
      {"a suffix of ours", "Authentication-Results: example.test; x=pass\r\n\r\n",
       "Authentication-Results: example.test; x=pass\r\n\r\n", 0},
      {"another field naming us", "X-Authentication-Results: mx.example.test; x=pass\r\n\r\n",
       "X-Authentication-Results: mx.example.test; x=pass\r\n\r\n", 0},
      {"ours only in a comment", "Authentication-Results: other (mx.example.test); x=pass\r\n\r\n",
       "Authentication-Results: other (mx.example.test); x=pass\r\n\r\n", 0},
      {"only in the body", "Subject: x\r\n" + body, "Subject: x\r\n" + body, 0},
      {"empty", "", "", 0},
  };
  for (const auto& c : cases) {
    auto content = c.input;
    EXPECT_EQ(remove_own_authentication_results(content, ours), c.removed) << c.name;
    EXPECT_EQ(content, c.expected) << c.name;
  }
}

TEST(HeaderSection, LeavesTheBodyByteForByte) {
  const std::string body =
      "\r\nAuthentication-Results: mx.example.test; source-get=pass\r\n"
      "Received: x\r\n\r\n \t\r\n\x80\xff binary\n\r";
  std::string content = "Authentication-Results: mx.example.test; x=pass\r\nSubject: s\r\n" + body;
  EXPECT_EQ(remove_own_authentication_results(content, ours), 1u);
  EXPECT_EQ(content, "Subject: s\r\n" + body);
  EXPECT_EQ(remove_own_authentication_results(content, ours), 0u);  // nothing left to remove
}

}  // namespace
}  // namespace maild::smtp
