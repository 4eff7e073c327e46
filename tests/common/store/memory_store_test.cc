// The in-memory fakes of common/store: MemoryStore keeps etcd's revision rules and fences
// (so that a service's unit tests see what etcd would do), and FakeElection's terms fence
// the store as an etcd election's would.
#include "tests/fakes/memory_store.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

TEST(MemoryStoreTest, GetPutListDelete) {
  MemoryStore store;
  EXPECT_EQ(*store.Get("a"), std::nullopt);
  absl::StatusOr<int64_t> r1 = store.Put("sessions/2", "two", Fence{});
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<int64_t> r2 = store.Put("sessions/1", "one", Fence{});
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE(store.Put("policy", "p", Fence{}).ok());
  EXPECT_GT(*r2, *r1);

  absl::StatusOr<std::optional<Entry>> got = store.Get("sessions/2");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, (Entry{"sessions/2", "two", *r1, *r1}));

  EXPECT_THAT(*store.List("sessions/"),
              ElementsAre(Field(&Entry::key, "sessions/1"), Field(&Entry::key, "sessions/2")));
  EXPECT_EQ(store.List("")->size(), 3u);

  // An update keeps the create revision and moves the mod revision.
  absl::StatusOr<int64_t> r3 = store.Put("sessions/2", "TWO", Fence{});
  got = store.Get("sessions/2");
  EXPECT_EQ(**got, (Entry{"sessions/2", "TWO", *r1, *r3}));

  ASSERT_TRUE(store.Delete("sessions/2", Fence{}).ok());
  EXPECT_EQ(*store.Get("sessions/2"), std::nullopt);
  // Deleting nothing is fine and changes no revision, as in etcd.
  int64_t before = store.revision();
  EXPECT_TRUE(store.Delete("sessions/2", Fence{}).ok());
  EXPECT_EQ(store.revision(), before);
  // A key created again has a new create revision.
  absl::StatusOr<int64_t> r4 = store.Put("sessions/2", "again", Fence{});
  EXPECT_EQ((*store.Get("sessions/2"))->create_revision, *r4);
}

TEST(MemoryStoreTest, BatchIsAtomicAndFollowsEtcdsRules) {
  MemoryStore store;
  ASSERT_TRUE(store.Put("pending/7", "x", Fence{}).ok());
  absl::StatusOr<int64_t> rev =
      store.Apply({Write::Put("journal/7", "done"), Write::Delete("pending/7")}, Fence{});
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ((*store.Get("journal/7"))->mod_revision, *rev);
  EXPECT_EQ(*store.Get("pending/7"), std::nullopt);

  EXPECT_EQ(store.Apply({Write::Put("a", "1"), Write::Delete("a")}, Fence{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Put("", "v", Fence{}).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Write> many;
  for (size_t i = 0; i <= Store::kMaxBatch; ++i) many.push_back(Write::Put(std::to_string(i), ""));
  EXPECT_EQ(store.Apply(many, Fence{}).status().code(), absl::StatusCode::kInvalidArgument);
  many.pop_back();
  EXPECT_TRUE(store.Apply(many, Fence{}).ok());
}

TEST(MemoryStoreTest, UnavailableFailsEveryCall) {
  MemoryStore store;
  store.SetUnavailable(true);
  EXPECT_EQ(store.Get("a").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.List("").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Put("a", "b", Fence{}).status().code(), absl::StatusCode::kUnavailable);
  store.SetUnavailable(false);
  EXPECT_TRUE(store.Put("a", "b", Fence{}).ok());
}

TEST(FakeElectionTest, FencedWritesHoldOnlyForTheCurrentTerm) {
  MemoryStore store;
  FakeElection election(store, "leader/smm", "smm-0");
  std::vector<std::string> events;
  election.SetListener({
      .on_gained = [&](const Leadership& l) { events.push_back("gained " + l.key); },
      .on_lost = [&](const Leadership&, const absl::Status& why) {
        events.push_back("lost " + std::string(why.message()));
      },
  });
  EXPECT_FALSE(election.IsLeader());
  EXPECT_EQ(*election.Leader(), std::nullopt);

  absl::StatusOr<Leadership> term = election.MakeLeader();
  ASSERT_TRUE(term.ok()) << term.status();
  EXPECT_TRUE(election.IsLeader());
  EXPECT_EQ(election.AwaitLeadership(absl::Seconds(1))->revision, term->revision);
  EXPECT_EQ(election.Leader()->value().id, "smm-0");
  EXPECT_TRUE(store.Put("journal/1", "j", term->fence()).ok());

  election.Depose();
  EXPECT_FALSE(election.IsLeader());
  absl::Status fenced = store.Put("journal/2", "j", term->fence()).status();
  EXPECT_EQ(fenced.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fenced.message(), HasSubstr("fenced: leader key leader/smm/smm-0"));
  EXPECT_THAT(fenced.message(), HasSubstr(std::to_string(term->revision)));
  EXPECT_EQ(*store.Get("journal/2"), std::nullopt);

  // The next term's fence works, the old one still does not.
  absl::StatusOr<Leadership> next = election.MakeLeader();
  ASSERT_TRUE(next.ok());
  EXPECT_GT(next->revision, term->revision);
  EXPECT_TRUE(store.Delete("journal/1", next->fence()).ok());
  EXPECT_EQ(store.Delete("journal/1", term->fence()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(election.Resign().ok());
  EXPECT_THAT(events, ElementsAre("gained leader/smm/smm-0", "lost deposed by the test",
                                  "gained leader/smm/smm-0", "lost resigned"));
  EXPECT_EQ(election.AwaitLeadership(absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace smig::store::testing
