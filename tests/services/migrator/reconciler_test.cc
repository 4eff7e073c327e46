// Reconciler's rules, one by one (Decide is pure), and Execute's order: the keeper confirms,
// then the journal records, then the other copies go; a keeper that does not confirm or a
// fenced journal releases nothing.
#include "services/migrator/reconciler.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_agents.h"

namespace smig::migrator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kLeader[] = "smm-1 (fencing token 9)";
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'100);

v1::Session Record(const std::string& server, uint64_t generation = 1,
                   const std::string& migration = "") {
  v1::Session s;
  s.set_session_id(7);
  s.set_vehicle_id("car-1");
  s.set_server_id(server);
  s.set_generation(generation);
  s.set_migration_id(migration);
  return s;
}

v1::Migration InFlight(v1::Phase phase, const std::string& id = "mig-3") {
  v1::Migration m;
  m.set_id(id);
  m.set_session_id(7);
  m.set_from_server_id("edge-1");
  m.set_to_server_id("edge-2");
  m.set_phase(phase);
  m.set_generation(phase >= v1::PHASE_OVERLAPPING ? 2 : 0);
  *m.mutable_started_at() = ToProtoTimestamp(kNow - absl::Seconds(3));
  return m;
}

Reconciler::AgentView View(std::map<std::string, std::map<uint64_t, uint64_t>> serving,
                           std::vector<std::string> silent = {}) {
  Reconciler::AgentView view;
  view.serving = std::move(serving);
  for (const std::string& s : silent) view.unreachable[s] = "does not answer";
  return view;
}

Reconciler::Plan Decide(const std::optional<v1::Session>& record,
                        std::vector<v1::Migration> in_flight, const Reconciler::AgentView& view) {
  return Reconciler::Decide(7, record, std::move(in_flight), view, kLeader, kNow);
}

TEST(ReconcilerDecideTest, TheNamedEdgeKeepsItAndOtherCopiesGo) {
  Reconciler::Plan p = Decide(Record("edge-1"), {}, View({{"edge-1", {{7, 1}}}, {"edge-2", {{7, 2}}}}));
  EXPECT_EQ(p.keeper, "edge-1");
  EXPECT_THAT(p.release, ElementsAre("edge-2"));
  EXPECT_FALSE(p.record.has_value());  // already as recorded
  EXPECT_TRUE(p.changes());
  EXPECT_FALSE(p.deferred);
}

TEST(ReconcilerDecideTest, NothingChangesWhenAllIsAsRecorded) {
  Reconciler::Plan p = Decide(Record("edge-1"), {}, View({{"edge-1", {{7, 1}}}, {"edge-2", {}}}));
  EXPECT_FALSE(p.changes());
  EXPECT_THAT(p.actions, IsEmpty());
}

TEST(ReconcilerDecideTest, BeforeCutOverTheSourceKeepsItAndTheMigrationRollsBack) {
  for (v1::Phase phase : {v1::PHASE_PREPARING, v1::PHASE_TRANSFERRING, v1::PHASE_OVERLAPPING}) {
    Reconciler::Plan p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(phase)},
                                View({{"edge-1", {{7, 1}}}, {"edge-2", {{7, 2}}}}));
    EXPECT_EQ(p.keeper, "edge-1") << v1::Phase_Name(phase);
    EXPECT_THAT(p.release, ElementsAre("edge-2"));
    ASSERT_EQ(p.ended.size(), 1u);
    const v1::Migration& m = p.ended[0];
    EXPECT_EQ(m.phase(), v1::PHASE_ROLLED_BACK);
    EXPECT_THAT(m.rollback_reason(), HasSubstr(absl::StrCat("reconciled by ", kLeader)));
    EXPECT_EQ(m.history(m.history_size() - 1).phase(), v1::PHASE_ROLLED_BACK);
    EXPECT_EQ(FromProto(m.finished_at()), kNow);
    EXPECT_EQ(FromProto(m.duration()), absl::Seconds(3));
    ASSERT_TRUE(p.record.has_value());
    EXPECT_EQ(p.record->server_id(), "edge-1");
    EXPECT_TRUE(p.record->migration_id().empty());
    EXPECT_THAT(p.actions, ElementsAre("rolled_back"));
  }
}

