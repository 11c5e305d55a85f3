// The outbound queue on MySQL: not written yet; every call fails as the store would.
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {
[[noreturn]] void missing() { throw StoreError("mysql: the outbound queue is not available yet"); }
}  // namespace

std::vector<DeliveryJob> MysqlQueueStore::claim(std::string_view, std::chrono::seconds,
                                                std::size_t) {
  missing();
}
bool MysqlQueueStore::renew(std::string_view, const std::vector<QueueRecipientId>&,
                            std::chrono::seconds) {
  missing();
}
std::optional<MessageText> MysqlQueueStore::text(QueueId) { missing(); }
std::size_t MysqlQueueStore::record(std::string_view, const std::vector<RecipientResult>&) {
  missing();
}
std::optional<std::int64_t> MysqlQueueStore::next_due() { missing(); }
std::vector<QueuedMessage> MysqlQueueStore::notices_owed(std::size_t) { missing(); }
StoredMessage MysqlQueueStore::send_notice(const std::vector<QueueRecipientId>&,
                                           const NewMessage&) {
  missing();
}
std::vector<QueuedMessage> MysqlQueueStore::list(const QueueFilter&) { missing(); }
std::optional<QueuedMessage> MysqlQueueStore::get(QueueId) { missing(); }
std::size_t MysqlQueueStore::retry(std::optional<QueueId>) { missing(); }
bool MysqlQueueStore::remove(QueueId) { missing(); }
std::size_t MysqlQueueStore::bounce(QueueId, std::string_view) { missing(); }

}  // namespace maild::store::mysql
