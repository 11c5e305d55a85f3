// GTID positions as `mailctl db failover` compares them to pick the most advanced standby.
#include "maild/store/replication.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace maild::store::replication
