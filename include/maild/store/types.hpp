// Value types shared by the store interfaces.
// Trust: plain data; addresses in here were validated by their producer.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "maild/config/settings.hpp"

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

// A moment as the store keeps it: whole seconds since the unix epoch (an integer column in
// SQL). The epoch itself stands for "never" where a field says so.
using UnixTime = std::chrono::sys_seconds;

using MailboxId = std::int64_t;
using MessageId = std::int64_t;
using DeliveryId = std::int64_t;

// Per-mailbox delivery status. Values only grow (a merge keeps the higher one).
enum class DeliveryStatus : int { fresh = 0, retrieved = 1, deleted = 2 };

struct Domain {
  std::string name;
  UnixTime created_at;
};

struct Mailbox {
  MailboxId id = 0;
  std::string address;  // local@domain, as stored (lowercase domain)
  UnixTime created_at;
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

using QueueId = std::int64_t;           // a message in the outbound queue
using QueueRecipientId = std::int64_t;  // one recipient of it

// RFC 3461 RET: what a failure notice carries of the original message.
enum class DsnReturn : int { unspecified = 0, full = 1, headers = 2 };

// RFC 3461 NOTIFY bits; 0 means the parameter was not given (failure and delay then apply).
inline constexpr unsigned notify_never = 1;
inline constexpr unsigned notify_success = 2;
inline constexpr unsigned notify_failure = 4;
inline constexpr unsigned notify_delay = 8;

// A recipient on another server: relayed, or the target of a forwarding alias.
struct OutboundRecipient {
  std::string address;  // local@domain, without <>
  unsigned notify = 0;  // notify_* bits
  std::string orcpt;    // "rfc822;bob@example.com" as received; "" when absent
  bool operator==(const OutboundRecipient&) const = default;
};

// A message accepted in one commit: delivered to local mailboxes and queued
// for outbound recipients together, so one 250 covers both or neither.
struct NewMessage {
  std::string reverse_path;          // without <>; empty for the null sender
  std::vector<MailboxId> mailboxes;  // duplicates are delivered once
  std::string trace;    // Return-Path and Received lines (CRLF), prepended on retrieval
  std::string content;  // the message as received, CRLF lines, not dot-stuffed

  // The outbound part (empty: local delivery only). Duplicates are queued once.
  std::vector<OutboundRecipient> outbound;
  std::string outbound_trace;  // the Received line sent onward (no Return-Path)
  std::string envid;           // RFC 3461 ENVID, decoded; "" when absent
  DsnReturn ret = DsnReturn::unspecified;
  bool smtputf8 = false;   // the envelope needs SMTPUTF8 onward
  bool eight_bit = false;  // BODY=8BITMIME was declared

