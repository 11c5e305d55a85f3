// The store: one interface per consumer, one factory, backends under src/store/<backend>/.
// Every call here blocks (it does SQL). maild calls them only from the store
// worker pool (see maild/store/async.hpp), never on an I/O thread; mailctl and
// tests call them directly.
// Trust: the store trusts its callers to pass validated addresses; it trusts
// the database to keep what it committed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/store/types.hpp"

namespace maild::store {

// What SMTP and POP3 sessions need to know about addresses and logins.
class Directory {
 public:
  virtual ~Directory() = default;
  virtual bool is_local_domain(std::string_view domain) = 0;
  // Mailboxes, then aliases (one level of alias-to-alias expansion per hop, at
  // most 8 hops), then the domain's catch-all.
  virtual Resolution resolve(std::string_view address) = 0;
  // The crypt(3) hash for a login (the mailbox address), or nothing.
  virtual std::optional<std::string> password_hash(std::string_view address) = 0;
  // The mailbox and hash for a login, or nothing.
  virtual std::optional<Account> account(std::string_view address) = 0;
};

// What a POP3 session needs: one session per maildrop (a lock with an expiry
// that also holds between maild nodes sharing the store), the listing, the
// text, and the deletions applied in one transaction at QUIT.
class MaildropStore {
 public:
  virtual ~MaildropStore() = default;
  // Takes the maildrop for `owner` (unique across nodes) until now + ttl.
  // True when it was free, expired, or already this owner's (then extended).
  virtual bool lock(MailboxId mailbox, std::string_view owner, std::chrono::seconds ttl) = 0;
  // Gives it back; a lock held by another owner is left alone.
  virtual void unlock(MailboxId mailbox, std::string_view owner) = 0;
  // Messages not deleted, oldest first: one indexed query, no content read.
  virtual std::vector<MaildropEntry> list(MailboxId mailbox) = 0;
  // Trace and content of one delivery of this mailbox, or nothing when it is gone.
  virtual std::optional<MessageText> text(MailboxId mailbox, DeliveryId id) = 0;
  // At QUIT, in one transaction: `retrieved` become retrieved, `deleted` deleted
  // (status only grows), and the lock is released.
  virtual void finish(MailboxId mailbox, std::string_view owner,
                      const std::vector<DeliveryId>& retrieved,
                      const std::vector<DeliveryId>& deleted) = 0;
};

// Acceptance: one message to many local mailboxes and the outbound queue in
// one commit, durable when deliver() returns. For SMTP DATA and BDAT.
// Every write that accepts a message goes through one delivery transaction per
// backend, accept_message() (src/store/<backend>/mail_store.cpp): deliver() and
// deliver_async() here, DeliveryQueue::send_notice(), RetrievalQueue::finish_retrieval()
// and PickupKeeping::expire_pickup()'s notice; forwarding is its outbound part.
class MailStore {
 public:
  using Completion = std::function<void(std::exception_ptr, StoredMessage)>;

  virtual ~MailStore() = default;
  // Blocks until the commit is durable (WAL fsync for SQLite). Throws StoreError, or
  // StoreConflict (and stores nothing, local or queued) when there is neither a mailbox nor an
  // outbound recipient, a mailbox is gone, or an outbound address is not local@domain.
  virtual StoredMessage deliver(const NewMessage& message) = 0;
  // Hands the message to the group-commit writer and returns at once;
  // `done` runs on the writer thread after the commit (or the failure).
  virtual void deliver_async(NewMessage message, Completion done) = 0;
};

// ---- the outbound queue ----
// Messages with per-recipient state, filled by MailStore::deliver in the commit
// that accepted them. Delivery workers on any number of maild nodes sharing the
// store take due recipients by lease, so two nodes never deliver one recipient
// at the same time and a dead node's leases lapse for another to continue.

// For the queue manager (src/delivery): lease, send, record, notify.
class DeliveryQueue {
 public:
  virtual ~DeliveryQueue() = default;

