// The SQLite backend: one writer thread with group commit, a pool of read connections,
// and the consumer interfaces on top of them.
// Trust: callers pass validated addresses; SQLite keeps what it committed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "maild/store/store.hpp"
#include "store/sqlite/connection.hpp"
#include "store/sqlite/read_pool.hpp"
#include "store/sqlite/writer.hpp"

namespace maild::store::sqlite {

// Opens (or, with create_if_missing, creates) the store file. Does not migrate.
// A new file is created 0600 and new folders 0750 (the store holds all mail and
// the password hashes); created by root with `owner` set ([server] user), they
// belong to that user, and SQLite gives its -wal and -shm files the same owner.
std::unique_ptr<Store> open_store(const std::filesystem::path& path, OpenMode mode,
                                  std::size_t read_connections, const std::string& owner = {});

// Schema versions (migrations.cpp). A new file is at version 0.
int schema_version(Connection& connection);
int latest_schema_version();
void apply_migrations(Connection& connection);

// Lookups shared by the interfaces (lookups.cpp); each is one indexed query.
std::optional<std::int64_t> find_domain_id(Connection& connection, std::string_view domain);
std::optional<std::int64_t> find_mailbox_id(Connection& connection, std::string_view address);
UnixTime unix_now();

// A maildrop's listing (maildrop_store.cpp): a range scan of the covering index
// deliveries_maildrop, in id order, without reading a row or a message. Here so that the
// backend's tests check the plan of the very statement it runs.
inline constexpr std::string_view maildrop_listing_sql =
    "SELECT id, size, uidl FROM deliveries WHERE mailbox_id = ?1 AND status < 2 ORDER BY id";

// The delivery transaction (mail_store.cpp): accepts a message inside the caller's write job,
// the content once, a delivery per distinct mailbox, a queue entry for the distinct outbound
// recipients. Every write that accepts a message uses it: deliver(), deliver_async(),
// send_notice(), finish_retrieval() and expire_pickup()'s notice. Throws StoreConflict when
// there is nobody to deliver to, a mailbox is gone, or an outbound address does not split.
StoredMessage accept_message(Connection& db, const NewMessage& message);

// The queued recipients claim() may lease now (?1 = now, ?2 = limit), oldest message first:
// a range of the partial index queue_recipients_due. Here so that the backend's tests check
// the plan of the very statement it runs.
inline constexpr std::string_view queue_due_sql =
    "SELECT id, queue_id, domain FROM queue_recipients WHERE state = 0 AND next_attempt <= ?1 "
    "AND (lease_owner IS NULL OR lease_expires < ?1) ORDER BY queue_id, id LIMIT ?2";

class SqliteDirectory final : public Directory {
 public:
  explicit SqliteDirectory(ReadPool& reads) : reads_(reads) {}
  bool is_local_domain(std::string_view domain) override;
  Resolution resolve(std::string_view address) override;
  std::optional<std::string> password_hash(std::string_view address) override;
  std::optional<Account> account(std::string_view address) override;

 private:
  ReadPool& reads_;
};

class SqliteMaildropStore final : public MaildropStore {
 public:
  SqliteMaildropStore(ReadPool& reads, Writer& writer) : reads_(reads), writer_(writer) {}
  bool lock(MailboxId mailbox, std::string_view owner, std::chrono::seconds ttl) override;
  void unlock(MailboxId mailbox, std::string_view owner) override;
  std::vector<MaildropEntry> list(MailboxId mailbox) override;
  std::optional<MessageText> text(MailboxId mailbox, DeliveryId id) override;
  void finish(MailboxId mailbox, std::string_view owner, const std::vector<DeliveryId>& retrieved,
              const std::vector<DeliveryId>& deleted) override;

 private:
  ReadPool& reads_;
  Writer& writer_;
};

class SqliteMailStore final : public MailStore {
 public:
  explicit SqliteMailStore(Writer& writer) : writer_(writer) {}
  StoredMessage deliver(const NewMessage& message) override;
  void deliver_async(NewMessage message, Completion done) override;

 private:
  Writer& writer_;
};

class SqliteAdminStore final : public AdminStore {
 public:
  SqliteAdminStore(ReadPool& reads, Writer& writer, std::filesystem::path location)
      : reads_(reads), writer_(writer), location_(std::move(location)) {}

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
  ReadPool& reads_;
  Writer& writer_;
  std::filesystem::path location_;
};

class SqliteQueueStore final : public QueueStore {
 public:
  SqliteQueueStore(ReadPool& reads, Writer& writer) : reads_(reads), writer_(writer) {}
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
  ReadPool& reads_;
  Writer& writer_;
};

class SqliteReverseStore final : public ReverseStore {
 public:
  SqliteReverseStore(ReadPool& reads, Writer& writer) : reads_(reads), writer_(writer) {}

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
  ReadPool& reads_;
  Writer& writer_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::filesystem::path path, std::unique_ptr<Connection> write_connection,
              std::size_t read_connections);
  ~SqliteStore() override;

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
  WriterStats writer_stats() const override { return writer_.stats(); }
  void close() override;

 private:
  std::filesystem::path path_;
  ReadPool reads_;
  Writer writer_;
  SqliteDirectory directory_;
  SqliteMailStore mail_;
  SqliteMaildropStore maildrops_;
  SqliteAdminStore admin_;
  SqliteQueueStore queue_;
  SqliteReverseStore reverse_;
};

}  // namespace maild::store::sqlite
