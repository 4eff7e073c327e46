// EtcdStore against a real etcd (tests/fakes/etcd_process.h; each test starts its own):
// reads and writes under the prefix, paged lists, atomic batches, fences from a real
// election, an unreachable etcd, and an etcd that is killed and restarted.
#include "common/store/etcd_store.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/store/leader_election.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/etcd_process.h"

namespace smig::store {
namespace {

using ::smig::store::testing::EtcdProcess;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

// A loopback port that nothing listens on (bound, read back, closed).
int DeadPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    store_ = NewStore("/smig/");
  }
  std::unique_ptr<EtcdStore> NewStore(const std::string& prefix) {
    absl::StatusOr<std::unique_ptr<EtcdStore>> store =
        EtcdStore::Create({.endpoints = {etcd_->endpoint()}, .prefix = prefix});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::unique_ptr<LeaderElection> NewElection(const std::string& id) {
    absl::StatusOr<std::unique_ptr<LeaderElection>> e = LeaderElection::Create(
        {.endpoints = {etcd_->endpoint()}, .name = "/smig/leader/test", .id = id});
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(*e) : nullptr;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdStore> store_;
};

TEST_F(EtcdStoreTest, GetPutListDelete) {
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store_->Get("sessions/1"), std::nullopt);
  absl::StatusOr<int64_t> r1 = store_->Put("sessions/2", "two", Fence{});
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<int64_t> r2 = store_->Put("sessions/1", "one", Fence{});
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_GT(*r2, *r1);
  ASSERT_TRUE(store_->Put("policy", "p", Fence{}).ok());

  absl::StatusOr<std::optional<Entry>> got = store_->Get("sessions/2");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, (Entry{"sessions/2", "two", *r1, *r1}));
  absl::StatusOr<int64_t> r3 = store_->Put("sessions/2", "TWO", Fence{});
  EXPECT_EQ(**store_->Get("sessions/2"), (Entry{"sessions/2", "TWO", *r1, *r3}));

  absl::StatusOr<std::vector<Entry>> list = store_->List("sessions/");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(*list, ElementsAre(Field(&Entry::key, "sessions/1"), Field(&Entry::key, "sessions/2")));
  EXPECT_EQ(store_->List("")->size(), 3u);

  // Another prefix is another keyspace.
  std::unique_ptr<EtcdStore> other = NewStore("/other/");
  ASSERT_TRUE(other->Put("sessions/9", "nine", Fence{}).ok());
  EXPECT_EQ(store_->List("sessions/")->size(), 2u);
  EXPECT_EQ(*other->Get("sessions/1"), std::nullopt);

