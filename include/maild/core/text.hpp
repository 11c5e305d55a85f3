// Small wording helpers for log lines, replies and mailctl output.
// Trust: none needed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace maild {

// "1 recipient", "2 recipients": a count with its noun; the plural is the
// noun with an "s" unless given ("mailbox", "mailboxes").
inline std::string counted(std::size_t count, std::string_view noun, std::string_view plural = {}) {
  std::string text = std::to_string(count) + " ";
  if (count == 1 || !plural.empty())
    text += count == 1 ? noun : plural;
  else
    (text += noun) += 's';
  return text;
}

}  // namespace maild
