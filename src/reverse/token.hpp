// SOURCE/GET tokens: the one capability that grants a GET (SOURCE-GET.md 2).
// Their syntax and redaction are the SMTP extension's (smtp/token.hpp); here
// they are made. Trust: a token is a secret, so logs show only its start.
#pragma once

#include <string>

namespace maild::reverse {

// 128 bits from the CSPRNG as 32 lowercase hex characters (smtp::valid_token):
// never derived from the content, a counter or a clock.
std::string new_token();

}  // namespace maild::reverse