  ASSERT_TRUE(store_->Delete("sessions/2", Fence{}).ok());
  EXPECT_EQ(*store_->Get("sessions/2"), std::nullopt);
  EXPECT_TRUE(store_->Delete("sessions/2", Fence{}).ok());  // deleting nothing is fine
  EXPECT_EQ(store_->Put("", "v", Fence{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EtcdStoreTest, ListReadsEveryPageSorted) {
  ASSERT_NE(store_, nullptr);
  constexpr int kKeys = 2 * 1000 + 57;  // three pages
  for (int i = 0; i < kKeys; i += Store::kMaxBatch) {
    std::vector<Write> batch;
    for (int k = i; k < std::min<int>(kKeys, i + Store::kMaxBatch); ++k) {
      batch.push_back(Write::Put(absl::StrFormat("journal/%05d", k), std::to_string(k)));
    }
    ASSERT_TRUE(store_->Apply(batch, Fence{}).ok());
  }
  ASSERT_TRUE(store_->Put("journal0", "not under journal/", Fence{}).ok());
  absl::StatusOr<std::vector<Entry>> list = store_->List("journal/");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), static_cast<size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_EQ((*list)[k].key, absl::StrFormat("journal/%05d", k));
    ASSERT_EQ((*list)[k].value, std::to_string(k));
  }
}

TEST_F(EtcdStoreTest, BatchIsAtomic) {
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(store_->Put("pending/7", "x", Fence{}).ok());
  absl::StatusOr<int64_t> rev =
      store_->Apply({Write::Put("journal/7", "done"), Write::Delete("pending/7")}, Fence{});
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ((*store_->Get("journal/7"))->mod_revision, *rev);
  EXPECT_EQ(*store_->Get("pending/7"), std::nullopt);
  EXPECT_EQ(store_->Apply({Write::Put("a", "1"), Write::Put("a", "2")}, Fence{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A fence that fails writes none of the batch.
  Fence stale{"/smig/leader/test/0", 1};
  absl::Status s = store_->Apply({Write::Put("b", "1"), Write::Put("c", "2")}, stale).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("it does not exist"));
  EXPECT_EQ(*store_->Get("b"), std::nullopt);
  EXPECT_EQ(*store_->Get("c"), std::nullopt);
}

TEST_F(EtcdStoreTest, FencedWriteHoldsOnlyWhileItsLeadershipDoes) {
  ASSERT_NE(store_, nullptr);
  std::unique_ptr<LeaderElection> a = NewElection("a");
  a->Start();
  absl::StatusOr<Leadership> term_a = a->AwaitLeadership(absl::Seconds(5));
  ASSERT_TRUE(term_a.ok()) << term_a.status();
  std::unique_ptr<LeaderElection> b = NewElection("b");
  b->Start();
  ASSERT_TRUE(store_->Put("journal/1", "by a", term_a->fence()).ok());
  ASSERT_TRUE(store_->Delete("journal/1", term_a->fence()).ok());

  ASSERT_TRUE(a->Resign().ok());
  absl::StatusOr<Leadership> term_b = b->AwaitLeadership(absl::Seconds(5));
  ASSERT_TRUE(term_b.ok()) << term_b.status();
  EXPECT_GT(term_b->revision, term_a->revision);

  absl::Status fenced = store_->Put("journal/2", "by a, too late", term_a->fence()).status();
  EXPECT_EQ(fenced.code(), absl::StatusCode::kFailedPrecondition) << fenced;
  EXPECT_THAT(fenced.message(), HasSubstr("fenced: leader key " + term_a->key));
  EXPECT_THAT(fenced.message(), HasSubstr(absl::StrCat("create revision ", term_a->revision)));
  EXPECT_EQ(*store_->Get("journal/2"), std::nullopt);
  EXPECT_EQ(store_->Delete("journal/2", term_a->fence()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Put("journal/2", "by b", term_b->fence()).ok());
}

TEST(EtcdStoreUnreachableTest, IsUnavailableNamingTheEndpoint) {
  std::string dead = absl::StrCat("127.0.0.1:", DeadPort());
  absl::StatusOr<std::unique_ptr<EtcdStore>> store =
      EtcdStore::Create({.endpoints = {dead}, .call_timeout = absl::Milliseconds(500)});
  ASSERT_TRUE(store.ok());
  absl::Time start = absl::Now();
  absl::Status s = (*store)->Get("a").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr(dead));
  s = (*store)->Put("a", "b", Fence{}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr(dead));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(EtcdStore::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EtcdProcessTest, WithoutEtcdSaysHowToInstallIt) {
  absl::Status s = EtcdProcess::Start("/nonexistent/etcd").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("scripts/install-deps"));
}

TEST_F(EtcdStoreTest, TriesTheEndpointsInTurn) {
  std::string dead = absl::StrCat("127.0.0.1:", DeadPort());
  absl::StatusOr<std::unique_ptr<EtcdStore>> store =
      EtcdStore::Create({.endpoints = {dead, etcd_->endpoint()}});
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->Put("a", "b", Fence{}).ok());
  EXPECT_EQ((*(*store)->Get("a"))->value, "b");
}

TEST_F(EtcdStoreTest, DataOutlivesAnEtcdCrashAndTheStoreWorksAfterIt) {
  ASSERT_NE(store_, nullptr);
  ASSERT_TRUE(store_->Put("sessions/1", "kept", Fence{}).ok());
  ASSERT_TRUE(etcd_->Kill().ok());
  absl::Status down = store_->Get("sessions/1").status();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_THAT(down.message(), HasSubstr(etcd_->endpoint()));

  ASSERT_TRUE(etcd_->Restart().ok());
  // The store's channel reconnects on its own (after at most 1 s of backoff).
  absl::StatusOr<std::optional<Entry>> got;
  for (absl::Time end = absl::Now() + absl::Seconds(5); absl::Now() < end;) {
    got = store_->Get("sessions/1");
    if (got.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "kept");
  EXPECT_TRUE(store_->Put("sessions/2", "after", Fence{}).ok());
}

}  // namespace
}  // namespace smig::store
