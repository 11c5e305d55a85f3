// The GTID position of the last commit maild saw on the primary, per domain id, kept in a file
// so that a restarted maild still knows it. An endpoint whose history lacks it is behind what
// maild acknowledged (an old primary back after a failover) and is never written to.
// Trust: the file is maild's own; one that cannot be parsed stops the store from opening.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>

#include "maild/store/replication.hpp"

namespace maild::store::mysql {

class CommittedPosition {
 public:
  explicit CommittedPosition(std::filesystem::path file) : file_(std::move(file)) {}

  // Reads the file, when there is one. Throws StoreError when it cannot be read or parsed.
  void load();
  // Takes @@last_gtid after a commit ("0-2-1005"; "" when nothing was logged) and writes the
  // file when the position moved. A file that cannot be written is logged, once.
  void advance(const std::string& last_gtid);
  replication::GtidPosition get() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  void save();  // with mutex_ held

  std::filesystem::path file_;
  mutable std::mutex mutex_;
  replication::GtidPosition position_;
  bool save_failed_ = false;
};

}  // namespace maild::store::mysql
