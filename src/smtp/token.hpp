// SOURCE/GET tokens as the SMTP extension writes them (SOURCE-GET.md 2): their
// syntax, and what of one a log may show.
// Trust: a token from the network is untrusted text until valid_token() says
// otherwise; a token is a secret, so logs and transcripts show only its start.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace maild::smtp {

inline constexpr std::size_t token_length = 32;
// How much of a token the log may show (SOURCE-GET.md 6).
inline constexpr std::size_t token_shown = 8;

// Exactly 32 characters [0-9a-f].
bool valid_token(std::string_view text);

// The first 8 characters and "..." (all of a shorter text): what logs show.
std::string shown_token(std::string_view token);

// `text` with every occurrence of `token` shortened to shown_token(token).
std::string redact_token(std::string_view text, std::string_view token);

}  // namespace maild::smtp
