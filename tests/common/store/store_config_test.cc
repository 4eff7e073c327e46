// common/store/store_config.h and store_metrics.h: a StoreConfig's validation and defaults,
// ServiceStore::Open (no etcd needed: opening connects to nothing), and the leader and
// store-error metrics (MeteredStore over a MemoryStore, Observe over a FakeElection).
#include "common/store/store_config.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/store/store_metrics.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/fakes/memory_store.h"

namespace smig::store {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

common::v1::StoreConfig Config(const std::string& text) {
  common::v1::StoreConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

TEST(StoreConfigTest, NoStoreIsValidAndOpensNothing) {
  common::v1::StoreConfig none;
  EXPECT_FALSE(StoreConfigured(none));
  EXPECT_TRUE(ValidateStoreConfig(none).ok());
  absl::StatusOr<std::unique_ptr<ServiceStore>> ss = ServiceStore::Open(none, "decision", nullptr);
  ASSERT_TRUE(ss.ok()) << ss.status();
  EXPECT_EQ(*ss, nullptr);
}

TEST(StoreConfigTest, RejectsWhatCannotWorkNamingTheField) {
  struct Case {
    std::string config, field, says;
  };
  for (const Case& c : std::vector<Case>{
           {R"(prefix: "/x/")", "store.endpoints", "store.prefix is set"},
           {R"(replica_id: "a")", "store.endpoints", "store.replica_id is set"},
           {R"(endpoints: "http://127.0.0.1:2379")", "store.endpoints[0]", "has a scheme"},
           {R"(endpoints: "127.0.0.1:2379" endpoints: "etcd-1")", "store.endpoints[1]",
            "is not host:port"},
           {R"(endpoints: ":2379")", "store.endpoints[0]", "is not host:port"},
           {R"(endpoints: "etcd:70000")", "store.endpoints[0]", "is not host:port"},
           {R"(endpoints: "e:2379" prefix: "smig/")", "store.prefix", "start and end with"},
           {R"(endpoints: "e:2379" prefix: "/smig")", "store.prefix", "start and end with"},
           {R"(endpoints: "e:2379" lease_ttl { nanos: 500000000 })", "store.lease_ttl",
            "whole number of seconds"},
           {R"(endpoints: "e:2379" lease_ttl { seconds: 1 nanos: 500000000 })",
            "store.lease_ttl", "whole number of seconds"},
           {R"(endpoints: "e:2379" call_timeout { seconds: 0 })", "store.call_timeout",
            "must be > 0"},
       }) {
    absl::Status s = ValidateStoreConfig(Config(c.config));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.config;
    EXPECT_THAT(std::string(s.message()), StartsWith(c.field + ":")) << c.config;
    EXPECT_THAT(s.message(), HasSubstr(c.says)) << c.config;
    EXPECT_EQ(ServiceStore::Open(Config(c.config), "decision", nullptr).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(ValidateStoreConfig(Config(R"(endpoints: "[::1]:2379" endpoints: "etcd-0.etcd:2379"
                                            prefix: "/" lease_ttl { seconds: 3 }
                                            call_timeout { nanos: 1 })"))
                  .ok());
}

TEST(StoreConfigTest, DefaultsNameTheElectionAndTheReplica) {
  EXPECT_EQ(ElectionName(Config(R"(endpoints: "e:2379")"), "decision"), "/smig/leader/decision");
  EXPECT_EQ(ElectionName(Config(R"(endpoints: "e:2379" prefix: "/lab/")"), "migrator"),
            "/lab/leader/migrator");
  const std::string id = DefaultReplicaId();
  EXPECT_THAT(id, ::testing::EndsWith(absl::StrCat(":", getpid())));
  EXPECT_GT(id.size(), absl::StrCat(":", getpid()).size());

  absl::StatusOr<std::unique_ptr<ServiceStore>> ss =
      ServiceStore::Open(Config(R"(endpoints: "127.0.0.1:1")"), "decision", nullptr);
  ASSERT_TRUE(ss.ok()) << ss.status();
  ASSERT_NE(*ss, nullptr);
  EXPECT_EQ((*ss)->replica_id(), id);
  EXPECT_EQ((*ss)->election_name(), "/smig/leader/decision");
  EXPECT_EQ((*ss)->prefix(), "/smig/");
  EXPECT_FALSE((*ss)->election().IsLeader());  // not started: no campaign, no leadership

  ss = ServiceStore::Open(Config(R"(endpoints: "127.0.0.1:1" prefix: "/lab/" replica_id: "mdm-a")"),
                          "decision", nullptr);
  ASSERT_TRUE(ss.ok()) << ss.status();
  EXPECT_EQ((*ss)->replica_id(), "mdm-a");
  EXPECT_EQ((*ss)->election_name(), "/lab/leader/decision");
  EXPECT_EQ((*ss)->prefix(), "/lab/");
}

TEST(StoreConfigTest, AnUnreachableStoreIsUnavailableAndCounted) {
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<ServiceStore>> ss = ServiceStore::Open(
      Config(R"(endpoints: "127.0.0.1:1" call_timeout { nanos: 200000000 })"), "decision",
      &registry);
  ASSERT_TRUE(ss.ok()) << ss.status();
  EXPECT_EQ((*ss)->store().Get("decision/policy").status().code(),
            absl::StatusCode::kUnavailable);
  const std::string page = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_THAT(page, HasSubstr(R"(smig_store_errors_total{op="get",service="decision"} 1)"));
}

// The value of the one sample of `name` whose labels include `labels` (a substring).
double Sample(prometheus::Registry& registry, const std::string& name, const std::string& labels) {
  const std::string page = prometheus::TextSerializer().Serialize(registry.Collect());
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::StartsWith(line, name + "{") && absl::StrContains(line, labels)) {
      double v = 0;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) << line;
      return v;
    }
  }
  ADD_FAILURE() << "no " << name << " with " << labels << " in\n" << page;
  return -1;
}

TEST(StoreMetricsTest, EverySeriesStartsAtZero) {
  prometheus::Registry registry;
  StoreMetrics metrics(&registry, "migrator");
  EXPECT_EQ(Sample(registry, "smig_leader", R"(service="migrator")"), 0);
  EXPECT_EQ(Sample(registry, "smig_leader_changes_total", R"(service="migrator")"), 0);
  for (absl::string_view op : StoreMetrics::kOps) {
    EXPECT_EQ(Sample(registry, "smig_store_errors_total",
                     absl::StrCat(R"(op=")", op, R"(",service="migrator")")),
              0);
  }
}

TEST(StoreMetricsTest, MeteredStoreCountsFailuresByOperation) {
  prometheus::Registry registry;
  StoreMetrics metrics(&registry, "decision");
  testing::MemoryStore memory;
  MeteredStore store(memory, metrics);
  ASSERT_TRUE(store.Put("a", "1", Fence{}).ok());
  ASSERT_TRUE(store.Get("a").ok());
  // A fenced write that loses is a failure too: it did not happen.
  EXPECT_EQ(store.Put("a", "2", Fence{"leader/x", 99}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  memory.SetUnavailable(true);
  EXPECT_EQ(store.Get("a").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.List("").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Delete("a", Fence{}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Apply({Write::Put("b", "1")}, Fence{}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.Put("a", "3", Fence{}).status().code(), absl::StatusCode::kUnavailable);
  for (auto [op, n] : {std::pair{"get", 1}, std::pair{"list", 1}, std::pair{"put", 2},
                       std::pair{"delete", 1}, std::pair{"apply", 1}}) {
    EXPECT_EQ(Sample(registry, "smig_store_errors_total", absl::StrCat(R"(op=")", op, R"(")")),
              n)
        << op;
  }
}

TEST(StoreMetricsTest, ObserveTracksLeadershipAndCountsTerms) {
  prometheus::Registry registry;
  StoreMetrics metrics(&registry, "decision");
  testing::MemoryStore memory;
  testing::FakeElection election(memory);
  int gained = 0, lost = 0;
  election.SetListener(metrics.Observe({.on_gained = [&](const Leadership&) { ++gained; },
                                        .on_lost = [&](const Leadership&,
                                                       const absl::Status&) { ++lost; }}));
  ASSERT_TRUE(election.MakeLeader().ok());
  EXPECT_EQ(Sample(registry, "smig_leader", "decision"), 1);
  election.Depose();
  EXPECT_EQ(Sample(registry, "smig_leader", "decision"), 0);
  ASSERT_TRUE(election.MakeLeader().ok());
  EXPECT_EQ(Sample(registry, "smig_leader", "decision"), 1);
  EXPECT_EQ(Sample(registry, "smig_leader_changes_total", "decision"), 2);
  EXPECT_EQ(gained, 2);
  EXPECT_EQ(lost, 1);

  // Without a registry nothing is exported, and nothing breaks.
  StoreMetrics none(nullptr, "decision");
  none.SetLeading(true);
  none.CountError("get");
}

}  // namespace
}  // namespace smig::store