  // Local recipients whose sender asked for a success notice (RCPT NOTIFY=SUCCESS, RFC 3461
  // 6.2): they go into the queue entry already delivered, with the notice owed, so the
  // queue manager sends one "delivered" notice for them. Ignored for the null sender.
  // Duplicates, and addresses also in `outbound`, are queued once.
  std::vector<OutboundRecipient> delivered;
};

// The reply a locally delivered recipient is recorded with (RecipientState::delivered
// with no remote_host): what its "delivered" notice reports.
inline constexpr const char* local_delivery_reply = "250 2.0.0 delivered to mailbox";

struct StoredMessage {
  MessageId message_id = 0;
  std::string content_hash;            // 64 hex characters, SHA-256 of content
  std::vector<DeliveryId> deliveries;  // one per distinct mailbox, in mailboxes order
  std::optional<QueueId> queued;       // the queue entry: outbound recipients, notices owed
};

// A queued recipient's state. Values only grow: queued becomes delivered or failed.
// Delivered with a remote_host: relayed to that server; without one: delivered here
// (NewMessage::delivered).
enum class RecipientState : int { queued = 0, delivered = 1, failed = 2 };

struct QueueRecipient {
  QueueRecipientId id = 0;
  std::string address;
  std::string domain;  // lower case: what routing and leases group by
  unsigned notify = 0;
  std::string orcpt;
  RecipientState state = RecipientState::queued;
  int attempts = 0;
  UnixTime next_attempt;
  std::string last_reply;   // e.g. "450 4.2.0 mailbox busy", or our own reason
  std::string remote_host;  // the server that gave last_reply; "" for our own
  std::string lease_owner;  // "" when not leased
  UnixTime lease_expires;
  bool notice_owed = false;   // a DSN for this recipient is still to be sent
  bool delay_warned = false;  // a delay notice went out already
};

struct QueuedMessage {
  QueueId id = 0;
  std::string reverse_path;  // "" for the null sender: never gets a notice
  std::string envid;
  DsnReturn ret = DsnReturn::unspecified;
  bool smtputf8 = false;
  bool eight_bit = false;
  std::string content_hash;
  std::uint64_t size = 0;  // octets sent: outbound trace + content
  UnixTime queued_at;
  std::vector<QueueRecipient> recipients;  // per call: see DeliveryQueue, QueueAdmin
};

// Work for one delivery attempt: due recipients of one message, all at one
// domain, leased to the caller.
struct DeliveryJob {
  std::string domain;
  QueuedMessage message;  // recipients: the leased ones only
};

// What one attempt did for one leased recipient.
struct RecipientResult {
  enum class Kind { delivered, deferred, failed };
  QueueRecipientId id = 0;
  Kind kind = Kind::deferred;
  UnixTime next_attempt;  // deferred: when to try again
  std::string reply;      // the remote reply, or our reason
  std::string remote_host;
  bool notice = false;        // owe the sender a DSN for this recipient (failure, delay, relayed)
  bool delay_warned = false;  // deferred: this notice is the delay warning
};

// A message matches when one of its recipients is at `domain` and in `state` (each if given).
struct QueueFilter {
  std::optional<std::string> domain;      // recipients at this domain (any case)
  std::optional<RecipientState> state;    // recipients in this state
  std::optional<UnixTime> queued_before;  // queued strictly before
  std::size_t limit = 1000;               // 0: no limit
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
  UnixTime received_at;
  bool verified = false;  // came by a successful GET (SOURCE/GET origin verification)
};

struct MailDetail {
  MailSummary summary;
  std::string content_hash;
  std::string trace;
  std::string content;
};

// ---- SOURCE/GET (the reverse-delivery ports) ----

using RetrievalId = std::int64_t;  // a pending retrieval (D side)
using PickupId = std::int64_t;     // a pickup (O side)

// A pending retrieval's state. Values only grow: pending becomes fetched or failed.
enum class RetrievalState : int { pending = 0, fetched = 1, failed = 2 };

// One recipient a SOURCE was accepted for, with the local mailboxes it resolved to at RCPT.
struct RetrievalRecipient {
  std::string address;
  std::vector<MailboxId> mailboxes;
  bool operator==(const RetrievalRecipient&) const = default;
};

// What the SMTP session records when it accepts SOURCE.
struct NewRetrieval {
  std::string token;         // 32 lowercase hex characters
  std::string reverse_path;  // without <>; never empty
  std::vector<RetrievalRecipient> recipients;
  std::optional<std::uint64_t> declared_size;  // SIZE= of MAIL
  std::string client_address;
  std::string helo;
  std::string trace;  // Return-Path and Received of the SOURCE transaction (CRLF)
};

struct PendingRetrieval {
  RetrievalId id = 0;
  std::string token;
  std::string reverse_path;
  std::string sender_domain;  // lower case
  std::vector<RetrievalRecipient> recipients;
  std::optional<std::uint64_t> declared_size;
  std::string client_address;
  std::string helo;
  std::string trace;
  UnixTime received_at;
  RetrievalState state = RetrievalState::pending;
  int attempts = 0;
  UnixTime next_attempt;
  std::string last_error;
  std::string lease_owner;  // "" when not leased
  UnixTime lease_expires;
};

// What add_retrieval did.
struct RetrievalAdded {
  enum class Outcome {
    added,          // recorded now
    already_added,  // the same token and reverse-path were recorded before (a retried SOURCE)
    token_taken,    // the token is recorded for another reverse-path
    domain_full,    // the sender domain has the most pending retrievals allowed
    client_full,    // the client address has announced the most pending retrievals allowed
  };
  Outcome outcome = Outcome::added;
  RetrievalId id = 0;  // added, already_added
};

// Why a retrieval ends without the message.
enum class RetrievalFailure {
  permanent,  // 550 unknown token, null MX, no SOURCE at the origin: a forgery signal
  expired,    // temporary failures until pending_max_age
};

// A pickup's state. Values only grow (see sql/sqlite/0004_reverse.sql).
enum class PickupState : int {
  offered = 0,
  awaiting = 1,
  transferred = 2,
  expired = 3,
  purged = 4
};

struct PickupRecipient {
  std::string address;
  std::string domain;  // lower case: GET is answered to an MX of one of these
  unsigned notify = 0;
  std::string orcpt;
  bool operator==(const PickupRecipient&) const = default;
};

// What the courier records right before it sends SOURCE.
struct NewPickup {
  std::string token;  // 32 lowercase hex characters from a CSPRNG
  std::string reverse_path;
  std::string envid;
  DsnReturn ret = DsnReturn::unspecified;
  bool smtputf8 = false;
  UnixTime arrival;  // when the message was accepted
  std::string peer;  // the server SOURCE goes to, for logs and notices
  std::vector<PickupRecipient> recipients;
  std::string outbound_trace;  // sent before the content in reply to GET
  std::string content;         // stored content-addressed (once, however often offered)
};

struct Pickup {
  PickupId id = 0;
  std::string token;
  std::string reverse_path;
  std::string envid;
  DsnReturn ret = DsnReturn::unspecified;
  bool smtputf8 = false;
  UnixTime arrival;
  std::string peer;
  std::vector<PickupRecipient> recipients;
  std::string content_hash;  // "" once purged
  std::uint64_t size = 0;    // octets served: outbound trace + content
  UnixTime created_at;
  UnixTime confirmed_at;      // the epoch: not confirmed
  UnixTime first_fetched_at;  // the epoch: never fetched
  std::int64_t fetch_count = 0;
  PickupState state = PickupState::offered;
};

// Per-domain policy; nothing = the mail.conf default.
struct DomainPolicy {
  std::string domain;                                  // lower case
  std::optional<config::UnverifiedPolicy> unverified;  // ours only; default [reverse]
  std::optional<config::TlsPolicy> tls;                // outbound; default [delivery] tls
  bool operator==(const DomainPolicy&) const = default;
};

// Names of the counters the store keeps for mailctl stats.
namespace counter {
inline constexpr const char* source_accepted = "source_accepted";  // SOURCE answered 250
inline constexpr const char* get_fetched = "get_fetched";          // GET fetched and stored
inline constexpr const char* get_failed = "get_failed";  // permanent GET failures (forgery signals)
inline constexpr const char* get_expired = "get_expired";          // given up after pending_max_age
inline constexpr const char* pickups_served = "pickups_served";    // GET answered with the message
inline constexpr const char* pickups_expired = "pickups_expired";  // never fetched in time
}  // namespace counter

using Counters = std::map<std::string, std::int64_t>;

// mailctl stats: the counters, and what is waiting now.
struct ReverseStats {
  Counters counters;  // every counter:: name, 0 when never counted
  std::int64_t retrievals_pending = 0;
  std::int64_t pickups_waiting = 0;  // offered or awaiting
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
  std::int64_t queued = 0;  // outbound recipients still queued (not delivered, not failed)
};

}  // namespace maild::store
