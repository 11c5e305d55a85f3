// mail.conf syntax: sections, comments, whitespace, errors with their exact messages, files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "maild/config/load.hpp"

namespace maild::config {
namespace {

using namespace std::chrono_literals;

Settings parse_text(std::string_view text) { return parse(text, "test.conf", "/etc/maild"); }

std::optional<ConfigError> error_of(std::string_view text) {
  try {
    parse_text(text);
  } catch (const ConfigError& error) {
    return error;
  }
  return std::nullopt;
}

TEST(ConfigError, MessageIsFileLineKeyReason) {
  EXPECT_STREQ(ConfigError("a.conf", 3, "server.threads", "why").what(),
               "a.conf:3: server.threads: why");
  EXPECT_STREQ(ConfigError("a.conf", 0, "server.threads", "why").what(),
               "a.conf: server.threads: why");
  EXPECT_STREQ(ConfigError("a.conf", 3, "", "why").what(), "a.conf:3: why");
  EXPECT_STREQ(ConfigError("a.conf", 0, "", "why").what(), "a.conf: why");
  const ConfigError error("a.conf", 3, "server.threads", "why");
  EXPECT_EQ(error.file, "a.conf");
  EXPECT_EQ(error.line, 3U);
  EXPECT_EQ(error.key, "server.threads");
  EXPECT_EQ(error.reason, "why");
}

struct ErrorCase {
  std::string_view name;
  std::string_view text;
  unsigned line;
  std::string_view key;
  std::string_view reason;
  std::string_view message;
};

class ParseError : public testing::TestWithParam<ErrorCase> {};

TEST_P(ParseError, NamesFileLineKeyAndReason) {
  const auto& c = GetParam();
  const auto error = error_of(c.text);
  ASSERT_TRUE(error) << c.text;
  EXPECT_EQ(error->file, "test.conf");
  EXPECT_EQ(error->line, c.line);
  EXPECT_EQ(error->key, c.key);
  EXPECT_EQ(error->reason, c.reason);
  EXPECT_EQ(std::string(error->what()), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParseError,
    testing::Values(
        ErrorCase{"UnknownSection", "# mail.conf\n[nope]\n", 2, "", "unknown section [nope]",
                  "test.conf:2: unknown section [nope]"},
        ErrorCase{"KeyOutsideSection", "threads = 4\n", 1, "threads", "key outside any section",
                  "test.conf:1: threads: key outside any section"},
        ErrorCase{"UnknownKey", "[server]\nthread = 4\n", 2, "server.thread", "unknown key",
                  "test.conf:2: server.thread: unknown key"},
        ErrorCase{"KeyOfAnotherSection", "[server]\nlevel = info\n", 2, "server.level",
                  "unknown key", "test.conf:2: server.level: unknown key"},
        ErrorCase{"DuplicateKey", "[server]\nthreads = 4\n\nthreads = 5\n", 4, "server.threads",
                  "duplicate key (first set on line 2)",
                  "test.conf:4: server.threads: duplicate key (first set on line 2)"},
        ErrorCase{"DuplicateKeyInReopenedSection",
                  "[server]\nthreads = 4\n[log]\n[server]\nthreads = 4\n", 5, "server.threads",
                  "duplicate key (first set on line 2)",
                  "test.conf:5: server.threads: duplicate key (first set on line 2)"},
        ErrorCase{"LineWithoutEquals", "[server]\njust words\n", 2, "",
                  "malformed line; expected [section], key = value or a comment",
                  "test.conf:2: malformed line; expected [section], key = value or a comment"},
        ErrorCase{"EmptyKey", "[server]\n = 4\n", 2, "",
                  "malformed line; expected [section], key = value or a comment",
                  "test.conf:2: malformed line; expected [section], key = value or a comment"},
        ErrorCase{"UnclosedSection", "[server\n", 1, "",
                  "malformed section header; expected [name]",
                  "test.conf:1: malformed section header; expected [name]"},
        ErrorCase{"TextAfterSection", "[server] x\n", 1, "",
                  "malformed section header; expected [name]",
                  "test.conf:1: malformed section header; expected [name]"},
        ErrorCase{"CommentWithoutSpaceAfterSection", "[server]#x\n", 1, "",
                  "malformed section header; expected [name]",
                  "test.conf:1: malformed section header; expected [name]"},
        ErrorCase{"BadValue", "[server]\nthreads = lots\n", 2, "server.threads",
                  "\"lots\" is not a whole number",
                  "test.conf:2: server.threads: \"lots\" is not a whole number"},
        ErrorCase{"OutOfBounds", "[server]\nthreads = 257 ; too many\n", 2, "server.threads",
                  "257 is out of bounds (0..256)",
                  "test.conf:2: server.threads: 257 is out of bounds (0..256)"},
        ErrorCase{"DurationWithoutUnit", "[smtp]\ncommand_timeout = 30\n", 2,
                  "smtp.command_timeout",
                  "\"30\" has no unit; use a whole number with s, m, h or d (e.g. 30s)",
                  "test.conf:2: smtp.command_timeout: \"30\" has no unit; use a whole number with "
                  "s, m, h or d "
                  "(e.g. 30s)"},
        ErrorCase{"LineNumbersCountCrLf", "[server]\r\n\r\n; c\r\nthreads = x\r\n", 4,
                  "server.threads", "\"x\" is not a whole number",
                  "test.conf:4: server.threads: \"x\" is not a whole number"}),
    [](const testing::TestParamInfo<ErrorCase>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(ParseSyntax, EmptyTextIsTheDefaults) {
  EXPECT_EQ(parse_text(""), parse_text("\n\n# only comments\n; and more\n   \n"));
  EXPECT_EQ(parse_text("").server.max_connections, 10000U);
}

TEST(ParseSyntax, CommentsWhitespaceAndSections) {
  const auto settings = parse_text(
      "# full-line comment\n"
      "; another\n"
      "  [ server ]   ; section with a comment\n"
      "\tthreads\t=\t4\t\n"
      "   # indented comment\n"
      "max_connections = 20 # inline\n"
      "[log]\n"
      "level=debug\n"
      "[server]\n"
      "listen_backlog = 7 ;reopened section\n");
  EXPECT_EQ(settings.server.threads, 4U);
  EXPECT_EQ(settings.server.max_connections, 20U);
  EXPECT_EQ(settings.log.level, LogLevel::debug);
  EXPECT_EQ(settings.server.listen_backlog, 7U);
}

TEST(ParseSyntax, SemicolonWithoutSpaceIsPartOfTheValue) {
  const auto error = error_of("[server]\nlisten_backlog = 7;8\n");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->reason, "\"7;8\" is not a whole number");
}

struct InlineCommentCase {
  std::string_view line;
  std::string_view password;
};

class InlineComment : public testing::TestWithParam<InlineCommentCase> {};

TEST_P(InlineComment, StartsOnlyAfterWhitespace) {
  const auto settings = parse_text("[mysql]\n" + std::string(GetParam().line) + "\n");
  EXPECT_EQ(settings.mysql.password, GetParam().password) << GetParam().line;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InlineComment,
    testing::Values(
        InlineCommentCase{"password = a;b", "a;b"}, InlineCommentCase{"password = a#b", "a#b"},
        InlineCommentCase{"password = a ;b", "a"}, InlineCommentCase{"password = a\t#b", "a"},
        InlineCommentCase{"password = a b ; comment # more", "a b"},
        InlineCommentCase{"password = ; all comment", ""}, InlineCommentCase{"password =;x", ";x"},
        InlineCommentCase{"password = x=y", "x=y"}, InlineCommentCase{"password =", ""},
        InlineCommentCase{"password = \"q\"", "\"q\""}));

TEST(ParseSyntax, SameKeyInDifferentSectionsIsNotADuplicate) {
  const auto settings = parse_text("[store]\nworkers = 3\n[delivery]\nworkers = 5\n");
  EXPECT_EQ(settings.store.workers, 3U);
  EXPECT_EQ(settings.delivery.workers, 5U);
}

TEST(ParseSyntax, LastLineWithoutNewline) {
  EXPECT_EQ(parse_text("[server]\nthreads = 3").server.threads, 3U);
}

class TempDir : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("config_parser_test." + std::to_string(::getpid()) + "." +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write(const std::string& name, std::string_view text) {
    const auto file = dir_ / name;
    std::ofstream(file) << text;
    return file;
  }

  std::filesystem::path dir_;
};

TEST_F(TempDir, LoadFileResolvesRelativePathsAgainstItsFolder) {
  const auto file = write(
      "mail.conf",
      "[store]\npath = data/mail.db\n[tls]\ncert = ../certs/cert.pem\nkey = /etc/ssl/key.pem\n");
  const auto settings = load_file(file);
  EXPECT_EQ(settings.store.path, dir_ / "data/mail.db");
  EXPECT_EQ(settings.tls.cert, dir_.parent_path() / "certs/cert.pem");
  EXPECT_EQ(settings.tls.key, "/etc/ssl/key.pem");
  EXPECT_EQ(settings.log.file, "");
}

TEST_F(TempDir, LoadFileReportsErrorsWithTheFileName) {
  const auto file = write("bad.conf", "[server]\nthreads = 999\n");
  try {
    load_file(file);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              file.string() + ":2: server.threads: 999 is out of bounds (0..256)");
  }
}

TEST_F(TempDir, LoadFileOfAMissingFile) {
  const auto file = dir_ / "missing.conf";
  try {
    load_file(file);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.line, 0U);
    EXPECT_EQ(error.key, "");
    EXPECT_EQ(error.reason, "cannot open: No such file or directory");
    EXPECT_EQ(std::string(error.what()),
              file.string() + ": cannot open: No such file or directory");
  }
}

TEST_F(TempDir, LoadFileOfAFolder) {
  try {
    load_file(dir_);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()), dir_.string() + ": cannot read: Is a directory");
  }
}

