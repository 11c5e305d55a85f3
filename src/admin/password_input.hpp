// Reading a new password: never from the command line (it would show in ps and
// shell history), only from stdin or a no-echo prompt on the terminal.
#pragma once

#include <string>

namespace maild::admin {

// From a pipe or file: the first line, its CR/LF stripped. From a terminal:
// asked twice without echo. Throws RequestError when empty, unreadable or mismatched.
std::string read_new_password();

}  // namespace maild::admin
