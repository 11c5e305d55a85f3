// GTID positions as `mailctl db failover` compares them to pick the most advanced standby, and
// GTID histories as maild and `mailctl db status | replicate` compare them to find an endpoint
// that lacks transactions (an old primary back after a failover, a standby with its own).
#include "maild/store/replication.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "store/mysql/committed_position.hpp"

namespace maild::store::replication {
namespace {

TEST(GtidPosition, ParsesDomainsInOrder) {
  const auto position = GtidPosition::parse("1-2-7,0-1-42");
  ASSERT_EQ(position.entries.size(), 2u);
  EXPECT_EQ(position.entries[0].domain, 0u);
  EXPECT_EQ(position.entries[0].server, 1u);
  EXPECT_EQ(position.entries[0].sequence, 42u);
  EXPECT_EQ(position.sequence(1), 7u);
  EXPECT_EQ(position.sequence(5), 0u);
}

TEST(GtidPosition, EmptyAndMalformedTextIsNoPosition) {
  EXPECT_TRUE(GtidPosition::parse("").entries.empty());
  EXPECT_TRUE(GtidPosition::parse("x-1-2").entries.empty());
  EXPECT_EQ(GtidPosition::parse("0-1-3,\n0-1").entries.size(), 1u);
}

TEST(GtidPosition, CoversComparesEachDomainsSequence) {
  const auto ahead = GtidPosition::parse("0-1-42,1-2-7");
  const auto behind = GtidPosition::parse("0-1-40");
  EXPECT_TRUE(ahead.covers(behind));
  EXPECT_FALSE(behind.covers(ahead));
  EXPECT_TRUE(ahead.covers(GtidPosition::parse("")));
  EXPECT_TRUE(GtidPosition::parse("").covers(GtidPosition::parse("")));
  EXPECT_FALSE(GtidPosition::parse("0-1-50").covers(GtidPosition::parse("0-1-40,1-2-1")));
  // The server id does not matter: after a failover the new primary numbers on.
  EXPECT_TRUE(GtidPosition::parse("0-2-43").covers(GtidPosition::parse("0-1-42")));
}

TEST(GtidPosition, PrintsAsParsed) {
  EXPECT_EQ(GtidPosition::parse("1-2-7,0-1-42").to_string(), "0-1-42,1-2-7");
  EXPECT_EQ(GtidPosition::parse("").to_string(), "");
}

TEST(GtidPosition, AdvanceKeepsTheHigherSequencePerDomain) {
  GtidPosition position;
  position.advance({0, 1, 10});
  position.advance({2, 1, 3});
  position.advance({0, 1, 9});  // a commit of another connection, remembered late
  EXPECT_EQ(position.to_string(), "0-1-10,2-1-3");
  position.advance({0, 2, 11});  // the new primary numbers on
  position.advance({1, 2, 1});
  EXPECT_EQ(position.to_string(), "0-2-11,1-2-1,2-1-3");
}

GtidHistory history(const std::string& current, const std::string& binlog_state) {
  return {GtidPosition::parse(current), GtidPosition::parse(binlog_state)};
}

TEST(GtidHistory, HasTheSameServersTransactionAtOrBelowItsPosition) {
  const auto server = history("0-2-1005", "0-1-1000,0-2-1005");
  EXPECT_TRUE(server.contains(GtidPosition::parse("0-2-1005")));
  EXPECT_TRUE(server.contains(GtidPosition::parse("0-2-1001")));
  EXPECT_TRUE(server.contains(GtidPosition::parse("0-1-1000")));  // replicated from server 1
  EXPECT_TRUE(server.contains(GtidPosition::parse("0-1-998")));
  EXPECT_FALSE(server.contains(GtidPosition::parse("0-2-1006")));  // behind
  EXPECT_FALSE(server.contains(GtidPosition::parse("0-2-1005,1-2-1")));
  EXPECT_TRUE(server.contains(GtidPosition::parse("")));
}

TEST(GtidHistory, DivergenceWithEqualSequenceNumbersIsSeen) {
  // The old primary (server 1) came back with two transactions the new primary never had;
  // maild wrote two on the new primary (server 2): both at sequence 1002 in domain 0.
  const auto old_primary = history("0-1-1002", "0-1-1002");
  const auto new_primary = history("0-2-1002", "0-1-1000,0-2-1002");
  const auto committed = GtidPosition::parse("0-2-1002");
  EXPECT_TRUE(old_primary.current.covers(committed));  // sequence numbers alone would say yes
  EXPECT_FALSE(old_primary.contains(committed));
  EXPECT_EQ(old_primary.missing(committed).to_string(), "0-2-1002");
  EXPECT_TRUE(new_primary.contains(committed));
  EXPECT_FALSE(new_primary.contains(old_primary.current));
  EXPECT_FALSE(old_primary.contains(new_primary.current));
}

TEST(GtidHistory, WithoutABinaryLogTheCurrentPositionCounts) {
  // A standby with log_slave_updates off: its binary log has none of the primary's GTIDs.
  const auto standby = history("0-1-40", "");
  EXPECT_TRUE(standby.contains(GtidPosition::parse("0-1-40")));
  EXPECT_FALSE(standby.contains(GtidPosition::parse("0-1-41")));
  EXPECT_FALSE(standby.contains(GtidPosition::parse("0-3-40")));
}

EndpointStatus endpoint(std::uint16_t port, bool read_only, const std::string& current,
                        const std::string& binlog_state) {
  EndpointStatus state;
  state.endpoint = {"127.0.0.1", port};
  state.reachable = true;
  state.read_only = read_only;
  state.history = history(current, binlog_state);
  return state;
}

TEST(Divergences, NoneWhenTheStandbyFollowsThePrimary) {
  const std::vector<EndpointStatus> states{endpoint(1, false, "0-1-50", "0-1-50"),
                                           endpoint(2, true, "0-1-48", "0-1-48")};
  EXPECT_TRUE(divergences(states, GtidPosition::parse("0-1-50"), "file").empty());
  EXPECT_TRUE(divergences(states, std::nullopt, "file").empty());
}

TEST(Divergences, NamesDivergedErrantAndBehind) {
  const std::vector<EndpointStatus> split{endpoint(1, false, "0-1-1002", "0-1-1002"),
                                          endpoint(2, true, "0-2-1002", "0-1-1000,0-2-1002")};
  const auto found = divergences(split, GtidPosition::parse("0-2-1002"), "remembered in F");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].rfind("diverged: 127.0.0.1:1 at '0-1-1002' and 127.0.0.1:2 at '0-2-1002'", 0),
            0u)
      << found[0];
  EXPECT_EQ(found[1].rfind("behind: the primary 127.0.0.1:1", 0), 0u) << found[1];
  EXPECT_NE(found[1].find("0-2-1002, remembered in F"), std::string::npos) << found[1];