  // Leases to `owner` (unique across nodes) until now + lease at most `limit`
  // recipients that are queued, due (next_attempt <= now) and not under a live
  // lease; grouped into one job per message and domain, oldest message first.
  // A lease is live through the whole second lease_expires (as maildrop locks are).
  // StoreConflict for an empty owner or a lease under one second.
  virtual std::vector<DeliveryJob> claim(std::string_view owner, std::chrono::seconds lease,
                                         std::size_t limit) = 0;
  // Extends `owner`'s leases on these recipients; false when one is no longer its own
  // (taken over by another owner, recorded, bounced or removed). A lapsed lease nobody
  // took over is still its own.
  virtual bool renew(std::string_view owner, const std::vector<QueueRecipientId>& recipients,
                     std::chrono::seconds lease) = 0;
  // What is sent: the outbound trace, then the content. Nothing when the entry is gone.
  virtual std::optional<MessageText> text(QueueId id) = 0;
  // Applies attempt results in one transaction and releases their leases.
  // A result for a recipient not leased by `owner` (lease taken over by another
  // owner, bounced or deleted entry) is skipped; a lease that lapsed but that nobody
  // took over still counts. notice_owed and delay_warned are only ever raised.
  // Messages left with nothing queued and no notice owed leave the queue.
  // Returns how many were applied.
  virtual std::size_t record(std::string_view owner,
                             const std::vector<RecipientResult>& results) = 0;
  // The earliest next_attempt of a queued recipient, if any. Recipients under a
  // lease count too (theirs is in the past), so a caller that sleeps until then
  // also needs to wake when its own attempts finish.
  virtual std::optional<UnixTime> next_due() = 0;

  // Messages whose senders are owed a notice, oldest first; recipients: those owed one
  // (failed: failure; queued: delay; delivered: relayed or delivered). A message with a
  // recipient under a live lease waits, so one delivery round's results make one notice.
  virtual std::vector<QueuedMessage> notices_owed(std::size_t limit) = 0;
  // In one transaction: accepts `notice` (a DSN from the null sender, local
  // or queued like any message, exactly as MailStore::deliver does) and marks these
  // recipients' notices sent; messages then finished leave the queue. If accepting
  // fails, nothing is marked. A notice with no mailbox and no outbound recipient
  // (a sender that is nobody's) is dropped: the notices are marked sent, nothing stored.
  virtual StoredMessage send_notice(const std::vector<QueueRecipientId>& recipients,
                                    const NewMessage& notice) = 0;
};

// For mailctl queue. A message whose recipients are all delivered or failed,
// with no notice owed, leaves the queue.
class QueueAdmin {
 public:
  virtual ~QueueAdmin() = default;

  // Oldest first; recipients: all of each message's.
  virtual std::vector<QueuedMessage> list(const QueueFilter& filter) = 0;
  virtual std::optional<QueuedMessage> get(QueueId id) = 0;
  // Makes queued recipients due now (one message, or all); returns how many queued
  // recipients it covered (leased ones included; their leases stay).
  virtual std::size_t retry(std::optional<QueueId> id) = 0;
  // Removes the message from the queue without any notice; false when unknown.
  virtual bool remove(QueueId id) = 0;
  // Fails its queued recipients now with `reason` (an attempt in flight loses its
  // lease), owing the sender a notice when it wants one: not the null sender, and
  // NOTIFY absent or with FAILURE (never with NEVER). Returns how many; 0 when unknown.
  virtual std::size_t bounce(QueueId id, std::string_view reason) = 0;
};

// Both sides of the queue, for callers not yet on one of them (Store::queue()).
class QueueStore : public DeliveryQueue, public QueueAdmin {};

// ---- SOURCE/GET reverse delivery (docs/source-get.md) ----
// Pending retrievals (we accepted a SOURCE and fetch the message by GET),
// pickups (we sent SOURCE and answer GET), per-domain policy and the counters
// of `mailctl stats`. Tokens are secrets: nothing here puts one into an
// exception's text.

// For the SMTP server's SOURCE verb: records what it accepted.
class RetrievalIntake {
 public:
  virtual ~RetrievalIntake() = default;

  // Records an accepted SOURCE durably and counts it, in one commit. See
  // RetrievalAdded for the outcomes; `max_per_domain` bounds the pending
  // retrievals of one sender domain, `max_per_client` those announced by one
  // client address (SOURCE-GET.md 6). The retrieval is due at once.
  virtual RetrievalAdded add_retrieval(const NewRetrieval& retrieval, std::size_t max_per_domain,
                                       std::size_t max_per_client) = 0;
};

// For the retrieval worker (src/reverse): leases pending retrievals, fetches
// each by GET and ends it.
class RetrievalQueue {
 public:
  virtual ~RetrievalQueue() = default;

