// Every reply code the SMTP server sends, each with its enhanced status code
// (RFC 3463, RFC 2034), named once: handlers name what they mean, this table
// says how it is written on the wire.
// Trust: plain constants.
#pragma once

#include <string_view>

namespace maild::smtp {

struct Status {
  int code = 0;
  std::string_view enhanced;  // "" for replies that carry none (greeting, EHLO, 334, 354)

  bool permanent() const { return code >= 500; }
};

namespace status {
// Positive.
inline constexpr Status help{214, "2.0.0"};
inline constexpr Status greeting{220, ""};
inline constexpr Status tls_ready{220, "2.0.0"};
inline constexpr Status closing{221, "2.0.0"};
inline constexpr Status authenticated{235, "2.7.0"};
inline constexpr Status hello{250, ""};
inline constexpr Status ok{250, "2.0.0"};
inline constexpr Status sender_ok{250, "2.1.0"};
inline constexpr Status recipient_ok{250, "2.1.5"};
inline constexpr Status cannot_verify{252, "2.5.0"};
inline constexpr Status auth_challenge{334, ""};
inline constexpr Status start_data{354, ""};
inline constexpr Status start_transfer{354, "2.0.0"};  // GET: the content follows

// Temporary.
inline constexpr Status shutting_down{421, "4.3.2"};  // also: too many connections
inline constexpr Status timed_out{421, "4.4.2"};
inline constexpr Status closing_abuse{421, "4.7.0"};  // too many errors, failures or unknown tokens
inline constexpr Status unavailable{450, "4.3.0"};    // GET: try later
inline constexpr Status local_error{451, "4.3.0"};    // the store failed
inline constexpr Status check_failed{451, "4.3.5"};   // a check could not run
inline constexpr Status too_many_pending{452, "4.3.1"};
inline constexpr Status insufficient_storage{452, "4.3.1"};
inline constexpr Status too_many_recipients{452, "4.5.3"};
inline constexpr Status tls_unavailable{454, "4.7.0"};  // also: temporary AUTH failure

// Permanent.
inline constexpr Status unrecognized{500, "5.5.1"};
inline constexpr Status line_too_long{500, "5.5.2"};
inline constexpr Status cancelled{501, "5.0.0"};
inline constexpr Status malformed_response{501, "5.5.2"};
inline constexpr Status syntax_error{501, "5.5.4"};
inline constexpr Status not_implemented{502, "5.5.1"};
inline constexpr Status bad_sequence{503, "5.5.1"};
inline constexpr Status unknown_mechanism{504, "5.5.4"};
inline constexpr Status tls_or_auth_required{530, "5.7.0"};
inline constexpr Status bad_credentials{535, "5.7.8"};
inline constexpr Status encryption_required{538, "5.7.11"};
inline constexpr Status unknown_token{550, "5.1.0"};
inline constexpr Status unknown_mailbox{550, "5.1.1"};
inline constexpr Status bare_newline{550, "5.5.2"};
inline constexpr Status bad_content{550, "5.6.0"};
inline constexpr Status refused{550, "5.7.1"};  // by policy
inline constexpr Status too_big{552, "5.3.4"};
inline constexpr Status needs_smtputf8{553, "5.6.7"};
inline constexpr Status too_many_hops{554, "5.4.6"};  // a mail loop (RFC 5321 6.3)
inline constexpr Status protocol_error{554, "5.5.1"};
inline constexpr Status relay_denied{554, "5.7.1"};
inline constexpr Status bad_parameters{555, "5.5.4"};
}  // namespace status

}  // namespace maild::smtp
