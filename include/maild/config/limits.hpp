// Built-in limits: how maild paces and bounds its own work where mail.conf
// has no key, because no administrator should need to change them (the
// settings table, src/config/settings_table.cpp, holds every one that may).
// Declared once, each with its unit; docs/architecture.md lists them.
// The protocol's own limits (line lengths, parameter sizes) are the RFCs'
// and live beside their parsers (src/smtp/limits.hpp).
// Trust: plain constants.
#pragma once

#include <chrono>
#include <cstddef>

#include "maild/core/units.hpp"

namespace maild::limits {

// ---- the process (src/daemon) ----

// After the shutdown grace period, how long closed sessions get to unwind.
inline constexpr std::chrono::seconds unwind_time{5};
// [smtp] and [pop3] max_auth_failures (and [reverse] max_unknown_tokens)
// count per client address in this window.
inline constexpr std::chrono::minutes auth_failure_window{1};
// How long a refused or not yet greeted client may take to receive our reply.
inline constexpr Seconds refusal_timeout{10};
// A certificate this close to its expiry is logged as a warning at start,
// on SIGHUP and by --check-config (certbot renews 30 days ahead: a warning
// means renewal failed).
inline constexpr std::chrono::days certificate_warning{14};
// How long a closing session waits for the peer's TLS close_notify after
// sending its own; a peer that only closes the socket ends it sooner.
inline constexpr std::chrono::seconds tls_close_wait{2};
// The largest tls.cert or tls.key file read (a chain of a few certificates is ~10 KiB).
inline constexpr ByteSize tls_file_max = 1_MiB;
// How long maild waits for its privileged helper to read the TLS files, or to exit.
inline constexpr std::chrono::seconds privileged_helper_wait{5};
// Pause after accept(2) fails for lack of file descriptors or memory, so the
// accept loop does not spin while the condition lasts; normal accepts never wait.
inline constexpr std::chrono::milliseconds accept_failure_pause{100};

// ---- the MySQL store (src/store/mysql) ----

// How often the pool asks the endpoint its connections use whether it is
// still writable (read_only off). One that is not (a failover demoted it)
// loses its connections and the writable endpoint is looked for again, so
// reads follow a role change within this time, before any write fails.
inline constexpr std::chrono::seconds mysql_role_check{2};

// ---- sessions (src/smtp, src/pop3) ----

// No session lasts longer than this: once it has, the next command gets
// 421 4.4.2 (POP3: -ERR [SYS/TEMP]) and the connection closes. An SMTP client
// reusing a connection needs minutes (Postfix reuses one for 5 minutes); a
// POP3 download of a large maildrop over a slow link may need hours.
inline constexpr Seconds smtp_session_max = std::chrono::hours(1);
inline constexpr Seconds pop3_session_max = std::chrono::hours(4);
// Message content (DATA, or one BDAT chunk) must arrive at this average
// rate at least, counted from the start of the content once the grace has
// passed; a client slower than that is cut off (421 4.4.2) long before
// [smtp] data_timeout, which bounds the whole transfer.
inline constexpr ByteSize content_min_rate{512};  // per second
inline constexpr Seconds content_rate_grace{30};

// ---- outbound delivery (src/delivery) ----

// How often the queue manager looks at the store when nothing woke it: new
// mail queued by another node, recipients coming due, notices owed.
inline constexpr std::chrono::seconds queue_poll{1};
// At most this many messages go to one domain in one batch (one connection,
// one after the other); more make further batches.
inline constexpr std::size_t batch_messages_max = 50;
// A store call that records results and fails is tried this often, this far
// apart, before the batch gives up (its leases then lapse and the recipients
// are tried again later).
inline constexpr int record_tries = 3;
inline constexpr std::chrono::seconds record_retry_wait{1};
// Notices to senders sent per look at the queue; more wait for the next look.
inline constexpr std::size_t notices_per_round = 20;
// How long the courier waits for one of a destination's per_destination
// connections to come free; then its recipients are deferred (451 4.4.5).
inline constexpr Seconds destination_slot_wait = std::chrono::minutes(2);

// ---- SOURCE/GET (src/reverse) ----

// A pickup offered but never confirmed (the reply to SOURCE was lost) is
// purged this long after it was created: the peer either fetched it by then
// or never will, and the queue still owns the message.
inline constexpr std::chrono::seconds offered_pickup_max_age = std::chrono::hours(1);
// Pickups expired (with their notices) per round of the pickup keeper.
inline constexpr std::size_t expiries_per_round = 20;
// At most this many tokens of one sender domain go over one connection of
// the retrieval worker; more make further groups.
inline constexpr std::size_t gets_per_connection_max = 50;
// How often finished retrievals older than [reverse] pending_max_age are deleted.
inline constexpr std::chrono::hours retrieval_purge_interval{1};
// A GET answer goes out in pieces of this size, each under the write deadline.
inline constexpr ByteSize get_chunk = 64_KiB;
// Each unknown GET token from an address waits this much longer, up to the
// cap, before its 550 (the cap from max_unknown_tokens on): probing gets
// slow, and a GET for a token that exists is never refused for it.
inline constexpr std::chrono::milliseconds unknown_token_delay{250};
inline constexpr std::chrono::milliseconds unknown_token_delay_max{2000};

}  // namespace maild::limits
