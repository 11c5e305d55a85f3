// Received and Return-Path trace lines: layout, protocol names, sanitizing, folding, dates.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "smtp/received.hpp"

namespace maild::smtp {
namespace {

using namespace std::chrono_literals;

std::chrono::system_clock::time_point at(std::chrono::year_month_day date,
                                         std::chrono::seconds time_of_day) {
  return std::chrono::sys_days{date} + time_of_day;
}

const auto example_time = at(std::chrono::year{2026} / 11 / 22, 7h + 29min + 14s);

ReceivedInfo example() {
  ReceivedInfo info;
  info.helo = "client.example";
  info.client_ip = "127.0.0.1";
  info.hostname = "mx.example.test";
  info.session_id = "4A8O00000000";
  info.esmtp = true;
  info.tls = true;
  info.tls_summary = TlsSummary{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
  info.recipient = Path{"bob", "example.test"};
  info.time = example_time;
  return info;
}

// Every line ends in CRLF, continuation lines start with a tab, none is over 78 columns.
void expect_well_formed(const std::string& header) {
  ASSERT_GE(header.size(), 2u);
  EXPECT_EQ(header.substr(header.size() - 2), "\r\n");
  std::size_t start = 0;
  bool first = true;
  while (start < header.size()) {
    const auto end = header.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    const auto line = header.substr(start, end - start);
    EXPECT_LE(line.size(), 78u) << line;
    EXPECT_EQ(line.find_first_of("\r\n"), std::string::npos);
    if (!first) {
      EXPECT_EQ(line.front(), '\t') << line;
    }
    first = false;
    start = end + 2;
  }
}

TEST(Received, MatchesTheExample) {
  const auto header = received_header(example());
  EXPECT_EQ(header,
            "Received: from client.example ([127.0.0.1])\r\n"
            "\tby mx.example.test (maild) with ESMTPS id 4A8O00000000\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
            "\tfor <bob@example.test>; Sun, 22 Nov 2026 07:29:14 +0000\r\n");
  expect_well_formed(header);
}

TEST(Received, WithoutTlsOrRecipient) {
  auto info = example();
  info.tls = false;
  info.tls_summary.reset();
  info.recipient.reset();
  info.esmtp = false;
  const auto header = received_header(info);
  EXPECT_EQ(header,
            "Received: from client.example ([127.0.0.1])\r\n"
            "\tby mx.example.test (maild) with SMTP id 4A8O00000000;\r\n"
            "\tSun, 22 Nov 2026 07:29:14 +0000\r\n");
  expect_well_formed(header);
}

TEST(Received, AuthenticatedUserOnlyWhenSet) {
  auto info = example();
  info.authenticated = true;
  EXPECT_EQ(received_header(info).find("authenticated as"), std::string::npos);
  EXPECT_NE(received_header(info).find("with ESMTPSA"), std::string::npos);
  info.authenticated_user = "bob";
  const auto header = received_header(info);
  EXPECT_NE(header.find("\r\n\t(authenticated as bob)\r\n"), std::string::npos) << header;
  expect_well_formed(header);
}

TEST(Received, Ipv6GetsItsTag) {
  auto info = example();
  info.client_ip = "2001:db8::1";
  EXPECT_NE(received_header(info).find("([IPv6:2001:db8::1])"), std::string::npos);
}

TEST(Received, HeloIsSanitized) {
  auto info = example();
  info.helo = "evil\r\nX-Injected: yes (comment) \\ ;\x01\x7f";
  const auto header = received_header(info);
  EXPECT_EQ(header.find("\r\nX-Injected"), std::string::npos);
  EXPECT_NE(header.find("from evilX-Injected:yescomment ([127.0.0.1])"), std::string::npos)
      << header;
  expect_well_formed(header);
}

TEST(Received, EmptyHeloBecomesUnknown) {
  auto info = example();
  info.helo = "\r\n";
  EXPECT_NE(received_header(info).find("from unknown ("), std::string::npos);
}

TEST(Received, LongHeloIsCappedAndFolded) {
  auto info = example();
  info.helo = std::string(5000, 'h');
  const auto header = received_header(info);
  EXPECT_NE(header.find(std::string(255, 'h')), std::string::npos);
  EXPECT_EQ(header.find(std::string(256, 'h')), std::string::npos);
  EXPECT_LT(header.size(), 600u);
}

TEST(Received, Utf8OnlyInSmtputf8Messages) {
  auto info = example();
  info.helo =
      "b\xc3\xbc"
      "cher.example";
  EXPECT_NE(received_header(info).find("from b??cher.example"), std::string::npos);
  info.utf8 = true;
  EXPECT_NE(received_header(info).find("from b\xc3\xbc"
                                       "cher.example"),
            std::string::npos);
  EXPECT_NE(received_header(info).find("with UTF8SMTPS "), std::string::npos);
}

TEST(Received, LongRecipientFolds) {
  auto info = example();
  info.recipient = Path{std::string(50, 'r'), "example.test"};
  const auto header = received_header(info);
  expect_well_formed(header);
  EXPECT_NE(header.find("\tfor <" + std::string(50, 'r') + "@example.test>;\r\n\tSun,"),
            std::string::npos)
      << header;
}

TEST(Received, QuotedRecipientIsKept) {
  auto info = example();
  info.recipient = Path{"\"john doe\"", "example.test"};
  EXPECT_NE(received_header(info).find("for <\"john doe\"@example.test>;"), std::string::npos);
}

struct ProtocolCase {
  bool esmtp, tls, authenticated, utf8;
  const char* name;
};

class ProtocolTest : public ::testing::TestWithParam<ProtocolCase> {};

TEST_P(ProtocolTest, Names) {
  const auto& c = GetParam();
  EXPECT_EQ(protocol_name(c.esmtp, c.tls, c.authenticated, c.utf8), c.name);
}

INSTANTIATE_TEST_SUITE_P(Rfc3848And6531, ProtocolTest,
                         ::testing::Values(ProtocolCase{false, false, false, false, "SMTP"},
                                           ProtocolCase{false, true, true, false, "SMTP"},
                                           ProtocolCase{true, false, false, false, "ESMTP"},
                                           ProtocolCase{true, true, false, false, "ESMTPS"},
                                           ProtocolCase{true, false, true, false, "ESMTPA"},
                                           ProtocolCase{true, true, true, false, "ESMTPSA"},
                                           ProtocolCase{true, false, false, true, "UTF8SMTP"},
                                           ProtocolCase{true, true, false, true, "UTF8SMTPS"},
                                           ProtocolCase{true, false, true, true, "UTF8SMTPA"},
                                           ProtocolCase{true, true, true, true, "UTF8SMTPSA"}));

TEST(Date, Rfc5322InUtc) {
  EXPECT_EQ(rfc5322_date(example_time), "Sun, 22 Nov 2026 07:29:14 +0000");
  EXPECT_EQ(rfc5322_date(std::chrono::system_clock::time_point{}),
            "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(at(std::chrono::year{2024} / 2 / 29, 23h + 59min + 59s)),
            "Thu, 29 Feb 2024 23:59:59 +0000");
  // Sub-second parts are dropped, not rounded.
  EXPECT_EQ(rfc5322_date(at(std::chrono::year{2000} / 1 / 1, 0s) + 999ms),
            "Sat, 01 Jan 2000 00:00:00 +0000");
}

TEST(ReturnPath, Forms) {
  EXPECT_EQ(return_path_line(Path{"a", "b.example"}), "Return-Path: <a@b.example>\r\n");
  EXPECT_EQ(return_path_line(Path{}), "Return-Path: <>\r\n");
  EXPECT_EQ(return_path_line(Path{"\"x y\"", "b.example"}), "Return-Path: <\"x y\"@b.example>\r\n");
  EXPECT_EQ(return_path_line(Path{"a\r\nX", "b"}), "Return-Path: <aX@b>\r\n");
}

}  // namespace
}  // namespace maild::smtp
