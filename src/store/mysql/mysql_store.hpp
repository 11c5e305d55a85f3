// The MySQL/MariaDB backend: a pool of connections to the writable endpoint, threads for
// deliver_async, and the consumer interfaces on top of them, with the same tables and behaviour
// as the SQLite backend.
// Trust: callers pass validated addresses; the server keeps what it acknowledged at COMMIT, and
// may be lost, killed or demoted between any two statements (see pool.hpp for what is retried).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "maild/config/settings.hpp"
#include "maild/store/store.hpp"
#include "store/mysql/connection.hpp"
#include "store/mysql/pool.hpp"
#include "store/mysql/workers.hpp"

namespace maild::store::mysql {

// Connects to the writable endpoint of settings.mysql, checks it, and creates the database when
// mode allows. Does not migrate.
std::unique_ptr<Store> open_store(const config::Settings& settings, OpenMode mode);

// [mysql] password, or the first line of [mysql] password_file when that is set.
std::string read_password(const config::MysqlSettings& settings);

// What the primary must allow for a message of [smtp] max_message_size, with its trace and the
// protocol around it.
std::uint64_t required_packet(const config::Settings& settings);

// Schema versions (migrations.cpp): the highest row of schema_migrations, 0 for a new database.
int schema_version(Connection& connection);
int latest_schema_version();
void apply_migrations(Connection& connection);
// A migration file's statements, as the mysql client would send them: split at ';' outside
// quotes and comments, or at the delimiter a DELIMITER line sets (for trigger bodies).
std::vector<std::string> split_statements(std::string_view sql);

// Lookups shared by the interfaces (lookups.cpp); each is one indexed query.
std::optional<std::int64_t> find_domain_id(Connection& connection, std::string_view domain);
std::optional<std::int64_t> find_mailbox_id(Connection& connection, std::string_view address);
UnixTime unix_now();
// The form address comparisons use: the whole address lowercased (ASCII), as SQLite's NOCASE.
std::string address_key(std::string_view address);

// The messages row of this content (mail_store.cpp), inside the caller's write transaction:
// content-addressed, so an existing row is reused (never replaced) and its id returned.
MessageId store_content(Connection& db, const std::string& content, const std::string& content_hash,
                        UnixTime now);

// The delivery transaction (mail_store.cpp): accepts a message inside the caller's write
// transaction, the content once, a delivery per distinct mailbox, a queue entry for the distinct
// outbound recipients. Every write that accepts a message uses it: deliver() (deliver_async()
// runs it), send_notice() and the SOURCE/GET writes that deliver (a fetched message, a pickup's
// expiry notice). Throws StoreConflict when there is nobody to deliver to, a mailbox is gone, or
// an outbound address does not split.
StoredMessage accept_message(Connection& db, const NewMessage& message,
                             const std::string& content_hash);

// claim() in two steps. First the candidates, without locking anything: the due recipients
// (now, now, how many), oldest message first, a range of the index queue_recipients_due. Then
// those of them still free, in id order (the primary key's own order: InnoDB locks only the rows
// it returns), skipping any another claimer holds; their ids are spliced in as a list.
// Here so that the tests can EXPLAIN the very statements claim() runs.
inline constexpr std::string_view queue_due_sql =
    "SELECT id FROM queue_recipients WHERE state = 0 AND next_attempt <= ? "
    "AND (lease_owner IS NULL OR lease_expires < ?) ORDER BY queue_id, id LIMIT ?";
inline constexpr std::string_view queue_take_sql_head =
    "SELECT id FROM queue_recipients WHERE state = 0 AND next_attempt <= ? "
    "AND (lease_owner IS NULL OR lease_expires < ?) AND id IN (";
inline constexpr std::string_view queue_take_sql_tail =
    ") ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED";

// claim_retrievals() likewise (reverse_store.cpp): first the due, free candidates (now, now, how
// many) in the order workers take them, sender domain then oldest, a range of the index
// pending_retrievals_due; then each of them in that order, locked only if it is still free and
// no other claimer holds it (id, now, now), until enough are taken. Here for the tests' EXPLAIN.
inline constexpr std::string_view retrieval_due_sql =
    "SELECT id FROM pending_retrievals WHERE state = 0 AND next_attempt <= ? "
    "AND (lease_owner = '' OR lease_expires < ?) ORDER BY sender_domain, received_at, id LIMIT ?";
inline constexpr std::string_view retrieval_take_sql =
    "SELECT id FROM pending_retrievals WHERE id = ? AND state = 0 AND next_attempt <= ? "
    "AND (lease_owner = '' OR lease_expires < ?) FOR UPDATE SKIP LOCKED";

// A maildrop's listing (maildrop_store.cpp): a range of the covering index deliveries_maildrop,
// in id order, without reading a row or a message. Here so that the tests can EXPLAIN it.
inline constexpr std::string_view maildrop_listing_sql =
    "SELECT id, size, uidl FROM deliveries WHERE mailbox_id = ? AND status < 2 ORDER BY id";

class MysqlDirectory final : public Directory {
 public:
  explicit MysqlDirectory(Pool& pool) : pool_(pool) {}
  bool is_local_domain(std::string_view domain) override;
  Resolution resolve(std::string_view address) override;
  std::optional<std::string> password_hash(std::string_view address) override;
  std::optional<Account> account(std::string_view address) override;

