#include "dataplane/transport/path_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::transport {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kPathA[] = "10.1.0.1:5000";
constexpr char kPathB[] = "10.2.0.1:5000";
constexpr char kPathC[] = "10.3.0.1:5000";

v1::Event PathEvent(v1::EventType type, uint32_t assoc, const std::string& address = "") {
  v1::Event e;
  e.set_type(type);
  e.set_assoc_id(assoc);
  e.set_address(address);
  return e;
}

struct Counters {
  uint64_t bytes = 0;
  uint64_t messages = 0;
  friend bool operator==(const Counters&, const Counters&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Counters& c) {
    return os << "{bytes=" << c.bytes << " messages=" << c.messages << "}";
  }
};

// Counters per address, in the order asked for.
std::vector<Counters> CountersOf(const PathTable& table, uint32_t assoc,
                                 const std::vector<std::string>& addresses) {
  v1::AssociationInfo info;
  info.set_assoc_id(assoc);
  for (const std::string& a : addresses) info.add_paths()->set_address(a);
  table.FillCounters(info);
  std::vector<Counters> out;
  for (const v1::PathInfo& p : info.paths()) out.push_back({p.bytes_sent(), p.messages_sent()});
  return out;
}

class PathTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Primary B, so that the fallback (first ACTIVE in address order, A) is a different path.
    table_.OnUp(1, 8, {kPathA, kPathB, kPathC}, kPathB);
  }
  std::vector<Counters> Counts() { return CountersOf(table_, 1, {kPathA, kPathB, kPathC}); }

  PathTable table_;
};

TEST_F(PathTableTest, AttributesSendsToThePrimary) {
  EXPECT_TRUE(table_.RecordSend(1, 100));
  EXPECT_TRUE(table_.RecordSend(1, 50));
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{150, 2}, Counters{0, 0}));
}

TEST_F(PathTableTest, MovesToFirstActivePathWhenPrimaryUnreachableAndBack) {
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_UNREACHABLE, 1, kPathB));
  table_.RecordSend(1, 10);
  EXPECT_THAT(Counts(), ElementsAre(Counters{10, 1}, Counters{0, 0}, Counters{0, 0}));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_AVAILABLE, 1, kPathB));
  table_.RecordSend(1, 20);
  EXPECT_THAT(Counts(), ElementsAre(Counters{10, 1}, Counters{20, 1}, Counters{0, 0}));
}

TEST_F(PathTableTest, MovesWhenPrimaryPotentiallyFailed) {
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_POTENTIALLY_FAILED, 1, kPathB));
  table_.RecordSend(1, 10);
  EXPECT_THAT(Counts(), ElementsAre(Counters{10, 1}, Counters{0, 0}, Counters{0, 0}));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_AVAILABLE, 1, kPathB));
  table_.RecordSend(1, 20);
  EXPECT_THAT(Counts(), ElementsAre(Counters{10, 1}, Counters{20, 1}, Counters{0, 0}));
}

TEST_F(PathTableTest, SkipsOtherDownPathsInTheFallback) {
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_UNREACHABLE, 1, kPathA));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_UNREACHABLE, 1, kPathB));
  table_.RecordSend(1, 7);
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{0, 0}, Counters{7, 1}));
}

TEST_F(PathTableTest, AllPathsDownStillCountsOnThePrimary) {
  for (const char* p : {kPathA, kPathB, kPathC}) {
    table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_UNREACHABLE, 1, p));
  }
  table_.RecordSend(1, 5);
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{5, 1}, Counters{0, 0}));
}

TEST_F(PathTableTest, SetPrimaryAndPrimaryChangedMoveTheAttribution) {
  table_.SetPrimary(1, kPathC);
  table_.RecordSend(1, 3);
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{0, 0}, Counters{3, 1}));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PRIMARY_CHANGED, 1, kPathA));
  table_.RecordSend(1, 4);
  EXPECT_THAT(Counts(), ElementsAre(Counters{4, 1}, Counters{0, 0}, Counters{3, 1}));
}

TEST_F(PathTableTest, PathAddedAndRemoved) {
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_REMOVED, 1, kPathB));
  table_.RecordSend(1, 2);  // the primary is gone: first active path
  EXPECT_THAT(Counts(), ElementsAre(Counters{2, 1}, Counters{0, 0}, Counters{0, 0}));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_ADDED, 1, kPathB));
  table_.RecordSend(1, 6);
  EXPECT_THAT(Counts(), ElementsAre(Counters{2, 1}, Counters{6, 1}, Counters{0, 0}));
}

