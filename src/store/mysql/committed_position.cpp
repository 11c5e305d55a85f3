// The committed position and its file: replaced whole (written beside it, then renamed), so a
// crash leaves the old position or the new one, never a mix.
// Trust: only our own file; its folder is maild's state folder.
#include "store/mysql/committed_position.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>

namespace maild::store::mysql {

void CommittedPosition::load() {
  const auto stored = replication::read_committed_position(file_);
  std::lock_guard lock(mutex_);
  if (stored) position_ = *stored;
}

void CommittedPosition::advance(const std::string& last_gtid) {
  const auto gtid = replication::GtidPosition::parse(last_gtid);
  if (gtid.entries.size() != 1) return;
  std::lock_guard lock(mutex_);
  const std::string before = position_.to_string();
  position_.advance(gtid.entries.front());
  if (position_.to_string() != before) save();
}

replication::GtidPosition CommittedPosition::get() const {
  std::lock_guard lock(mutex_);
  return position_;
}

void CommittedPosition::save() {
  // No fsync: the file outlives a crash of maild, and after a crash of the machine an older
  // position still names the server maild wrote to.
  const auto temporary = file_.string() + "." + std::to_string(::getpid());
  bool saved = false;
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << position_.to_string() << "\n";
    out.close();
    saved = !out.fail();
  }
  std::error_code error;
  if (saved) std::filesystem::rename(temporary, file_, error);
  if (saved && !error) {
    if (save_failed_) spdlog::info("mysql: the GTID position is kept in {} again", file_.string());
    save_failed_ = false;
    return;
  }
  std::filesystem::remove(temporary, error);
  if (!save_failed_) {
    spdlog::error(
        "mysql: cannot write {}: the GTID position of maild's commits is kept in memory only, so "
        "a restarted maild could not tell an old primary from the right one",
        file_.string());
  }
  save_failed_ = true;
}

}  // namespace maild::store::mysql
