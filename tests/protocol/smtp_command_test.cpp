// parse_command: every verb, every MAIL/RCPT parameter and each syntax error, one row per case.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "smtp/command.hpp"

namespace maild::smtp {
namespace {

using Parsed = std::variant<std::monostate, Hello, Mail, Rcpt, Bdat, Auth, Token>;

struct CommandCase {
  std::string name;
  std::string line;
  Verb verb;             // expected on success
  Parsed parsed;         // expected on success
  int code = 0;          // expected reply code on error; 0 for success
  std::string enhanced;  // expected enhanced code on error
};

CommandCase ok(std::string name, std::string line, Verb verb, Parsed parsed = {}) {
  return {std::move(name), std::move(line), verb, std::move(parsed), 0, ""};
}
CommandCase error(std::string name, std::string line, int code, std::string enhanced) {
  return {std::move(name), std::move(line), Verb::unknown, {}, code, std::move(enhanced)};
}

const Path bob{"bob", "example.com"};
const Path alice{"alice", "example.org"};

Mail mail(Path path) {
  Mail m;
  m.reverse_path = std::move(path);
  return m;
}
Rcpt rcpt(Path path, unsigned notify = 0, std::string orcpt = {}) {
  Rcpt r;
  r.forward_path = std::move(path);
  r.notify = notify;
  r.orcpt = std::move(orcpt);
  return r;
}
Mail with_size(std::uint64_t size) {
  auto m = mail(bob);
  m.size = size;
  return m;
}
Mail with_body(Mail::Body body) {
  auto m = mail(bob);
  m.body = body;
  return m;
}
Mail with_ret(Mail::Ret ret) {
  auto m = mail(bob);
  m.ret = ret;
  return m;
}
Mail with_envid(std::string envid) {
  auto m = mail(bob);
  m.envid = std::move(envid);
  return m;
}
Mail with_auth(std::string auth) {
  auto m = mail(bob);
  m.auth = std::move(auth);
  return m;
}
Mail with_all() {
  auto m = mail(bob);
  m.size = 12345;
  m.body = Mail::Body::eight_bit_mime;
  m.smtputf8 = true;
  m.ret = Mail::Ret::hdrs;
  m.envid = "QQ314159";
  m.auth = "bob@example.com";
  return m;
}
Mail utf8_mail() {
  auto m = mail(Path{"j\xc3\xb6rg", "example.com"});
  m.smtputf8 = true;
  return m;
}

std::vector<CommandCase> command_cases() {
  return {
      // HELO / EHLO
      ok("Ehlo", "EHLO client.example", Verb::ehlo, Hello{"client.example"}),
      ok("EhloLowercase", "ehlo client.example", Verb::ehlo, Hello{"client.example"}),
      ok("Helo", "HELO client.example", Verb::helo, Hello{"client.example"}),
      ok("EhloLiteral", "EHLO [192.0.2.1]", Verb::ehlo, Hello{"[192.0.2.1]"}),
      ok("EhloV6Literal", "EHLO [IPv6:2001:db8::1]", Verb::ehlo, Hello{"[IPv6:2001:db8::1]"}),
      ok("EhloTrailingSpace", "EHLO client.example ", Verb::ehlo, Hello{"client.example"}),
      error("EhloMissing", "EHLO", 501, "5.5.4"),
      error("HeloMissing", "HELO ", 501, "5.5.4"),
      error("EhloTwoWords", "EHLO client.example extra", 501, "5.5.4"),
      error("EhloBadDomain", "EHLO -client.example", 501, "5.5.4"),
      ok("EhloUnderscoreAsWindowsSendsIt", "EHLO my_host", Verb::ehlo, Hello{"my_host"}),
      error("EhloSlash", "EHLO my/host", 501, "5.5.4"),
      error("EhloBadLiteral", "EHLO [300.0.0.1]", 501, "5.5.4"),
      // MAIL
      ok("Mail", "MAIL FROM:<bob@example.com>", Verb::mail, mail(bob)),
      ok("MailLowercase", "mail from:<bob@example.com>", Verb::mail, mail(bob)),
      ok("MailMixedCase", "Mail From:<bob@example.com>", Verb::mail, mail(bob)),
      ok("MailSpaceAfterColon", "MAIL FROM: <bob@example.com>", Verb::mail, mail(bob)),
      ok("MailNull", "MAIL FROM:<>", Verb::mail, mail(Path{})),
      ok("MailRoute", "MAIL FROM:<@relay.example:bob@example.com>", Verb::mail, mail(bob)),
      ok("MailQuoted", "MAIL FROM:<\"john doe\"@example.com> SIZE=1", Verb::mail,
         [] {
           auto m = mail(Path{"\"john doe\"", "example.com"});
           m.size = 1;
           return m;
         }()),
      ok("MailUtf8", "MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", Verb::mail, utf8_mail()),
      ok("MailTrailingSpace", "MAIL FROM:<bob@example.com> ", Verb::mail, mail(bob)),
      error("MailTwoSpacesAfterColon", "MAIL FROM:  <bob@example.com>", 501, "5.1.7"),
      error("MailNoFrom", "MAIL <bob@example.com>", 501, "5.5.2"),
      error("MailNoArgument", "MAIL", 501, "5.5.2"),
      error("MailSpaceBeforeColon", "MAIL FROM :<bob@example.com>", 501, "5.5.2"),
      error("MailNoPath", "MAIL FROM:", 501, "5.1.7"),
      error("MailNoBrackets", "MAIL FROM:bob@example.com", 501, "5.1.7"),
      error("MailUnclosed", "MAIL FROM:<bob@example.com", 501, "5.1.7"),
      error("MailBadAddress", "MAIL FROM:<bob@@example.com>", 501, "5.1.7"),
      error("MailPostmasterBare", "MAIL FROM:<postmaster>", 501, "5.1.7"),
      error("MailTextAfterPath", "MAIL FROM:<bob@example.com>SIZE=1", 501, "5.1.7"),
      // MAIL parameters
      ok("Size", "MAIL FROM:<bob@example.com> SIZE=1000", Verb::mail, with_size(1000)),
      ok("SizeZero", "MAIL FROM:<bob@example.com> SIZE=0", Verb::mail, with_size(0)),
      ok("SizeMax", "MAIL FROM:<bob@example.com> SIZE=18446744073709551615", Verb::mail,
         with_size(18446744073709551615u)),
      ok("SizeLowercaseKeyword", "MAIL FROM:<bob@example.com> size=7", Verb::mail, with_size(7)),
      error("SizeOverflow", "MAIL FROM:<bob@example.com> SIZE=18446744073709551616", 501, "5.5.4"),
      error("SizeTooManyDigits", "MAIL FROM:<bob@example.com> SIZE=000000000000000000001", 501,
            "5.5.4"),
      error("SizeNegative", "MAIL FROM:<bob@example.com> SIZE=-1", 501, "5.5.4"),
      error("SizeHex", "MAIL FROM:<bob@example.com> SIZE=0x10", 501, "5.5.4"),
      error("SizeEmpty", "MAIL FROM:<bob@example.com> SIZE=", 501, "5.5.4"),
      error("SizeNoValue", "MAIL FROM:<bob@example.com> SIZE", 501, "5.5.4"),
      error("SizeTwice", "MAIL FROM:<bob@example.com> SIZE=1 SIZE=2", 501, "5.5.4"),
      error("SizeTwiceMixedCase", "MAIL FROM:<bob@example.com> SIZE=1 size=1", 501, "5.5.4"),
      ok("Body7bit", "MAIL FROM:<bob@example.com> BODY=7BIT", Verb::mail,
         with_body(Mail::Body::seven_bit)),
      ok("Body8bit", "MAIL FROM:<bob@example.com> BODY=8bitmime", Verb::mail,
         with_body(Mail::Body::eight_bit_mime)),
      error("BodyBinary", "MAIL FROM:<bob@example.com> BODY=BINARYMIME", 555, "5.5.4"),
      error("BodyOther", "MAIL FROM:<bob@example.com> BODY=9BIT", 501, "5.5.4"),
      error("Smtputf8WithValue", "MAIL FROM:<bob@example.com> SMTPUTF8=yes", 501, "5.5.4"),
      ok("RetFull", "MAIL FROM:<bob@example.com> RET=FULL", Verb::mail, with_ret(Mail::Ret::full)),
      ok("RetHdrs", "MAIL FROM:<bob@example.com> RET=hdrs", Verb::mail, with_ret(Mail::Ret::hdrs)),
      error("RetOther", "MAIL FROM:<bob@example.com> RET=BODY", 501, "5.5.4"),
      ok("Envid", "MAIL FROM:<bob@example.com> ENVID=QQ314159", Verb::mail, with_envid("QQ314159")),
      ok("EnvidXtext", "MAIL FROM:<bob@example.com> ENVID=a+2Bb+3Dc+20d", Verb::mail,
         with_envid("a+b=c d")),
      ok("Envid100", "MAIL FROM:<bob@example.com> ENVID=" + std::string(100, 'e'), Verb::mail,
         with_envid(std::string(100, 'e'))),
      error("Envid101", "MAIL FROM:<bob@example.com> ENVID=" + std::string(101, 'e'), 501, "5.5.4"),
      error("EnvidBadHex", "MAIL FROM:<bob@example.com> ENVID=a+2G", 501, "5.5.4"),
      error("EnvidShortHex", "MAIL FROM:<bob@example.com> ENVID=a+2", 501, "5.5.4"),
      error("EnvidControl", "MAIL FROM:<bob@example.com> ENVID=a+0Db", 501, "5.5.4"),
      error("EnvidUtf8", "MAIL FROM:<bob@example.com> ENVID=\xc3\xa9", 501, "5.5.4"),
      ok("AuthParam", "MAIL FROM:<bob@example.com> AUTH=bob@example.com", Verb::mail,
         with_auth("bob@example.com")),
      ok("AuthParamXtext", "MAIL FROM:<bob@example.com> AUTH=b+2Bob@example.com", Verb::mail,
         with_auth("b+ob@example.com")),
      ok("AuthParamNull", "MAIL FROM:<bob@example.com> AUTH=<>", Verb::mail, with_auth("<>")),
      error("AuthParamBad", "MAIL FROM:<bob@example.com> AUTH=a+zz", 501, "5.5.4"),
      ok("AllParameters",
         "MAIL FROM:<bob@example.com> SIZE=12345  BODY=8BITMIME SMTPUTF8 RET=HDRS "
         "ENVID=QQ314159 AUTH=bob@example.com",
         Verb::mail, with_all()),
      error("UnknownParameter", "MAIL FROM:<bob@example.com> FOO=bar", 555, "5.5.4"),
      error("RcptParameterOnMail", "MAIL FROM:<bob@example.com> NOTIFY=NEVER", 555, "5.5.4"),
      error("BadKeyword", "MAIL FROM:<bob@example.com> -SIZE=1", 501, "5.5.4"),
      error("EmptyKeyword", "MAIL FROM:<bob@example.com> =1", 501, "5.5.4"),
      error("ValueWithEquals", "MAIL FROM:<bob@example.com> SIZE=1=2", 501, "5.5.4"),
      error("TabBetweenParameters", "MAIL FROM:<bob@example.com>\tSIZE=1", 500, "5.5.2"),
      // RCPT
      ok("Rcpt", "RCPT TO:<alice@example.org>", Verb::rcpt, rcpt(alice)),
      ok("RcptLowercase", "rcpt to:<alice@example.org>", Verb::rcpt, rcpt(alice)),
      ok("RcptSpaceAfterColon", "RCPT TO: <alice@example.org>", Verb::rcpt, rcpt(alice)),
      ok("RcptPostmaster", "RCPT TO:<Postmaster>", Verb::rcpt, rcpt(Path{"Postmaster", ""})),
      ok("RcptRoute", "RCPT TO:<@a.example,@b.example:alice@example.org>", Verb::rcpt, rcpt(alice)),
      error("RcptNull", "RCPT TO:<>", 501, "5.1.3"),
      error("RcptNoTo", "RCPT <alice@example.org>", 501, "5.5.2"),
      error("RcptFromInsteadOfTo", "RCPT FROM:<alice@example.org>", 501, "5.5.2"),
      error("RcptNoBrackets", "RCPT TO:alice@example.org", 501, "5.1.3"),
      error("RcptSpaceInPath", "RCPT TO:<alice @example.org>", 501, "5.1.3"),
      error("RcptLongLocal", "RCPT TO:<" + std::string(65, 'l') + "@example.org>", 501, "5.1.3"),
      ok("NotifyNever", "RCPT TO:<alice@example.org> NOTIFY=NEVER", Verb::rcpt,
         rcpt(alice, notify_never)),
      ok("NotifyList", "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE,DELAY", Verb::rcpt,
         rcpt(alice, notify_success | notify_failure | notify_delay)),
      ok("NotifyOneLowercase", "RCPT TO:<alice@example.org> notify=failure", Verb::rcpt,
         rcpt(alice, notify_failure)),
      error("NotifyNeverAndOther", "RCPT TO:<alice@example.org> NOTIFY=NEVER,SUCCESS", 501,
            "5.5.4"),
      error("NotifyRepeated", "RCPT TO:<alice@example.org> NOTIFY=DELAY,DELAY", 501, "5.5.4"),
      error("NotifyEmptyItem", "RCPT TO:<alice@example.org> NOTIFY=SUCCESS,", 501, "5.5.4"),
      error("NotifyUnknown", "RCPT TO:<alice@example.org> NOTIFY=ALWAYS", 501, "5.5.4"),
      error("NotifyNoValue", "RCPT TO:<alice@example.org> NOTIFY", 501, "5.5.4"),
      error("NotifyTwice", "RCPT TO:<alice@example.org> NOTIFY=DELAY NOTIFY=DELAY", 501, "5.5.4"),
      ok("Orcpt", "RCPT TO:<alice@example.org> ORCPT=rfc822;alice@example.org", Verb::rcpt,
         rcpt(alice, 0, "rfc822;alice@example.org")),
      ok("OrcptXtext", "RCPT TO:<alice@example.org> ORCPT=RFC822;a+2Bb@example.org", Verb::rcpt,
         rcpt(alice, 0, "rfc822;a+b@example.org")),
      ok("OrcptUtf8", "RCPT TO:<alice@example.org> ORCPT=utf-8;j\xc3\xb6rg@example.org", Verb::rcpt,
         rcpt(alice, 0, "utf-8;j\xc3\xb6rg@example.org")),
      ok("NotifyAndOrcpt",
         "RCPT TO:<alice@example.org> NOTIFY=SUCCESS ORCPT=rfc822;alice@example.org", Verb::rcpt,
         rcpt(alice, notify_success, "rfc822;alice@example.org")),
      error("OrcptUtf8InRfc822", "RCPT TO:<alice@example.org> ORCPT=rfc822;j\xc3\xb6rg@x.org", 501,
            "5.5.4"),
      error("OrcptUnknownType", "RCPT TO:<alice@example.org> ORCPT=x400;abc", 501, "5.5.4"),
      error("OrcptNoType", "RCPT TO:<alice@example.org> ORCPT=alice@example.org", 501, "5.5.4"),
      error("OrcptEmptyAddress", "RCPT TO:<alice@example.org> ORCPT=rfc822;", 501, "5.5.4"),
      error("OrcptControl", "RCPT TO:<alice@example.org> ORCPT=rfc822;a+0Ab", 501, "5.5.4"),
      error("OrcptTooLong", "RCPT TO:<alice@example.org> ORCPT=rfc822;" + std::string(494, 'o'),
            501, "5.5.4"),
      error("MailParameterOnRcpt", "RCPT TO:<alice@example.org> SIZE=10", 555, "5.5.4"),
      // BDAT
      ok("Bdat", "BDAT 1000", Verb::bdat, Bdat{1000, false}),
      ok("BdatLast", "BDAT 0 LAST", Verb::bdat, Bdat{0, true}),
      ok("BdatLastLowercase", "bdat 12 last", Verb::bdat, Bdat{12, true}),
      ok("BdatMax", "BDAT 18446744073709551615", Verb::bdat, Bdat{18446744073709551615u, false}),
      error("BdatOverflow", "BDAT 18446744073709551616", 501, "5.5.4"),
      error("BdatNoSize", "BDAT", 501, "5.5.4"),
      error("BdatNotNumber", "BDAT ten", 501, "5.5.4"),
      error("BdatNegative", "BDAT -1", 501, "5.5.4"),
      error("BdatBadLast", "BDAT 10 FINAL", 501, "5.5.4"),
      error("BdatExtra", "BDAT 10 LAST now", 501, "5.5.4"),
      // AUTH
      ok("AuthPlain", "AUTH PLAIN", Verb::auth, Auth{"PLAIN", std::nullopt}),
      ok("AuthLowercaseMechanism", "auth login", Verb::auth, Auth{"LOGIN", std::nullopt}),
      ok("AuthInitialResponse", "AUTH PLAIN AGJvYgBzZWNyZXQ=", Verb::auth,
         Auth{"PLAIN", "AGJvYgBzZWNyZXQ="}),
      ok("AuthEmptyInitialResponse", "AUTH PLAIN =", Verb::auth, Auth{"PLAIN", "="}),
      ok("AuthMechanismChars", "AUTH SCRAM-SHA-256_X", Verb::auth,
         Auth{"SCRAM-SHA-256_X", std::nullopt}),
      error("AuthNoMechanism", "AUTH", 501, "5.5.4"),
      error("AuthMechanismTooLong", "AUTH " + std::string(21, 'M'), 501, "5.5.4"),
      error("AuthBadMechanism", "AUTH PL@IN", 501, "5.5.4"),
      error("AuthExtraWord", "AUTH PLAIN abc def", 501, "5.5.4"),
      error("AuthBadInitialResponse", "AUTH PLAIN a*b", 501, "5.5.2"),
      // SOURCE and GET: a token of exactly 32 characters 0-9 a-f
      ok("Source", "SOURCE 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a", Verb::source,
         Token{"5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"}),
      ok("SourceLowercaseVerb", "source 00112233445566778899aabbccddeeff", Verb::source,
         Token{"00112233445566778899aabbccddeeff"}),
      ok("SourceSurroundingSpaces", "SOURCE  5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a ", Verb::source,
         Token{"5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"}),
      ok("Get", "GET 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a", Verb::get,
         Token{"5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a"}),
      error("SourceNoToken", "SOURCE", 501, "5.5.4"),
      error("SourceShortToken", "SOURCE 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8", 501, "5.5.4"),
      error("SourceLongToken", "SOURCE 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8a0", 501, "5.5.4"),
      error("SourceUppercaseToken", "SOURCE 5F0C2E8A9B1D4C7E8F6A3B2C1D0E9F8A", 501, "5.5.4"),
      error("SourceNotHex", "SOURCE 5f0c2e8a9b1d4c7e8f6a3b2c1d0e9f8g", 501, "5.5.4"),
      error("SourceTwoWords", "SOURCE 5f0c2e8a9b1d4c7e 8f6a3b2c1d0e9f8a", 501, "5.5.4"),
      error("GetHttp", "GET / HTTP/1.1", 501, "5.5.4"),
      // Verbs without arguments
      ok("Data", "DATA", Verb::data),
      ok("DataLowercase", "data", Verb::data),
      ok("DataTrailingSpace", "DATA ", Verb::data),
      error("DataArgument", "DATA now", 501, "5.5.4"),
      ok("Rset", "RSET", Verb::rset),
      error("RsetArgument", "RSET all", 501, "5.5.4"),
      ok("Quit", "QUIT", Verb::quit),
      error("QuitArgument", "QUIT now", 501, "5.5.4"),
      ok("Starttls", "STARTTLS", Verb::starttls),
      error("StarttlsArgument", "STARTTLS x", 501, "5.5.4"),
      // Verbs taking free text
      ok("Noop", "NOOP", Verb::noop),
      ok("NoopText", "NOOP anything at all", Verb::noop),
      ok("NoopTab", "NOOP a\tb", Verb::noop),
      ok("Help", "HELP", Verb::help),
      ok("HelpTopic", "HELP MAIL", Verb::help),
      ok("Vrfy", "VRFY bob", Verb::vrfy),
      ok("VrfyEmpty", "VRFY", Verb::vrfy),
      ok("Expn", "EXPN staff", Verb::expn),
      // Unknown verbs and control characters
      ok("Unknown", "XYZZY", Verb::unknown),
      ok("UnknownWithArgument", "XYZZY plugh", Verb::unknown),
      ok("Empty", "", Verb::unknown),
      ok("VerbPrefix", "MAILX FROM:<bob@example.com>", Verb::unknown),
      ok("LeadingSpace", " NOOP", Verb::unknown),
      error("Nul", std::string("NOOP\0", 5), 500, "5.5.2"),
      error("NulInMail", std::string("MAIL FROM:<bob@exa\0mple.com>", 28), 500, "5.5.2"),
      error("BareCr", "NOOP a\rb", 500, "5.5.2"),
      error("BareLf", "QUIT\n", 500, "5.5.2"),
      error("Del", "NOOP \x7f", 500, "5.5.2"),
      error("Escape", "EHLO \x1b[31mred", 500, "5.5.2"),
      error("TabInEhlo", "EHLO a\tb", 500, "5.5.2"),
      error("TabAfterVerb", "QUIT\t", 500, "5.5.2"),
      error("ControlInUnknownVerb", std::string("X\0Y", 3), 500, "5.5.2"),
  };
}

class CommandTest : public ::testing::TestWithParam<CommandCase> {};

TEST_P(CommandTest, Parses) {
  const auto& c = GetParam();
  const auto result = parse_command(c.line);
  if (c.code != 0) {
    const auto* reply = std::get_if<Reply>(&result);
    ASSERT_NE(reply, nullptr) << "expected a " << c.code << " reply";
    EXPECT_EQ(reply->code, c.code);
    EXPECT_EQ(reply->enhanced, c.enhanced);
    EXPECT_FALSE(reply->text.empty());
    return;
  }
  const auto* command = std::get_if<Command>(&result);
  ASSERT_NE(command, nullptr) << "unexpected reply " << std::get<Reply>(result).code << " "
                              << std::get<Reply>(result).text;
  EXPECT_EQ(command->verb, c.verb);
  EXPECT_TRUE(command->parsed == c.parsed);
}

INSTANTIATE_TEST_SUITE_P(Lines, CommandTest, ::testing::ValuesIn(command_cases()),
                         [](const auto& row) { return row.param.name; });

TEST(Command, KeepsVerbTextAndArgumentForTheLog) {
  const auto result = parse_command("xyzzy  plugh  ");
  const auto& command = std::get<Command>(result);
  EXPECT_EQ(command.verb, Verb::unknown);
  EXPECT_EQ(command.verb_text, "xyzzy");
  EXPECT_EQ(command.argument, "plugh");
  const auto noop = std::get<Command>(parse_command("Noop hello"));
  EXPECT_EQ(noop.verb_text, "Noop");
  EXPECT_EQ(noop.argument, "hello");
}

TEST(Xtext, RoundTrips) {
  const std::string all = [] {
    std::string s;
    for (int c = 0x20; c < 0x7f; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(xtext_decode(xtext_encode(all)), all);
  EXPECT_EQ(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(xtext_decode("a+2bb"), "a+b");  // lowercase hex tolerated
  EXPECT_FALSE(xtext_decode("a=b"));
  EXPECT_FALSE(xtext_decode("a b"));
  EXPECT_FALSE(xtext_decode("+"));
  EXPECT_FALSE(xtext_decode("+0"));
  EXPECT_FALSE(xtext_decode("+00"));  // decodes to NUL
}

}  // namespace
}  // namespace maild::smtp
