// UTF-8 well-formedness (RFC 3629), for addresses, identities and trace text.
// Trust: takes untrusted text; pure.
#pragma once

#include <string_view>

namespace maild {

// Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view text);

}  // namespace maild
