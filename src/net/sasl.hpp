// TEMPORARY shim until sasl moves here from smtp/.
#pragma once
#include "smtp/sasl.hpp"
namespace maild::net {
using smtp::decode_login_field;
using smtp::decode_plain;
using smtp::login_password_challenge;
using smtp::login_username_challenge;
}  // namespace maild::net
