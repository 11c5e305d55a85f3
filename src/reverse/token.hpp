// SOURCE/GET tokens: the one capability that grants a GET (SOURCE-GET.md 2).
// Trust: a token from the network is untrusted text until valid_token() says
// otherwise; a token is a secret, so logs and transcripts show only its start.
#pragma once

#include <string>
#include <string_view>

namespace maild::reverse {

inline constexpr std::size_t token_length = 32;
// How much of a token the log may show (SOURCE-GET.md 6).
inline constexpr std::size_t token_shown = 8;

// Exactly 32 characters [0-9a-f].
bool valid_token(std::string_view text);

// 128 bits from the CSPRNG as 32 lowercase hex characters: never derived from
// the content, a counter or a clock.
std::string new_token();

// The first 8 characters and "..." (all of a shorter text): what logs show.
std::string shown_token(std::string_view token);

// `text` with every occurrence of `token` shortened to shown_token(token).
std::string redact_token(std::string_view text, std::string_view token);

}  // namespace maild::reverse
