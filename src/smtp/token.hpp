// TEMPORARY shim until the token grammar moves here from reverse/.
#pragma once
#include "reverse/token.hpp"
namespace maild::smtp {
using reverse::redact_token;
using reverse::shown_token;
using reverse::valid_token;
}  // namespace maild::smtp
