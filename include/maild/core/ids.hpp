// Identifiers that appear in logs and replies.
// Trust: none needed; process-local generation.
#pragma once

#include <string>

namespace maild {

// A session id: 12 characters [0-9A-Z], unique within a process and, with its
// random per-process prefix, unlikely to repeat across processes and restarts.
std::string next_session_id();

// 32 lowercase hex characters from OpenSSL's CSPRNG (128 bits): tokens, nonces.
std::string random_hex_128();

}  // namespace maild
