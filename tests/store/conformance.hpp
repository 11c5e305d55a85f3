// The store conformance suite: every backend passes the same tests (conformance_test.cpp,
// queue_conformance_test.cpp for the outbound queue, reverse_conformance_test.cpp for SOURCE/GET).
// A backend instantiates it with INSTANTIATE_TEST_SUITE_P(Name, StoreConformance, Values(factory)).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "maild/store/store.hpp"

namespace maild::store::testing {

struct BackendUnderTest {
  std::string name;  // the test name suffix: letters and digits
  // The store that lives in `dir` (an empty temp folder per test): a new folder gives a new,
  // unmigrated store; the same folder opens the same store again (also from a forked child).
  std::function<std::unique_ptr<Store>(const std::filesystem::path& dir)> open;
  // Writes queued together commit in one transaction (SQLite's writer). MySQL runs each in its
  // own on parallel connections and lets the server group the log flushes instead.
  bool group_commit = true;
};

inline void PrintTo(const BackendUnderTest& backend, std::ostream* out) { *out << backend.name; }

inline std::string backend_name(const ::testing::TestParamInfo<BackendUnderTest>& info) {
  return info.param.name;
}

// A fresh temp folder (mkdtemp), removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class StoreConformance : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The test's store, migrated, with example.com and example.org as local domains.
  Store& store() { return *store_; }
  AdminStore& admin() { return store_->admin(); }
  Directory& directory() { return store_->directory(); }
  MailStore& mail() { return store_->mail(); }
  MaildropStore& maildrops() { return store_->maildrops(); }
  DeliveryQueue& delivery_queue() { return store_->delivery_queue(); }
  QueueAdmin& queue_admin() { return store_->queue_admin(); }

  std::unique_ptr<Store> open(const std::filesystem::path& dir) { return GetParam().open(dir); }
  void reopen();       // closes the store and opens it again from the same folder
  void close_store();  // closes and forgets it (for tests that open their own)
  MailboxId add_mailbox(const std::string& address);

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace maild::store::testing
