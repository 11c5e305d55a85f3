// DATA transparency in the sending direction (RFC 5321 4.5.2): a leading "."
// on a line is doubled, and ".\r\n" ends the content. Used to send a message
// in reply to GET; works chunk by chunk so a large message is never copied whole.
// Trust: the content is stored mail (CRLF lines); pure, never touches a socket.
#pragma once

#include <string>
#include <string_view>

namespace maild::smtp {

class DotStuffer {
 public:
  // The chunk with every "." that starts a line doubled; chunks may split anywhere.
  std::string stuff(std::string_view chunk);
  // What ends the content: a CRLF if the last line lacked one, then ".\r\n".
  std::string finish() const;

 private:
  bool line_start_ = true;  // the next octet starts a line (after CRLF, or at the very start)
  bool after_cr_ = false;   // the last octet was CR
};

}  // namespace maild::smtp
