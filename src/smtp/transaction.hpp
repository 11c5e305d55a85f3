// The mail transaction: from MAIL to the end of DATA, BDAT LAST or SOURCE, or
// RSET. Apart from the session, as what a message's envelope is made of.
// Trust: built from parsed, checked commands and the store's answers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "maild/store/types.hpp"
#include "smtp/command.hpp"
#include "smtp/data_reader.hpp"

namespace maild::smtp {

struct Transaction {
  Mail mail;
  std::vector<Rcpt> recipients;                    // accepted ones, in order
  std::vector<store::MailboxId> mailboxes;         // their local mailboxes, each once
  std::vector<store::OutboundRecipient> outbound;  // relayed and forwarded, each once
  std::optional<DataReader> chunks;                // BDAT content received so far
  // Accepted recipients that resolved to local mailboxes only: a recipient
  // accepted for another server (relay, forward) has no entry.
  std::vector<store::RetrievalRecipient> local;
  // Those of `local` that asked for a success notice (NOTIFY=SUCCESS): delivered at acceptance.
  std::vector<store::OutboundRecipient> delivered;
  // Header fields that checks asked for (CRLF lines): they go between
  // Return-Path and Received when the message is accepted.
  std::string headers;
};

}  // namespace maild::smtp