 private:
  Pool& pool_;
};

class MysqlMaildropStore final : public MaildropStore {
 public:
  explicit MysqlMaildropStore(Pool& pool) : pool_(pool) {}
  bool lock(MailboxId mailbox, std::string_view owner, std::chrono::seconds ttl) override;
  void unlock(MailboxId mailbox, std::string_view owner) override;
  std::vector<MaildropEntry> list(MailboxId mailbox) override;
  std::optional<MessageText> text(MailboxId mailbox, DeliveryId id) override;
  void finish(MailboxId mailbox, std::string_view owner, const std::vector<DeliveryId>& retrieved,
              const std::vector<DeliveryId>& deleted) override;

 private:
  Pool& pool_;
};

class MysqlMailStore final : public MailStore {
 public:
  MysqlMailStore(Pool& pool, Workers& workers) : pool_(pool), workers_(workers) {}
  StoredMessage deliver(const NewMessage& message) override;
  // Runs deliver() on one of the store's threads and calls `done` there.
  void deliver_async(NewMessage message, Completion done) override;

 private:
  Pool& pool_;
  Workers& workers_;
};

class MysqlAdminStore final : public AdminStore {
 public:
  explicit MysqlAdminStore(Pool& pool) : pool_(pool) {}

  StoreStatus status() override;
  void add_domain(std::string_view name) override;
  void delete_domain(std::string_view name) override;
  std::vector<Domain> list_domains() override;
  void add_user(std::string_view address, std::string_view password_hash) override;
  void delete_user(std::string_view address) override;
  void set_password(std::string_view address, std::string_view password_hash) override;
  std::vector<Mailbox> list_users(std::optional<std::string_view> domain) override;
  void add_alias(std::string_view source, std::string_view target) override;
  void delete_alias(std::string_view source, std::string_view target) override;
  std::vector<Alias> list_aliases(std::optional<std::string_view> domain) override;
  std::vector<MailSummary> list_mail(std::size_t last,
                                     std::optional<std::string_view> mailbox) override;
  std::optional<MailDetail> get_mail(DeliveryId id) override;

 private:
  Pool& pool_;
};

class MysqlQueueStore final : public QueueStore {
 public:
  explicit MysqlQueueStore(Pool& pool) : pool_(pool) {}
  std::vector<DeliveryJob> claim(std::string_view owner, std::chrono::seconds lease,
                                 std::size_t limit) override;
  bool renew(std::string_view owner, const std::vector<QueueRecipientId>& recipients,
             std::chrono::seconds lease) override;
  std::optional<MessageText> text(QueueId id) override;
  std::size_t record(std::string_view owner, const std::vector<RecipientResult>& results) override;
  std::optional<UnixTime> next_due() override;
  std::vector<QueuedMessage> notices_owed(std::size_t limit) override;
  StoredMessage send_notice(const std::vector<QueueRecipientId>& recipients,
                            const NewMessage& notice) override;
  std::vector<QueuedMessage> list(const QueueFilter& filter) override;
  std::optional<QueuedMessage> get(QueueId id) override;
  std::size_t retry(std::optional<QueueId> id) override;
  bool remove(QueueId id) override;
  std::size_t bounce(QueueId id, std::string_view reason) override;