TEST(ReconcilerDecideTest, AtCutOverTheTargetKeepsItAndTheMigrationIsDone) {
  Reconciler::Plan p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_CUT_OVER)},
                              View({{"edge-1", {{7, 1}}}, {"edge-2", {{7, 2}}}}));
  EXPECT_EQ(p.keeper, "edge-2");
  EXPECT_THAT(p.release, ElementsAre("edge-1"));
  ASSERT_EQ(p.ended.size(), 1u);
  EXPECT_EQ(p.ended[0].phase(), v1::PHASE_DONE);
  EXPECT_EQ(p.ended[0].generation(), 2u);
  EXPECT_EQ(p.record->server_id(), "edge-2");
  EXPECT_EQ(p.record->generation(), 2u);
  EXPECT_THAT(p.actions, ElementsAre("finished"));
}

TEST(ReconcilerDecideTest, ANamedEdgeThatLostItYieldsToTheHighestGeneration) {
  Reconciler::Plan p = Decide(Record("edge-1"), {},
                              View({{"edge-1", {}}, {"edge-2", {{7, 3}}}, {"edge-3", {{7, 4}}}}));
  EXPECT_EQ(p.keeper, "edge-3");
  EXPECT_THAT(p.release, ElementsAre("edge-2"));
  EXPECT_EQ(p.record->server_id(), "edge-3");
  EXPECT_EQ(p.record->generation(), 4u);
  EXPECT_THAT(p.actions, ElementsAre("moved"));
  // A CUT_OVER whose target lost it: the source, which never stopped, keeps it.
  p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_CUT_OVER)},
             View({{"edge-1", {{7, 1}}}, {"edge-2", {}}}));
  EXPECT_EQ(p.keeper, "edge-1");
  EXPECT_EQ(p.ended[0].phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(p.ended[0].rollback_reason(), HasSubstr("edge-2 no longer serves the session"));
}

TEST(ReconcilerDecideTest, ANamedEdgeThatDoesNotAnswerReleasesNothing) {
  Reconciler::Plan p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_OVERLAPPING)},
                              View({{"edge-2", {{7, 2}}}}, {"edge-1"}));
  EXPECT_TRUE(p.keeper.empty());
  EXPECT_THAT(p.release, IsEmpty());
  EXPECT_TRUE(p.deferred);
  EXPECT_EQ(p.ended[0].phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(p.ended[0].rollback_reason(), HasSubstr("edge-1 (does not answer) did not answer"));
  EXPECT_EQ(p.record->server_id(), "edge-1");
  EXPECT_TRUE(p.record->migration_id().empty());
  // At CUT_OVER the target is recorded, still without releasing the source.
  p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_CUT_OVER)},
             View({{"edge-1", {{7, 1}}}}, {"edge-2"}));
  EXPECT_THAT(p.release, IsEmpty());
  EXPECT_EQ(p.ended[0].phase(), v1::PHASE_DONE);
  EXPECT_EQ(p.record->server_id(), "edge-2");
  EXPECT_EQ(p.record->generation(), 2u);
}

TEST(ReconcilerDecideTest, NoEdgeServesIt) {
  // Every edge answered: the record goes, and its migration with it.
  Reconciler::Plan p = Decide(Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_PREPARING)},
                              View({{"edge-1", {}}, {"edge-2", {}}}));
  EXPECT_TRUE(p.drop);
  EXPECT_THAT(p.ended[0].rollback_reason(), HasSubstr("no edge serves the session"));
  EXPECT_THAT(p.actions, ElementsAre("dropped"));
  // One did not: it may serve it; nothing is dropped.
  p = Decide(Record("edge-1"), {}, View({{"edge-1", {}}}, {"edge-2"}));
  EXPECT_FALSE(p.drop);
  EXPECT_FALSE(p.changes());
  EXPECT_TRUE(p.deferred);
}

TEST(ReconcilerDecideTest, UnknownSessionsAreAdopted) {
  Reconciler::Plan p = Decide(std::nullopt, {}, View({{"edge-2", {{7, 5}}}}));
  EXPECT_EQ(p.keeper, "edge-2");
  ASSERT_TRUE(p.record.has_value());
  EXPECT_EQ(p.record->session_id(), 7u);
  EXPECT_EQ(p.record->generation(), 5u);
  EXPECT_THAT(p.record->note(), HasSubstr(absl::StrCat("adopted by ", kLeader)));
  EXPECT_THAT(p.actions, ElementsAre("adopted"));
}

