// Delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report):
// what a sender gets when recipients failed, are delayed, were delivered to
// local mailboxes, or were relayed to a server that cannot report further. Pure: text in, text out.
// Trust: remote replies and the original message are untrusted text; replies
// are reduced to printable ASCII on one line before they go into a field.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "maild/core/units.hpp"
#include "maild/store/types.hpp"

namespace maild::delivery {

// RFC 3461 4.3 leaves the default to us: the whole message up to this size,
// only its header above it, so that a bounce of a large message stays small.
inline constexpr ByteSize notice_full_return_max = 1_MiB;

struct NoticeRecipient {
  std::string address;  // the recipient as queued
  std::string orcpt;    // "rfc822;bob@example.com", "" when absent
  store::RecipientState state =
      store::RecipientState::failed;  // failed, queued (delayed), delivered (relayed or here)
  std::string last_reply;             // "550 5.1.1 no such user", or our own reason
  std::string remote_host;            // "mx.example.org[192.0.2.1]", "" when no server answered;
                                      // delivered without one: delivered to our own mailbox
};

struct NoticeInput {
  std::string hostname;      // the reporting MTA
  std::string reverse_path;  // the original sender: the notice's recipient
  std::string envid;
  store::DsnReturn ret = store::DsnReturn::unspecified;
  std::chrono::system_clock::time_point arrival;
  std::chrono::system_clock::time_point now;
  std::chrono::system_clock::time_point retry_until;  // for delayed recipients
  std::vector<NoticeRecipient> recipients;
  std::string original;  // the message as sent onward (trace + content), CRLF lines
  std::string token;     // unique per notice (a random id): Message-ID and MIME boundary
};

// The notice's content: RFC 5322 header and multipart/report body, CRLF
// lines of at most 998 octets. Failed recipients make it a failure notice
// (with the original message, or its header with RET=HDRS or when large);
// otherwise it is a delay notice, or a success notice (Action: delivered for
// our own mailboxes, relayed for a server without DSN), with the original
// header only, or the whole message for a success notice with RET=FULL.
std::string compose_notice(const NoticeInput& input);

// The RFC 3463 status code in a reply ("550 5.1.1 text" -> "5.1.1"), or the
// class's generic code ("5.0.0", "4.0.0", "2.0.0") when the reply has none.
std::string status_of(const std::string& reply);

// Whether the sender asked for (or defaulted to) a notice of this kind (RFC 3461 4.1).
bool wants_failure_notice(const std::string& reverse_path, unsigned notify);
bool wants_delay_notice(const std::string& reverse_path, unsigned notify);

}  // namespace maild::delivery
