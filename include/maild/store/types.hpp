// Value types shared by the store interfaces.
// Trust: plain data; addresses in here were validated by their producer.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace maild::store {

// Any failure of the store (disk full, database gone, lost connection, busy).
// Sessions answer it with a temporary failure (SMTP 451 4.3.0, POP3 -ERR [SYS/TEMP]).
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A request the store refuses because of what is asked (duplicate user,
// unknown domain, ...): the caller's mistake, reported as is.
struct StoreConflict : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using MailboxId = std::int64_t;
using MessageId = std::int64_t;
using DeliveryId = std::int64_t;

// Per-mailbox delivery status. Values only grow (a merge keeps the higher one).
enum class DeliveryStatus : int { fresh = 0, retrieved = 1, deleted = 2 };

struct Domain {
  std::string name;
  std::int64_t created_at = 0;  // unix seconds
};

struct Mailbox {
  MailboxId id = 0;
  std::string address;  // local@domain, as stored (lowercase domain)
  std::int64_t created_at = 0;
};

// One alias row: mail for `source` also goes to `target`. A source of
// "@domain" is that domain's catch-all.
struct Alias {
  std::string source;
  std::string target;
};

// What a recipient address resolves to.
struct Resolution {
  enum class Kind { mailboxes, unknown_local, not_local } kind = Kind::not_local;
  std::vector<MailboxId> mailboxes;   // kind == mailboxes: distinct local mailboxes
  std::vector<std::string> forwards;  // kind == mailboxes: alias targets outside our domains
};

// A message to be delivered to local mailboxes in one commit.
struct NewMessage {
  std::string reverse_path;          // without <>; empty for the null sender
  std::vector<MailboxId> mailboxes;  // duplicates are delivered once
  std::string trace;    // Return-Path and Received lines (CRLF), prepended on retrieval
  std::string content;  // the message as received, CRLF lines, not dot-stuffed
};

struct StoredMessage {
  MessageId message_id = 0;
  std::string content_hash;            // 64 hex characters, SHA-256 of content
  std::vector<DeliveryId> deliveries;  // one per distinct mailbox, in mailboxes order
};

// One row of `mailctl mail list`.
struct MailSummary {
  DeliveryId id = 0;
  std::string mailbox;
  std::string reverse_path;
  std::string subject;     // from the content's Subject header, unfolded; may be empty
  std::uint64_t size = 0;  // octets as served (trace + content)
  std::string uidl;
  DeliveryStatus status = DeliveryStatus::fresh;
  std::int64_t received_at = 0;
};

struct MailDetail {
  MailSummary summary;
  std::string content_hash;
  std::string trace;
  std::string content;
};

// A login: the mailbox behind an address and its crypt(3) hash.
struct Account {
  MailboxId mailbox = 0;
  std::string address;
  std::string password_hash;
};

// One message of a maildrop as POP3 lists it (no content read).
struct MaildropEntry {
  DeliveryId id = 0;
  std::uint64_t size = 0;  // octets as served: trace + content
  std::string uidl;
};

// What POP3 sends for RETR/TOP: the trace lines, then the content.
struct MessageText {
  std::string trace;
  std::string content;
};

struct StoreStatus {
  std::string backend;   // "sqlite" or "mysql"
  std::string location;  // file path or endpoint
  int schema_version = 0;
  int latest_schema_version = 0;
  std::int64_t domains = 0, mailboxes = 0, aliases = 0, messages = 0, deliveries = 0;
};

}  // namespace maild::store