TEST_F(TempDir, LoadFileOfAnEmptyFileIsTheDefaults) {
  EXPECT_EQ(load_file(write("empty.conf", "")), parse_text(""));
}

TEST(ParsePaths, RelativePathsResolveAgainstBaseDir) {
  const auto settings =
      parse("[store]\npath = ./db/../mail.db\n[log]\nfile = maild.log\n", "x.conf", "/srv/maild");
  EXPECT_EQ(settings.store.path, "/srv/maild/mail.db");
  EXPECT_EQ(settings.log.file, "/srv/maild/maild.log");
}

TEST(ParsePaths, WithoutBaseDirRelativePathsStayRelative) {
  EXPECT_EQ(parse("[log]\nfile = maild.log\n", "x.conf", {}).log.file, "maild.log");
}

TEST(MachineDefaults, FillsHostnameAndThreads) {
  auto settings = parse_text("");
  resolve_machine_defaults(settings);
  EXPECT_FALSE(settings.server.hostname.empty());
  EXPECT_GE(settings.server.threads, 1U);
}

TEST(MachineDefaults, KeepsWhatTheFileSet) {
  auto settings = parse_text("[server]\nhostname = mx.example.org\nthreads = 3\n");
  resolve_machine_defaults(settings);
  EXPECT_EQ(settings.server.hostname, "mx.example.org");
  EXPECT_EQ(settings.server.threads, 3U);
}

}  // namespace
}  // namespace maild::config