TEST_F(PathTableTest, ANamedPathCountsThereWhileActive) {
  table_.RecordSend(1, 10, kPathC);  // a copy on C while the primary B carries the rest
  table_.RecordSend(1, 20);
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{20, 1}, Counters{10, 1}));
  // C reported down: the stack moves data named for it, so it counts like an unnamed send.
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_UNREACHABLE, 1, kPathC));
  table_.RecordSend(1, 5, kPathC);
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{25, 2}, Counters{10, 1}));
  table_.RecordSend(1, 1, "10.9.9.9:5000");  // not a path of it: as if unnamed
  EXPECT_THAT(Counts(), ElementsAre(Counters{0, 0}, Counters{26, 3}, Counters{10, 1}));
}

TEST_F(PathTableTest, ListsThePathsOfAnAssociation) {
  EXPECT_THAT(table_.Paths(1), ElementsAre(kPathA, kPathB, kPathC));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_REMOVED, 1, kPathA));
  EXPECT_THAT(table_.Paths(1), ElementsAre(kPathB, kPathC));
  table_.AddPending(7);
  EXPECT_THAT(table_.Paths(7), IsEmpty());
  EXPECT_THAT(table_.Paths(8), IsEmpty());
}

TEST_F(PathTableTest, EndingEventsRemoveTheAssociation) {
  for (v1::EventType end : {v1::EVENT_TYPE_ASSOC_LOST, v1::EVENT_TYPE_SHUTDOWN_COMPLETE,
                            v1::EVENT_TYPE_ASSOC_CANT_START}) {
    table_.OnUp(2, 4, {kPathA}, kPathA);
    ASSERT_TRUE(table_.Contains(2));
    table_.OnEvent(PathEvent(end, 2));
    EXPECT_FALSE(table_.Contains(2)) << v1::EventType_Name(end);
    EXPECT_FALSE(table_.RecordSend(2, 1)) << v1::EventType_Name(end);
    EXPECT_EQ(table_.StreamsOut(2), 0u);
  }
  EXPECT_THAT(table_.Associations(), ElementsAre(1u));
}

TEST_F(PathTableTest, EventsForUnknownAssociationsCreateNothing) {
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_PATH_AVAILABLE, 9, kPathA));
  table_.OnEvent(PathEvent(v1::EVENT_TYPE_ASSOC_LOST, 9));
  EXPECT_FALSE(table_.Contains(9));
  EXPECT_THAT(table_.Associations(), ElementsAre(1u));
}

TEST(PathTableStandaloneTest, PendingThenUpThenRestartStreams) {
  PathTable table;
  EXPECT_THAT(table.Associations(), IsEmpty());
  EXPECT_EQ(table.StreamsOut(5), 0u);
  table.AddPending(5);
  EXPECT_TRUE(table.Contains(5));
  EXPECT_EQ(table.StreamsOut(5), 0u);
  EXPECT_TRUE(table.RecordSend(5, 10));  // known but without paths: counted nowhere
  table.OnUp(5, 10, {kPathA}, kPathA);
  EXPECT_EQ(table.StreamsOut(5), 10u);
  v1::Event restart = PathEvent(v1::EVENT_TYPE_ASSOC_RESTART, 5);
  restart.set_streams_out(3);
  table.OnEvent(restart);
  EXPECT_EQ(table.StreamsOut(5), 3u);
  table.AddPending(6);
  EXPECT_THAT(table.Associations(), ElementsAre(5u, 6u));
}

TEST(PathTableStandaloneTest, FillCountersLeavesUnknownPathsAndAssociationsAlone) {
  PathTable table;
  table.OnUp(1, 1, {kPathA}, kPathA);
  table.RecordSend(1, 11);
  EXPECT_THAT(CountersOf(table, 1, {kPathC, kPathA}), ElementsAre(Counters{0, 0}, Counters{11, 1}));
  EXPECT_THAT(CountersOf(table, 2, {kPathA}), ElementsAre(Counters{0, 0}));
}

}  // namespace
}  // namespace smig::transport
