// Token making; see token.hpp.
#include "reverse/token.hpp"

#include "maild/core/ids.hpp"

namespace maild::reverse {

std::string new_token() { return random_hex_128(); }

}  // namespace maild::reverse
