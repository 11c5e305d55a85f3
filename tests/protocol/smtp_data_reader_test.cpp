// DataReader: terminator and smuggling rules, transparency, limits at and
// past their edge, chunk splits at every position, pipelining, BDAT.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/data_reader.hpp"

namespace maild::smtp {
namespace {

using Problem = DataReader::Problem;

DataLimits limits(BareNewline policy = BareNewline::reject, std::uint64_t max = 1 << 20,
                  std::size_t max_line = 1000) {
  return DataLimits{ByteSize{max}, max_line, policy};
}

struct Outcome {
  bool done = false;
  std::size_t consumed = 0;
  Problem problem = Problem::none;
  std::string content;
  std::uint64_t received = 0;

  bool operator==(const Outcome&) const = default;
};

// Feeds `input` in pieces split at `splits`, as a session would: each piece until refused.
Outcome run_dot(const std::string& input, const DataLimits& l,
                std::vector<std::size_t> splits = {}) {
  auto reader = DataReader::dot_terminated(l);
  Outcome out;
  std::size_t from = 0;
  splits.push_back(input.size());
  for (const auto to : splits) {
    out.consumed += reader.feed(std::string_view(input).substr(from, to - from));
    from = to;
    if (reader.done()) break;
  }
  out.done = reader.done();
  out.problem = reader.problem();
  out.received = reader.received();
  out.content = reader.take_content();
  return out;
}

struct DotCase {
  std::string name;
  std::string input;
  BareNewline policy;
  bool done;
  std::size_t consumed;  // npos: the whole input
  Problem problem;
  std::string content;  // checked only when problem is none
};

constexpr auto npos = std::string::npos;
constexpr auto N = BareNewline::normalize;
constexpr auto J = BareNewline::reject;

std::vector<DotCase> dot_cases() {
  return {
      {"Simple", "Hello\r\n.\r\n", J, true, npos, Problem::none, "Hello\r\n"},
      {"Empty", ".\r\n", J, true, npos, Problem::none, ""},
      {"EmptyLineMessage", "\r\n.\r\n", J, true, npos, Problem::none, "\r\n"},
      {"TwoLines", "a\r\nb\r\n.\r\n", J, true, npos, Problem::none, "a\r\nb\r\n"},
      {"Unstuffed", "..leading\r\n.\r\n", J, true, npos, Problem::none, ".leading\r\n"},
      {"UnstuffedDotLine", "a\r\n..\r\n.\r\n", J, true, npos, Problem::none, "a\r\n.\r\n"},
      {"DotThenText", "a\r\n.b\r\n.\r\n", J, true, npos, Problem::none, "a\r\nb\r\n"},
      {"DotSpace", "a\r\n. \r\n.\r\n", J, true, npos, Problem::none, "a\r\n \r\n"},
      {"DotNotAtLineStart", "a.b\r\n.\r\n", J, true, npos, Problem::none, "a.b\r\n"},
      {"Unterminated", "Hello\r\n", J, false, npos, Problem::none, "Hello\r\n"},
      {"UnterminatedDot", "Hello\r\n.", J, false, npos, Problem::none, "Hello\r\n"},
      {"UnterminatedDotCr", "Hello\r\n.\r", J, false, npos, Problem::none, "Hello\r\n"},
      {"Pipelined", "a\r\n.\r\nQUIT\r\n", J, true, 6, Problem::none, "a\r\n"},
      {"PipelinedRightAway", ".\r\nRSET\r\n", J, true, 3, Problem::none, ""},
      // Smuggling: none of these end the data; with reject they are problems.
      {"LfDotLf", "a\n.\nb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n.\r\nb\r\n"},
      {"CrDotCr", "a\r.\rb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n.\r\nb\r\n"},
      {"CrLfDotCr", "a\r\n.\rb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n\r\nb\r\n"},
      {"LfDotCrLf", "a\n.\r\nb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n.\r\nb\r\n"},
      {"CrDotCrLf", "a\r.\r\nb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n.\r\nb\r\n"},
      {"CrLfDotLf", "a\r\n.\nb\r\n.\r\n", N, true, npos, Problem::none, "a\r\n\r\nb\r\n"},
      {"LfDotLfAtEnd", "a\n.\n", N, false, npos, Problem::none, "a\r\n.\r\n"},
      {"LfDotLfReject", "a\n.\nb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"CrDotCrReject", "a\r.\rb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"CrLfDotCrReject", "a\r\n.\rb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"LfDotCrLfReject", "a\n.\r\nb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"CrDotCrLfReject", "a\r.\r\nb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"BareLfNormalized", "a\nb\r\n.\r\n", N, true, npos, Problem::none, "a\r\nb\r\n"},
      {"BareCrNormalized", "a\rb\r\n.\r\n", N, true, npos, Problem::none, "a\r\nb\r\n"},
      {"CrCrLf", "a\r\r\n.\r\n", N, true, npos, Problem::none, "a\r\n\r\n"},
      {"BareLfAtStartNormalized", "\n.\r\n.\r\n", N, true, npos, Problem::none, "\r\n.\r\n"},
      {"BareLfRejected", "a\nb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"BareCrRejected", "a\rb\r\n.\r\n", J, true, npos, Problem::bare_newline, ""},
      {"Nul", std::string("a\0b\r\n.\r\n", 8), J, true, npos, Problem::nul, ""},
      {"NulAtLineStart", std::string("\0\r\n.\r\n", 6), J, true, npos, Problem::nul, ""},
      {"FirstProblemWins", std::string("a\nb\0\r\n.\r\n", 9), J, true, npos, Problem::bare_newline,
       ""},
      {"Line1000", std::string(998, 'x') + "\r\n.\r\n", J, true, npos, Problem::none,
       std::string(998, 'x') + "\r\n"},
      {"Line1001", std::string(999, 'x') + "\r\n.\r\n", J, true, npos, Problem::line_too_long, ""},
      {"Line1000Stuffed", "." + std::string(998, '.') + "\r\n.\r\n", J, true, npos, Problem::none,
       std::string(998, '.') + "\r\n"},
      {"Line1001Stuffed", "." + std::string(999, '.') + "\r\n.\r\n", J, true, npos,
       Problem::line_too_long, ""},
      {"LongLineBrokenByBareLf", std::string(900, 'x') + "\n" + std::string(900, 'y') + "\r\n.\r\n",
       N, true, npos, Problem::none,
       std::string(900, 'x') + "\r\n" + std::string(900, 'y') + "\r\n"},
  };
}

class DotTest : public ::testing::TestWithParam<DotCase> {};

TEST_P(DotTest, Decodes) {
  const auto& c = GetParam();
  const auto out = run_dot(c.input, limits(c.policy));
  EXPECT_EQ(out.done, c.done);
  EXPECT_EQ(out.consumed, c.consumed == npos ? c.input.size() : c.consumed);
  EXPECT_EQ(out.problem, c.problem);
  if (c.problem == Problem::none) {
    EXPECT_EQ(out.content, c.content);
    EXPECT_EQ(out.received, c.content.size());
  } else {
    EXPECT_EQ(out.content, "");  // dropped once a problem is seen
  }
}

// Every split of the input into two chunks gives the one-chunk result.
TEST_P(DotTest, SameResultForEverySplit) {
  const auto& c = GetParam();
  const auto whole = run_dot(c.input, limits(c.policy));
  for (std::size_t at = 0; at <= c.input.size(); ++at) {
    EXPECT_EQ(run_dot(c.input, limits(c.policy), {at}), whole) << "split at " << at;
  }
}

// Three-way splits too, for the "\r\n.\r\n" state spread over three chunks.
// Long inputs (quadratic in their length) are split only around their last
// 40 octets, where the terminator and its states are.
TEST_P(DotTest, SameResultForEveryDoubleSplit) {
  const auto& c = GetParam();
  const auto whole = run_dot(c.input, limits(c.policy));
  const std::size_t from = c.input.size() > 40 ? c.input.size() - 40 : 0;
  for (std::size_t a = from; a <= c.input.size(); ++a) {
    for (std::size_t b = a; b <= c.input.size(); ++b) {
      EXPECT_EQ(run_dot(c.input, limits(c.policy), {a, b}), whole) << a << "," << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Data, DotTest, ::testing::ValuesIn(dot_cases()),
                         [](const auto& row) { return row.param.name; });

TEST(DataReader, ByteByByte) {
  const std::string input = "From: a\r\n..x\r\ny\n.\r\n.\r\nNOOP\r\n";
  auto reader = DataReader::dot_terminated(limits(N));
  std::size_t consumed = 0;
  for (const char c : input) consumed += reader.feed(std::string_view(&c, 1));
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(consumed, input.size() - 6);
  EXPECT_EQ(reader.take_content(), "From: a\r\n.x\r\ny\r\n.\r\n");
}

TEST(DataReader, FeedAfterDoneConsumesNothing) {
  auto reader = DataReader::dot_terminated(limits());
  EXPECT_EQ(reader.feed(".\r\n"), 3u);
  EXPECT_EQ(reader.feed("MAIL FROM:<>\r\n"), 0u);
}

TEST(DataReader, SizeAtAndPastTheEdge) {
  const std::string body = "0123456789\r\n";  // 12 octets
  const auto at = run_dot(body + ".\r\n", limits(J, 12));
  EXPECT_EQ(at.problem, Problem::none);
  EXPECT_EQ(at.content, body);
  const auto past = run_dot(body + ".\r\n", limits(J, 11));
  EXPECT_TRUE(past.done);
  EXPECT_EQ(past.problem, Problem::too_big);
  EXPECT_EQ(past.content, "");
  EXPECT_EQ(past.received, 12u);  // counted to the end, not stored
}

TEST(DataReader, SizeCountsNormalizedLineEnds) {
  // "a\nb\r\n" is stored as "a\r\nb\r\n": 6 octets, not 5.
  EXPECT_EQ(run_dot("a\nb\r\n.\r\n", limits(N, 6)).problem, Problem::none);
  EXPECT_EQ(run_dot("a\nb\r\n.\r\n", limits(N, 5)).problem, Problem::too_big);
}

TEST(DataReader, MemoryStaysBoundedPastTheLimit) {
  auto reader = DataReader::dot_terminated(limits(J, 1000, 100000));
  const std::string line(98, 'x');
  for (int i = 0; i < 10000; ++i) {
    ASSERT_EQ(reader.feed(line + "\r\n"), 100u);
  }
  EXPECT_EQ(reader.feed(".\r\n"), 3u);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.problem(), Problem::too_big);
  EXPECT_EQ(reader.received(), 1'000'000u);
  EXPECT_EQ(reader.take_content(), "");
}

TEST(DataReader, OverlongLineInTheFastPathArrivingInPieces) {
  auto reader = DataReader::dot_terminated(limits());
  for (int i = 0; i < 20; ++i) reader.feed(std::string(100, 'x'));
  reader.feed("\r\n.\r\n");
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.problem(), Problem::line_too_long);
}

// BDAT: the reader consumes exactly each chunk and carries state across them.
struct ChunkResult {
  std::vector<std::size_t> consumed;
  bool done = false;
  Problem problem = Problem::none;
  std::string content;
};

ChunkResult run_chunks(const std::vector<std::string>& chunks, const DataLimits& l,
                       const std::string& trailing = "RSET\r\n") {
  auto reader = DataReader::chunked(l);
  ChunkResult out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    reader.begin_chunk(chunks[i].size(), i + 1 == chunks.size());
    out.consumed.push_back(reader.feed(chunks[i] + trailing));
    EXPECT_TRUE(reader.chunk_done());
    EXPECT_EQ(reader.chunk_remaining(), 0u);
  }
  out.done = reader.done();
  out.problem = reader.problem();
  out.content = reader.take_content();
  return out;
}

TEST(Bdat, ChunksAreConsumedExactly) {
  const auto out = run_chunks({"Subject: x\r\n\r\nbo", "dy\r\n"}, limits());
  EXPECT_EQ(out.consumed, (std::vector<std::size_t>{16, 4}));
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.problem, Problem::none);
  EXPECT_EQ(out.content, "Subject: x\r\n\r\nbody\r\n");
}

TEST(Bdat, NoDotHandling) {
  const auto out = run_chunks({"a\r\n.\r\n..b\r\n"}, limits());
  EXPECT_EQ(out.content, "a\r\n.\r\n..b\r\n");
}

TEST(Bdat, CrLfSplitAcrossChunks) {
  const auto out = run_chunks({"a\r", "\nb\r\n"}, limits());
  EXPECT_EQ(out.problem, Problem::none);
  EXPECT_EQ(out.content, "a\r\nb\r\n");
}

TEST(Bdat, BareCrAtTheVeryEnd) {
  EXPECT_EQ(run_chunks({"a\r"}, limits(N)).content, "a\r\n");
  EXPECT_EQ(run_chunks({"a\r"}, limits(J)).problem, Problem::bare_newline);
}

TEST(Bdat, MissingFinalCrLfIsAdded) {
  EXPECT_EQ(run_chunks({"a\r\nb"}, limits()).content, "a\r\nb\r\n");
}

TEST(Bdat, EmptyLastChunk) {
  const auto out = run_chunks({"a\r\n", ""}, limits());
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.content, "a\r\n");
  EXPECT_EQ(out.consumed, (std::vector<std::size_t>{3, 0}));
}

TEST(Bdat, EmptyMessage) {
  const auto out = run_chunks({""}, limits());
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.content, "");
}

