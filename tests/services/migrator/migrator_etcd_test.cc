// The SMM's replicas on a real etcd (tests/fakes/etcd_process.h, lease TTL 1 s) with
// EtcdStore and LeaderElection, and fake agents on the real clock: the leader is killed
// (no resignation, as kill -9) while a migration overlaps, the standby takes over within
// the lease's bound, reconciles (the session ends on one edge), and a restarted replica
// lists what the journal holds. The takeover time is printed.
#include <prometheus/registry.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/store/etcd_store.h"
#include "common/store/leader_election.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/migrator/migrator_engine.h"
#include "tests/fakes/etcd_process.h"
#include "tests/fakes/fake_agents.h"

namespace smig::migrator {
namespace {

using ::smig::store::EtcdStore;
using ::smig::store::LeaderElection;
using ::smig::store::testing::EtcdProcess;
using ::testing::HasSubstr;

struct Replica {
  std::unique_ptr<EtcdStore> store;
  std::unique_ptr<LeaderElection> election;
  prometheus::Registry registry;
  std::unique_ptr<MigratorEngine> engine;
};

class MigratorEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    cluster_.Add("edge-1");
    cluster_.Add("edge-2");
  }
  void TearDown() override {
    for (auto& r : replicas_) r->engine.reset();  // before their elections and stores
    replicas_.clear();
  }

  Replica& Start(const std::string& id) {
    auto r = std::make_unique<Replica>();
    absl::StatusOr<std::unique_ptr<EtcdStore>> store =
        EtcdStore::Create({.endpoints = {etcd_->endpoint()}});
    EXPECT_TRUE(store.ok()) << store.status();
    r->store = std::move(*store);
    absl::StatusOr<std::unique_ptr<LeaderElection>> election = LeaderElection::Create(
        {.endpoints = {etcd_->endpoint()}, .name = "/smig/leader/migrator", .id = id});
    EXPECT_TRUE(election.ok()) << election.status();
    r->election = std::move(*election);
    r->engine = std::make_unique<MigratorEngine>(
        cluster_, nullptr,
        MigratorEngine::Options{.overlap_timeout = absl::Seconds(30),
                                .store = r->store.get(),
                                .election = r->election.get(),
                                .replica_id = id,
                                .reconcile_interval = absl::Milliseconds(200)},
        &r->registry);
    r->election->SetListener(r->engine->Listener());
    r->election->Start();
    replicas_.push_back(std::move(r));
    return *replicas_.back();
  }

  static v1::Migration Await(Replica& r, const std::string& id,
                             const std::function<bool(const v1::Migration&)>& done) {
    v1::Migration m;
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(5))) {
      absl::StatusOr<v1::Migration> now = r.engine->GetMigration(id);
      if (now.ok()) m = *now;
      if (now.ok() && done(m)) break;
    }
    return m;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  testing::FakeCluster cluster_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(MigratorEtcdTest, TheStandbyTakesOverFromAKilledLeaderAndTheSessionEndsOnOneEdge) {
  Replica& a = Start("smm-0");
  ASSERT_TRUE(a.engine->AwaitServing(absl::Seconds(10)));
  Replica& b = Start("smm-1");

  v1::CreateSessionRequest create;
  create.set_session_id(1);
  create.set_vehicle_id("car-1");
  create.set_server_id("edge-1");
  create.add_flows()->mutable_source()->set_file("movie.ts");
  ASSERT_TRUE(a.engine->CreateSession(create).ok());
  cluster_.agent("edge-2").set_never_confirm(true);
  v1::MigrateRequest to;
  to.set_session_id(1);
  to.set_target_server_id("edge-2");
  to.set_request_id("decision-1");
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(to);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(Await(a, m->id(), [](const v1::Migration& x) {
              return x.phase() == v1::PHASE_OVERLAPPING;
            }).phase(),
            v1::PHASE_OVERLAPPING);
  ASSERT_TRUE(cluster_.agent("edge-1").Serves(1) && cluster_.agent("edge-2").Serves(1));

  // The standby refuses changes, names the leader, and reads the journal from etcd.
  absl::Status refused = b.engine->Migrate(to).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("smm-0"));
  absl::StatusOr<std::vector<v1::Session>> listed = b.engine->ListSessions();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].migration_id(), m->id());
  EXPECT_EQ((*listed)[0].migration_to_server_id(), "edge-2");

  // kill -9: the leader stops renewing without resigning; etcd expires its lease.
  const absl::Time died = absl::Now();
  a.election->AbandonForTesting();
  ASSERT_TRUE(b.engine->AwaitServing(absl::Seconds(10)));
  const absl::Duration takeover = absl::Now() - died;
  std::printf("SMM takeover after the leader's death: %s\n",
              absl::FormatDuration(takeover).c_str());
  EXPECT_LT(takeover, absl::Seconds(5));

  v1::Migration end = Await(b, m->id(), [](const v1::Migration& x) {
    return x.phase() == v1::PHASE_ROLLED_BACK || x.phase() == v1::PHASE_DONE;
  });
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("reconciled by smm-1"));
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
  EXPECT_FALSE(cluster_.agent("edge-2").Serves(1));
  // The dead leader's thread notices (its belief ends by its clock) and changes nothing.
  a.engine.reset();
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
  EXPECT_FALSE(cluster_.agent("edge-2").Serves(1));

  // The same request id is the same migration at the new leader.
  absl::StatusOr<v1::Migration> same = b.engine->Migrate(to);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->id(), m->id());

  // Another replica starting later lists the same (from etcd, as a standby).
  Replica& c = Start("smm-2");
  listed = c.engine->ListSessions();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].server_id(), "edge-1");
  EXPECT_TRUE((*listed)[0].migration_id().empty());
  EXPECT_TRUE((*listed)[0].migration_to_server_id().empty());
  absl::StatusOr<v1::Migration> read = c.engine->GetMigration(m->id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->phase(), v1::PHASE_ROLLED_BACK);
}

}  // namespace
}  // namespace smig::migrator