TEST(ReconcilerDecideTest, MigrationsTheRecordDoesNotNameAreEndedWithoutActing) {
  v1::Migration stale = InFlight(v1::PHASE_PREPARING, "mig-1");
  Reconciler::Plan p = Decide(Record("edge-1", 1, "mig-3"),
                              {stale, InFlight(v1::PHASE_OVERLAPPING, "mig-3")},
                              View({{"edge-1", {{7, 1}}}, {"edge-2", {{7, 2}}}}));
  ASSERT_EQ(p.ended.size(), 2u);
  EXPECT_EQ(p.ended[0].id(), "mig-1");
  EXPECT_THAT(p.ended[0].rollback_reason(), HasSubstr("not the migration its session records"));
  EXPECT_EQ(p.ended[1].id(), "mig-3");
  EXPECT_THAT(p.release, ElementsAre("edge-2"));
}

class ReconcilerExecuteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.Add("edge-1").Place(7, 1);
    cluster_.Add("edge-2").Place(7, 2);
  }
  Reconciler::Plan RollBack() {
    return Reconciler::Decide(7, Record("edge-1", 1, "mig-3"), {InFlight(v1::PHASE_OVERLAPPING)},
                              reconciler_.Read({"edge-1", "edge-2"}, 9), kLeader, kNow);
  }

  testing::FakeCluster cluster_;
  Reconciler reconciler_{cluster_, nullptr};
  const Reconciler::Term term_{.token = 9, .fence = {}, .leader = kLeader};
};

TEST_F(ReconcilerExecuteTest, ReadRaisesTheFencesFirst) {
  Reconciler::AgentView view = reconciler_.Read({"edge-1", "edge-2", "edge-9"}, 9);
  EXPECT_EQ(view.serving.at("edge-1").at(7), 1u);
  EXPECT_EQ(view.serving.at("edge-2").at(7), 2u);
  EXPECT_THAT(view.unreachable.at("edge-9"), HasSubstr("unknown"));
  EXPECT_EQ(cluster_.agent("edge-1").highest_token(), 9u);
  // An agent that already saw a newer leader stops the pass.
  view = reconciler_.Read({"edge-1"}, 8);
  ASSERT_TRUE(view.fenced.has_value());
  EXPECT_THAT(view.fenced->message(), HasSubstr("fenced"));
}

TEST_F(ReconcilerExecuteTest, ConfirmsThenRecordsThenReleases) {
  Reconciler::Plan plan = RollBack();
  std::vector<std::string> order;
  cluster_.agent("edge-1").set_hook([&](const std::string& method, uint64_t, uint64_t) {
    order.push_back(absl::StrCat("edge-1 ", method));
  });
  cluster_.agent("edge-2").set_hook([&](const std::string& method, uint64_t, uint64_t) {
    order.push_back(absl::StrCat("edge-2 ", method));
  });
  absl::Status s = reconciler_.Execute(plan, term_, [] { return true; },
                                       [&](const Reconciler::Plan&) -> absl::StatusOr<int64_t> {
                                         order.push_back("journal");
                                         return 1;
                                       });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(order, ElementsAre("edge-1 GetSession", "journal", "edge-2 ReleaseSession"));
  EXPECT_FALSE(cluster_.agent("edge-2").Serves(7));
}

TEST_F(ReconcilerExecuteTest, NothingIsReleasedUnlessTheKeeperConfirmsAndTheJournalRecords) {
  Reconciler::Plan plan = RollBack();
  bool recorded = false;
  auto journal = [&](const Reconciler::Plan&) -> absl::StatusOr<int64_t> {
    recorded = true;
    return 1;
  };
  cluster_.agent("edge-1").Kill();  // the keeper stopped answering since the read
  absl::Status s = reconciler_.Execute(plan, term_, [] { return true; }, journal);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(recorded);
  EXPECT_TRUE(plan.deferred);
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(7));

  cluster_.agent("edge-1").Revive();
  s = reconciler_.Execute(plan, term_, [] { return true; },
                          [](const Reconciler::Plan&) -> absl::StatusOr<int64_t> {
                            return absl::FailedPreconditionError("fenced: leader key gone");
                          });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(7));

  s = reconciler_.Execute(plan, term_, [] { return false; }, journal);  // deposed
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(recorded);
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(7));
}

}  // namespace
}  // namespace smig::migrator
