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

// Local delivery: one message to many mailboxes, durable when deliver() returns.
class MailStore {
 public:
  using Completion = std::function<void(std::exception_ptr, StoredMessage)>;

  virtual ~MailStore() = default;
  // Blocks until the commit is durable (WAL fsync for SQLite). Throws StoreError.
  virtual StoredMessage deliver(const NewMessage& message) = 0;
  // Hands the message to the group-commit writer and returns at once;
  // `done` runs on the writer thread after the commit (or the failure).
  virtual void deliver_async(NewMessage message, Completion done) = 0;
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

}  // namespace maild::store