 private:
  Pool& pool_;
};

class MysqlReverseStore final : public ReverseStore {
 public:
  explicit MysqlReverseStore(Pool& pool) : pool_(pool) {}
  RetrievalAdded add_retrieval(const NewRetrieval& retrieval, std::size_t max_per_domain,
                               std::size_t max_per_client) override;
  std::vector<PendingRetrieval> claim_retrievals(std::string_view owner, std::chrono::seconds lease,
                                                 std::size_t limit) override;
  bool renew_retrievals(std::string_view owner, const std::vector<RetrievalId>& ids,
                        std::chrono::seconds lease) override;
  StoredMessage finish_retrieval(std::string_view owner, RetrievalId id,
                                 const NewMessage& message) override;
  bool defer_retrieval(std::string_view owner, RetrievalId id, UnixTime next_attempt,
                       std::string_view error) override;
  bool fail_retrieval(std::string_view owner, RetrievalId id, RetrievalFailure why,
                      std::string_view error) override;
  std::optional<UnixTime> next_retrieval_due() override;
  std::vector<PendingRetrieval> list_retrievals(std::size_t limit) override;
  std::size_t purge_retrievals(UnixTime finished_before) override;

  PickupId create_pickup(const NewPickup& pickup) override;
  bool confirm_pickup(PickupId id) override;
  bool cancel_pickup(PickupId id) override;
  std::optional<Pickup> find_pickup(std::string_view token) override;
  std::optional<MessageText> pickup_text(PickupId id) override;
  bool mark_transferred(PickupId id) override;
  std::vector<Pickup> expired_pickups(UnixTime confirmed_before, std::size_t limit) override;
  bool expire_pickup(PickupId id, const std::optional<NewMessage>& notice) override;
  std::size_t purge_pickups(UnixTime fetched_before, UnixTime offered_before) override;
  std::vector<Pickup> list_pickups(std::size_t limit) override;

  DomainPolicy policy(std::string_view domain) override;
  void set_policy(const DomainPolicy& policy) override;
  std::vector<DomainPolicy> list_policies() override;

  void add_counter(std::string_view name, std::int64_t delta) override;
  ReverseStats stats() override;

 private:
  Pool& pool_;
};

class MysqlStore final : public Store {
 public:
  // pool: opened already; threads: how many deliveries run at once ([store] workers).
  MysqlStore(std::unique_ptr<Pool> pool, std::size_t threads);
  ~MysqlStore() override;

  int schema_version() override;
  int latest_schema_version() const override;
  void migrate() override;
  Directory& directory() override { return directory_; }
  MailStore& mail() override { return mail_; }
  MaildropStore& maildrops() override { return maildrops_; }
  AdminStore& admin() override { return admin_; }
  DeliveryQueue& delivery_queue() override { return queue_; }
  QueueAdmin& queue_admin() override { return queue_; }
  RetrievalIntake& retrieval_intake() override { return reverse_; }
  RetrievalQueue& retrievals() override { return reverse_; }
  PickupOffers& pickup_offers() override { return reverse_; }
  PickupWindow& pickup_window() override { return reverse_; }
  PickupKeeping& pickup_keeping() override { return reverse_; }
  DomainPolicies& policies() override { return reverse_; }
  ReverseAdmin& reverse_admin() override { return reverse_; }
  QueueStore& queue() override { return queue_; }
  ReverseStore& reverse() override { return reverse_; }
  WriterStats writer_stats() const override { return pool_->stats(); }
  void close() override;

  Pool& pool() { return *pool_; }

 private:
  std::unique_ptr<Pool> pool_;
  Workers workers_;
  MysqlDirectory directory_;
  MysqlMailStore mail_;
  MysqlMaildropStore maildrops_;
  MysqlAdminStore admin_;
  MysqlQueueStore queue_;
  MysqlReverseStore reverse_;
};

}  // namespace maild::store::mysql
