// SOURCE/GET on MySQL: not written yet. Reads find nothing; writes throw StoreError.
#include "store/mysql/mysql_store.hpp"

namespace maild::store::mysql {
namespace {

[[noreturn]] void missing() {
  throw StoreError("SOURCE/GET is not available on the MySQL backend yet");
}

}  // namespace

RetrievalAdded MysqlReverseStore::add_retrieval(const NewRetrieval&, std::size_t) { missing(); }
std::vector<PendingRetrieval> MysqlReverseStore::claim_retrievals(std::string_view,
                                                                  std::chrono::seconds,
                                                                  std::size_t) {
  return {};
}
bool MysqlReverseStore::renew_retrievals(std::string_view, const std::vector<RetrievalId>&,
                                         std::chrono::seconds) {
  return false;
}
StoredMessage MysqlReverseStore::finish_retrieval(std::string_view, RetrievalId,
                                                  const NewMessage&) {
  missing();
}
bool MysqlReverseStore::defer_retrieval(std::string_view, RetrievalId, std::int64_t,
                                        std::string_view) {
  return false;
}
bool MysqlReverseStore::fail_retrieval(std::string_view, RetrievalId, RetrievalFailure,
                                       std::string_view) {
  return false;
}
std::optional<std::int64_t> MysqlReverseStore::next_retrieval_due() { return std::nullopt; }
std::vector<PendingRetrieval> MysqlReverseStore::list_retrievals(std::size_t) { return {}; }
std::size_t MysqlReverseStore::purge_retrievals(std::int64_t) { return 0; }
PickupId MysqlReverseStore::create_pickup(const NewPickup&) { missing(); }
bool MysqlReverseStore::confirm_pickup(PickupId) { return false; }
bool MysqlReverseStore::cancel_pickup(PickupId) { return false; }
std::optional<Pickup> MysqlReverseStore::find_pickup(std::string_view) { return std::nullopt; }
std::optional<MessageText> MysqlReverseStore::pickup_text(PickupId) { return std::nullopt; }
bool MysqlReverseStore::mark_transferred(PickupId) { return false; }
std::vector<Pickup> MysqlReverseStore::expired_pickups(std::int64_t, std::size_t) { return {}; }
bool MysqlReverseStore::expire_pickup(PickupId, const std::optional<NewMessage>&) { return false; }
std::size_t MysqlReverseStore::purge_pickups(std::int64_t, std::int64_t) { return 0; }
std::vector<Pickup> MysqlReverseStore::list_pickups(std::size_t) { return {}; }
DomainPolicy MysqlReverseStore::policy(std::string_view domain) {
  return DomainPolicy{std::string(domain), std::nullopt, std::nullopt};
}
void MysqlReverseStore::set_policy(const DomainPolicy&) { missing(); }
std::vector<DomainPolicy> MysqlReverseStore::list_policies() { return {}; }
void MysqlReverseStore::add_counter(std::string_view, std::int64_t) {}
ReverseStats MysqlReverseStore::stats() { return {}; }

}  // namespace maild::store::mysql