TEST(Bdat, BareNewlinesAndNul) {
  EXPECT_EQ(run_chunks({"a\nb\r\n"}, limits(N)).content, "a\r\nb\r\n");
  EXPECT_EQ(run_chunks({"a\nb\r\n"}, limits(J)).problem, Problem::bare_newline);
  EXPECT_EQ(run_chunks({std::string("a\0\r\n", 4)}, limits()).problem, Problem::nul);
}

TEST(Bdat, LineLengthAcrossChunks) {
  EXPECT_EQ(run_chunks({std::string(500, 'x'), std::string(498, 'x') + "\r\n"}, limits()).problem,
            Problem::none);
  EXPECT_EQ(run_chunks({std::string(500, 'x'), std::string(499, 'x') + "\r\n"}, limits()).problem,
            Problem::line_too_long);
}

TEST(Bdat, SizeAtAndPastTheEdge) {
  EXPECT_EQ(run_chunks({"abcd\r\n", "ef\r\n"}, limits(J, 10)).problem, Problem::none);
  EXPECT_EQ(run_chunks({"abcd\r\n", "efg\r\n"}, limits(J, 10)).problem, Problem::too_big);
}

TEST(Bdat, ChunkArrivingInPieces) {
  auto reader = DataReader::chunked(limits());
  reader.begin_chunk(10, false);
  EXPECT_EQ(reader.feed("abc"), 3u);
  EXPECT_FALSE(reader.chunk_done());
  EXPECT_EQ(reader.chunk_remaining(), 7u);
  EXPECT_EQ(reader.feed("defgh\r\nNOOP\r\n"), 7u);
  EXPECT_TRUE(reader.chunk_done());
  EXPECT_FALSE(reader.done());
  EXPECT_EQ(reader.feed("more"), 0u);  // no chunk announced
  reader.begin_chunk(0, true);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.take_content(), "abcdefgh\r\n");
}

TEST(Bdat, EverySplitOfAChunkGivesTheSameContent) {
  const std::string chunk = "a\r\n.b\r\rc\nd\r\n";
  for (std::size_t at = 0; at <= chunk.size(); ++at) {
    auto reader = DataReader::chunked(limits(N));
    reader.begin_chunk(chunk.size(), true);
    reader.feed(chunk.substr(0, at));
    reader.feed(chunk.substr(at));
    EXPECT_TRUE(reader.done());
    EXPECT_EQ(reader.take_content(), "a\r\n.b\r\n\r\nc\r\nd\r\n") << at;
  }
}

TEST(Bdat, BeginChunkIsIgnoredWhileAChunkIsPending) {
  auto reader = DataReader::chunked(limits());
  reader.begin_chunk(4, false);
  reader.begin_chunk(100, true);
  EXPECT_EQ(reader.chunk_remaining(), 4u);
  EXPECT_EQ(reader.feed("ab\r\nxx"), 4u);
  EXPECT_FALSE(reader.done());
}

}  // namespace
}  // namespace maild::smtp
