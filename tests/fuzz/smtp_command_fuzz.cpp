// Fuzzes the command parser: arbitrary bytes must parse or be refused without
// crashing, and every MAIL/RCPT path it accepts must parse again to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/command.hpp"

namespace {

void check_reparses(const maild::smtp::Path& path, maild::smtp::PathKind kind) {
  if (path.is_null()) return;
  const auto again = maild::smtp::parse_path("<" + path.address() + ">", kind);
  if (!again) std::abort();
  if (!path.is_postmaster() && !(*again == path)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto result = maild::smtp::parse_command(line);
  const auto* command = std::get_if<maild::smtp::Command>(&result);
  if (command == nullptr) {
    const auto& reply = std::get<maild::smtp::Reply>(result);
    if (reply.code < 500 || reply.code > 599 || reply.enhanced.empty()) std::abort();
    return 0;
  }
  if (const auto* mail = std::get_if<maild::smtp::Mail>(&command->parsed)) {
    check_reparses(mail->reverse_path, maild::smtp::PathKind::reverse);
    if (mail->envid.size() > 100) std::abort();
  } else if (const auto* rcpt = std::get_if<maild::smtp::Rcpt>(&command->parsed)) {
    check_reparses(rcpt->forward_path, maild::smtp::PathKind::forward);
    if (rcpt->forward_path.is_null()) std::abort();
    const unsigned never = maild::smtp::notify_never;
    if ((rcpt->notify & never) != 0 && rcpt->notify != never) std::abort();
  } else if (const auto* token = std::get_if<maild::smtp::Token>(&command->parsed)) {
    // A SOURCE/GET token is exactly 32 characters 0-9 a-f, nothing else.
    if (token->value.size() != 32 ||
        token->value.find_first_not_of("0123456789abcdef") != std::string::npos)
      std::abort();
  } else if (const auto* hello = std::get_if<maild::smtp::Hello>(&command->parsed)) {
    // A domain, an address literal, or the lenient form Windows clients send (my_host).
    const bool lenient = hello->domain.find_first_not_of(
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                         std::string::npos;
    if (!maild::smtp::valid_domain(hello->domain) && !lenient) std::abort();
  }
  // Decoded xtext never carries CR or LF into later header fields.
  const auto xtext = maild::smtp::xtext_decode(line);
  if (xtext && xtext->find_first_of("\r\n", 0) != std::string::npos) std::abort();
  if (xtext && maild::smtp::xtext_decode(maild::smtp::xtext_encode(*xtext)) != xtext) std::abort();
  return 0;
}