  // Leases to `owner` (unique across nodes) until now + lease at most `limit`
  // pending retrievals that are due and not under a live lease, ordered by
  // sender domain, then oldest first.
  virtual std::vector<PendingRetrieval> claim_retrievals(std::string_view owner,
                                                         std::chrono::seconds lease,
                                                         std::size_t limit) = 0;
  // Extends `owner`'s leases; false when one is no longer its own.
  virtual bool renew_retrievals(std::string_view owner, const std::vector<RetrievalId>& ids,
                                std::chrono::seconds lease) = 0;
  // The fetched message, in one transaction: delivered (as MailStore::deliver),
  // its deliveries marked verified, the retrieval fetched and counted.
  // StoreConflict when the retrieval is not leased by `owner` or not pending.
  virtual StoredMessage finish_retrieval(std::string_view owner, RetrievalId id,
                                         const NewMessage& message) = 0;
  // A temporary failure: tried again at next_attempt; the lease is released.
  // False when it is not `owner`'s pending retrieval.
  virtual bool defer_retrieval(std::string_view owner, RetrievalId id, UnixTime next_attempt,
                               std::string_view error) = 0;
  // The end without the message: failed, counted (get_failed or get_expired).
  virtual bool fail_retrieval(std::string_view owner, RetrievalId id, RetrievalFailure why,
                              std::string_view error) = 0;
  // The earliest next_attempt of a pending retrieval, if any.
  virtual std::optional<UnixTime> next_retrieval_due() = 0;
  // Deletes fetched and failed retrievals that finished before `finished_before`; returns how many.
  virtual std::size_t purge_retrievals(UnixTime finished_before) = 0;
};

// For the SMTP client's pickup desk: offers a message for GET around SOURCE.
class PickupOffers {
 public:
  virtual ~PickupOffers() = default;

  // Stores the content (content-addressed) and the pickup, offered: GET is
  // answered from now on, but the queue still owns the message. Call it
  // before SOURCE is sent. StoreConflict when the token exists.
  virtual PickupId create_pickup(const NewPickup& pickup) = 0;
  // SOURCE was accepted: offered becomes awaiting, the notice duty moves here.
  // False when it was not offered (e.g. already fetched).
  virtual bool confirm_pickup(PickupId id) = 0;
  // SOURCE was refused: an offered pickup is purged at once. False when not offered.
  virtual bool cancel_pickup(PickupId id) = 0;
  // A quick peer may fetch before SOURCE's 250 reaches us: as PickupWindow::find_pickup.
  virtual std::optional<Pickup> find_pickup(std::string_view token) = 0;
};

// For the SMTP server's GET verb: hands a pickup over.
class PickupWindow {
 public:
  virtual ~PickupWindow() = default;

  // Any state, with its recipients; no content read.
  virtual std::optional<Pickup> find_pickup(std::string_view token) = 0;
  // What GET sends: the outbound trace, then the content. Nothing once purged.
  virtual std::optional<MessageText> pickup_text(PickupId id) = 0;
  // After the final 250 of a GET: transferred (first_fetched_at set once),
  // fetch_count and pickups_served counted. False when expired or purged.
  virtual bool mark_transferred(PickupId id) = 0;
};

// For pickup housekeeping (the queue manager): expiry with its notice, and purges.
class PickupKeeping {
 public:
  virtual ~PickupKeeping() = default;

  // Awaiting pickups confirmed before `confirmed_before`: never fetched in time.
  virtual std::vector<Pickup> expired_pickups(UnixTime confirmed_before, std::size_t limit) = 0;
  // The original for the expiry notice, as PickupWindow::pickup_text.
  virtual std::optional<MessageText> pickup_text(PickupId id) = 0;
  // In one transaction: an awaiting pickup becomes expired and is counted, and
  // `notice` (a DSN to its sender, or nothing for the null sender) is accepted
  // as MailStore::deliver would. False (and no notice) when it is no longer awaiting.
  virtual bool expire_pickup(PickupId id, const std::optional<NewMessage>& notice) = 0;
  // Drops the content reference and trace of pickups done with: transferred
  // ones first fetched before `fetched_before`, expired ones, and offered ones
  // (never confirmed) created before `offered_before`. Returns how many.
  virtual std::size_t purge_pickups(UnixTime fetched_before, UnixTime offered_before) = 0;
};

// For SMTP sessions (SOURCE/GET acceptance) and the queue manager (outbound TLS):
// a domain's policy as mailctl set it.
class DomainPolicies {
 public:
  virtual ~DomainPolicies() = default;

  // The domain's row, or one with both policies unset.
  virtual DomainPolicy policy(std::string_view domain) = 0;
};

// For mailctl policy and stats (and the listings): what an administrator sees and sets.
class ReverseAdmin {
 public:
  virtual ~ReverseAdmin() = default;

