// The outbound queue on SQLite: not written yet; every call fails as the store would.
#include "store/sqlite/sqlite_store.hpp"

namespace maild::store::sqlite {
namespace {
[[noreturn]] void missing() { throw StoreError("sqlite: the outbound queue is not available yet"); }
}  // namespace

std::vector<DeliveryJob> SqliteQueueStore::claim(std::string_view, std::chrono::seconds,
                                                 std::size_t) {
  missing();
}
bool SqliteQueueStore::renew(std::string_view, const std::vector<QueueRecipientId>&,
                             std::chrono::seconds) {
  missing();
}
std::optional<MessageText> SqliteQueueStore::text(QueueId) { missing(); }
std::size_t SqliteQueueStore::record(std::string_view, const std::vector<RecipientResult>&) {
  missing();
}
std::optional<std::int64_t> SqliteQueueStore::next_due() { missing(); }
std::vector<QueuedMessage> SqliteQueueStore::notices_owed(std::size_t) { missing(); }
StoredMessage SqliteQueueStore::send_notice(const std::vector<QueueRecipientId>&,
                                            const NewMessage&) {
  missing();
}
std::vector<QueuedMessage> SqliteQueueStore::list(const QueueFilter&) { missing(); }
std::optional<QueuedMessage> SqliteQueueStore::get(QueueId) { missing(); }
std::size_t SqliteQueueStore::retry(std::optional<QueueId>) { missing(); }
bool SqliteQueueStore::remove(QueueId) { missing(); }
std::size_t SqliteQueueStore::bounce(QueueId, std::string_view) { missing(); }

}  // namespace maild::store::sqlite