  // A standby with a transaction of its own on top of everything the primary has.
  const std::vector<EndpointStatus> errant{endpoint(1, false, "0-1-50", "0-1-50"),
                                           endpoint(2, true, "0-2-51", "0-1-50,0-2-51")};
  const auto one = divergences(errant, std::nullopt, "file");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0],
            "errant: 127.0.0.1:2 at '0-2-51' has transactions the primary 127.0.0.1:1 at "
            "'0-1-50' lacks (0-2-51)");
}

TEST(CommittedPosition, KeptInItsFileAcrossRestarts) {
  const auto folder =
      std::filesystem::temp_directory_path() / ("maild-position-" + std::to_string(getpid()));
  std::filesystem::create_directories(folder);
  const auto file = folder / "mysql-gtid-position";
  {
    mysql::CommittedPosition position(file);
    position.load();  // no file yet: no position
    EXPECT_TRUE(position.get().empty());
    position.advance("0-1-7");
    position.advance("");  // a commit that logged nothing
    position.advance("0-1-6");
    EXPECT_EQ(position.get().to_string(), "0-1-7");
  }
  {
    mysql::CommittedPosition again(file);
    again.load();
    EXPECT_EQ(again.get().to_string(), "0-1-7");
  }
  std::ofstream(file) << "garbage\n";
  mysql::CommittedPosition broken(file);
  EXPECT_THROW(broken.load(), StoreError);
  std::filesystem::remove_all(folder);
}

TEST(CommittedPosition, FileNextToTheSqliteFile) {
  config::Settings settings;
  settings.store.path = "/var/lib/maild/mail.db";
  EXPECT_EQ(committed_position_file(settings), "/var/lib/maild/mysql-gtid-position");
}

}  // namespace
}  // namespace maild::store::replication