  // Newest first, every state.
  virtual std::vector<PendingRetrieval> list_retrievals(std::size_t limit) = 0;
  // Newest first, every state.
  virtual std::vector<Pickup> list_pickups(std::size_t limit) = 0;
  // Writes both fields as given (unset = the default); a row with neither is
  // removed. StoreConflict when an unverified policy names a domain that is
  // not ours.
  virtual void set_policy(const DomainPolicy& policy) = 0;
  virtual std::vector<DomainPolicy> list_policies() = 0;  // by domain
  // Adds to a counter (a new name starts at 0). StoreConflict for an empty name.
  virtual void add_counter(std::string_view name, std::int64_t delta) = 0;
  virtual ReverseStats stats() = 0;
};

// All of SOURCE/GET, for callers not yet on one of the ports above (Store::reverse()).
class ReverseStore : public RetrievalIntake,
                     public RetrievalQueue,
                     public PickupOffers,
                     public PickupWindow,
                     public PickupKeeping,
                     public DomainPolicies,
                     public ReverseAdmin {
 public:
  // One text for both ports that read it.
  std::optional<MessageText> pickup_text(PickupId id) override = 0;
  std::optional<Pickup> find_pickup(std::string_view token) override = 0;
};

// Counters for tests and `mailctl db status`.
struct WriterStats {
  std::uint64_t transactions = 0;  // commits, each one fsync
  std::uint64_t jobs = 0;          // deliveries (or other writes) grouped into them
};

// Administration: what mailctl needs.
class AdminStore {
 public:
  virtual ~AdminStore() = default;

  virtual StoreStatus status() = 0;

  virtual void add_domain(std::string_view name) = 0;  // StoreConflict if it exists
  virtual void delete_domain(
      std::string_view name) = 0;  // StoreConflict if unknown; removes its users and aliases
  virtual std::vector<Domain> list_domains() = 0;

  // StoreConflict on unknown domain or existing user.
  virtual void add_user(std::string_view address, std::string_view password_hash) = 0;
  virtual void delete_user(std::string_view address) = 0;  // StoreConflict if unknown
  virtual void set_password(std::string_view address, std::string_view password_hash) = 0;
  virtual std::vector<Mailbox> list_users(std::optional<std::string_view> domain) = 0;

  // source is local@domain or @domain (catch-all); the domain must be ours.
  virtual void add_alias(std::string_view source, std::string_view target) = 0;
  virtual void delete_alias(std::string_view source, std::string_view target) = 0;
  virtual std::vector<Alias> list_aliases(std::optional<std::string_view> domain) = 0;

  // Newest first.
  virtual std::vector<MailSummary> list_mail(std::size_t last,
                                             std::optional<std::string_view> mailbox) = 0;
  virtual std::optional<MailDetail> get_mail(DeliveryId id) = 0;
};

// A handle on one opened store. The interfaces it hands out live as long as it.
class Store {
 public:
  virtual ~Store() = default;

  // Schema management. A new store is at version 0.
  virtual int schema_version() = 0;
  virtual int latest_schema_version() const = 0;
  virtual void migrate() = 0;  // applies every missing migration, each in its own transaction

  virtual Directory& directory() = 0;
  virtual MailStore& mail() = 0;
  virtual MaildropStore& maildrops() = 0;
  virtual AdminStore& admin() = 0;
  virtual WriterStats writer_stats() const = 0;

  // Each consumer's port (see the interfaces above for who takes which).
  virtual DeliveryQueue& delivery_queue() = 0;      // the queue manager
  virtual QueueAdmin& queue_admin() = 0;            // mailctl queue
  virtual RetrievalIntake& retrieval_intake() = 0;  // the SOURCE verb
  virtual RetrievalQueue& retrievals() = 0;         // the retrieval worker
  virtual PickupOffers& pickup_offers() = 0;        // the pickup desk (and mailctl pickup inject)
  virtual PickupWindow& pickup_window() = 0;        // the GET verb
  virtual PickupKeeping& pickup_keeping() = 0;      // pickup housekeeping (the queue manager)
  virtual DomainPolicies& policies() = 0;           // sessions, the queue manager, mailctl policy
  virtual ReverseAdmin& reverse_admin() = 0;        // mailctl policy, stats; tests' counters

  // Every port of one side at once, while consumers move to theirs.
  virtual QueueStore& queue() = 0;
  virtual ReverseStore& reverse() = 0;

  // Finishes queued writes, stops the writer, closes connections.
  virtual void close() = 0;
};

enum class OpenMode {
  create_if_missing,  // maild and `mailctl db migrate`: create the SQLite file (and its folder)
  existing,           // every other mailctl command: a missing store is an error
};

// Opens the configured backend. Throws StoreError when it cannot (with a
// message an administrator can act on, e.g. naming the missing file).
std::unique_ptr<Store> open_store(const config::Settings& settings,
                                  OpenMode mode = OpenMode::create_if_missing);

// Run by root with [server] user set, for SQLite: gives the store file and its
// -wal and -shm files to that user, so that maild can write them once it has
// dropped root (`mailctl db migrate` as root). Otherwise does nothing.
// Throws StoreError naming the file and the reason.
void hand_store_to_service_user(const config::Settings& settings);

// Reads the secrets a backend keeps in files ([mysql] password_file becomes [mysql] password),
// so that maild can do it before it drops root. open_store() reads them itself otherwise.
// Throws StoreError naming the file it cannot read.
void read_secrets(config::Settings& settings);

}  // namespace maild::store
