// What the SMTP client sends (an OutboundMessage: one message for some
// recipients at one domain) and what it reports (a RecipientOutcome per
// recipient). The courier hands it these; client.hpp is where to look.
// Trust: plain data; the queue produced it from validated envelopes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "maild/store/types.hpp"

namespace maild::smtp {

// One message for one or more recipients, all at one domain.
struct OutboundMessage {
  store::QueueId queue_id = 0;
  std::string reverse_path;  // "" = null sender
  std::string envid;         // RFC 3461 ENVID, decoded; "" when absent
  store::DsnReturn ret = store::DsnReturn::unspecified;
  bool smtputf8 = false;
  bool eight_bit = false;
  std::vector<store::QueueRecipient> recipients;  // uses id, address, notify, orcpt
  std::string text;                    // outbound trace + content, CRLF lines, not dot-stuffed
  std::size_t trace_size = 0;          // text's first octets that are the outbound trace
  std::chrono::sys_seconds arrival{};  // when the message was queued
};

struct RecipientOutcome {
  enum class Kind { delivered, temporary, permanent };
  store::QueueRecipientId recipient = 0;
  Kind kind = Kind::temporary;
  // "250 2.0.0 Ok: queued" / the remote 5xx / our own "451 4.4.1 ...": always
  // code + enhanced code + text; a temporary outcome always has a 4xx code.
  std::string reply;
  std::string remote_host;   // "mx.example.org[127.0.0.2]", "" when no server answered
  bool dsn_relayed = false;  // delivered to a peer without DSN although NOTIFY=SUCCESS was asked
  // Temporary because the reply to the end of the content never came: the
  // peer may have taken the message, so a retry may deliver it twice.
  bool unconfirmed = false;
};

}  // namespace maild::smtp
