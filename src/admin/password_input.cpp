// Reads a password from stdin (fd 0) and, on a terminal, prompts on stderr.
// Trust: the input is the administrator's; it is only hashed, never echoed or logged.
#include "password_input.hpp"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "command.hpp"

namespace maild::admin {

namespace {

// Turns terminal echo off for as long as it lives, restoring it even when reading throws.
class EchoOff {
 public:
  EchoOff() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0)
      throw RequestError("cannot read the terminal settings");
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the Enter still moves to a new line
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) throw RequestError("cannot turn off echo");
  }
  ~EchoOff() { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_); }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  termios saved_{};
};

std::string first_line() {
  std::string line;
  if (!std::getline(std::cin, line) && line.empty())
    throw RequestError("no password on standard input");
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  if (line.empty()) throw RequestError("empty password");
  return line;
}

std::string prompt(const char* text) {
  // Echo goes off before the prompt shows, so nothing typed after it can appear.
  const EchoOff quiet;
  std::cerr << text << std::flush;
  return first_line();
}

}  // namespace

std::string read_new_password() {
  if (isatty(STDIN_FILENO) == 0) return first_line();
  std::string password = prompt("New password: ");
  if (prompt("Repeat password: ") != password) throw RequestError("the passwords do not match");
  return password;
}

}  // namespace maild::admin
