// Replies from remote SMTP servers (RFC 5321 4.2; enhanced status codes,
// RFC 3463 / RFC 2034) and the extensions an EHLO reply offers.
// Trust: none; the servers are anywhere on the Internet. Pure: never touches a
// socket. A reply is bounded in line length and line count (smtp/limits.hpp);
// anything malformed is a protocol error, never guessed at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace maild::smtp {

struct ServerReply {
  int code = 0;          // 200..599
  std::string enhanced;  // "2.1.5" when the first line had one of the code's class; else ""
  std::vector<std::string> lines;  // each line's text: no code, separator or enhanced code

  int kind() const { return code / 100; }  // 2 positive, 3 intermediate, 4 transient, 5 permanent
  // "550 5.1.1 no such user; try later": the code, the enhanced code (x.0.0
  // when the server sent none), the lines' text joined by "; ", printable
  // ASCII only, at most reply_summary_text_max octets of text.
  std::string summary() const;

  bool operator==(const ServerReply&) const = default;
};

// Takes a reply line by line, as it arrives.
class ReplyParser {
 public:
  enum class Status { incomplete, complete, malformed };

  // One line without its CRLF. After complete, take() the reply; after
  // malformed, problem() says why and the parser stays malformed until reset().
  Status feed(std::string_view line);
  ServerReply take();
  const std::string& problem() const { return problem_; }
  void reset();

 private:
  Status fail(std::string why);

  ServerReply reply_;
  std::string problem_;
  bool malformed_ = false;
};

// A whole reply as it came off the wire ("250-a\r\n250 b\r\n"): the reply,
// or why it is malformed (also when bytes follow its last line).
std::variant<ServerReply, std::string> parse_reply(std::string_view text);

// What an EHLO reply offers (RFC 5321 4.1.1.1: one keyword per line after the first).
struct Extensions {
  bool pipelining = false;             // RFC 2920
  bool starttls = false;               // RFC 3207
  bool eight_bit_mime = false;         // RFC 6152
  bool smtputf8 = false;               // RFC 6531
  bool dsn = false;                    // RFC 3461
  bool enhanced_status_codes = false;  // RFC 2034
  bool chunking = false;               // RFC 3030 (not used for sending yet)
  bool source = false;                 // SOURCE/GET (docs/source-get.md)
  std::optional<std::uint64_t> size;   // RFC 1870 SIZE; 0 or absent: no limit announced
  std::vector<std::string> auth;       // RFC 4954 mechanisms, upper case

  bool operator==(const Extensions&) const = default;
};
Extensions parse_extensions(const ServerReply& ehlo);

}  // namespace maild::smtp
