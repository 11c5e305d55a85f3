// Fuzzes the DATA/BDAT decoder with random chunking: it never consumes more
// than it is given, never stores past max_size, and in normalize mode stores
// only CRLF line ends.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/data_reader.hpp"

namespace {

// Every CR is followed by LF and every LF preceded by CR.
bool crlf_only(const std::string& content) {
  for (std::size_t i = 0; i < content.size(); ++i) {
    if (content[i] == '\r' && (i + 1 == content.size() || content[i + 1] != '\n')) return false;
    if (content[i] == '\n' && (i == 0 || content[i - 1] != '\r')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  using maild::smtp::BareNewline;
  using maild::smtp::DataReader;
  const bool counted = (data[0] & 1) != 0;
  const auto policy = (data[0] & 2) != 0 ? BareNewline::normalize : BareNewline::reject;
  const maild::smtp::DataLimits limits{maild::ByteSize{std::uint64_t{data[1]} * 4},
                                       std::size_t{3} + data[2] % 80, policy};
  const std::size_t chunk = 1 + data[3] % 17;
  const std::string_view input(reinterpret_cast<const char*>(data) + 4, size - 4);

  auto reader = counted ? DataReader::chunked(limits) : DataReader::dot_terminated(limits);
  // BDAT: the first third of the input as one chunk, the rest as the LAST one.
  if (counted) reader.begin_chunk(input.size() / 3, false);
  std::size_t at = 0;
  while (at < input.size() && !reader.done()) {
    if (counted && reader.chunk_done()) reader.begin_chunk(input.size() - at, true);
    const auto piece = input.substr(at, chunk);
    const std::size_t used = reader.feed(piece);
    if (used > piece.size()) std::abort();
    // Short only at the end of the data or of a chunk: the rest is the next command's.
    if (used < piece.size() && !reader.done() && !reader.chunk_done()) std::abort();
    if (reader.received() > limits.max_size.bytes &&
        reader.problem() == DataReader::Problem::none) {
      std::abort();
    }
    at += used;
  }
  if (counted) {
    if (!reader.done()) reader.begin_chunk(0, true);
    if (!reader.done()) std::abort();
  }
  const bool clean = reader.problem() == DataReader::Problem::none;
  const auto content = reader.take_content();
  if (content.size() > limits.max_size.bytes) std::abort();
  if (!clean && !content.empty()) std::abort();
  if (policy == BareNewline::normalize && !crlf_only(content)) std::abort();
  return 0;
}
