// The SMM's state machine against fake agents: the happy path, every refusal's status code,
// rollbacks that leave the source serving, cancellation, idempotency and concurrency.
#include "services/migrator/migrator_engine.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_agents.h"

namespace smig::migrator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeCluster;

class MigratorEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.Add("edge-1");
    cluster_.Add("edge-2");
    engine_ = std::make_unique<MigratorEngine>(
        cluster_, nullptr,
        MigratorEngine::Options{.overlap_timeout = absl::Milliseconds(500),
                                .health_interval = absl::Milliseconds(20)},
        &registry_);
  }

  void Create(uint64_t session, const std::string& server = "edge-1") {
    v1::CreateSessionRequest r;
    r.set_session_id(session);
    r.set_vehicle_id("car-1");
    r.set_server_id(server);
    r.add_vehicle_addresses("10.0.0.1");
    r.set_vehicle_port(6000);
    r.add_flows()->mutable_source()->set_file("movie.ts");
    ASSERT_TRUE(engine_->CreateSession(r).ok());
  }
  static v1::MigrateRequest To(uint64_t session, const std::string& target,
                               const std::string& request_id = "") {
    v1::MigrateRequest r;
    r.set_session_id(session);
    r.set_target_server_id(target);
    r.set_request_id(request_id);
    r.set_reason("test");
    return r;
  }
  // Follows the migration to its end, collecting the phases a watcher sees.
  v1::Migration WaitEnd(const std::string& id, std::vector<v1::Phase>* seen = nullptr) {
    uint64_t version = 0;
    v1::Migration last;
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
      absl::StatusOr<std::optional<v1::Migration>> m =
          engine_->WaitForChange(id, version, absl::Milliseconds(100));
      EXPECT_TRUE(m.ok()) << m.status();
      if (!m.ok() || !m->has_value()) continue;
      last = **m;
      if (seen != nullptr) seen->push_back(last.phase());
      if (last.phase() == v1::PHASE_DONE || last.phase() == v1::PHASE_ROLLED_BACK) break;
    }
    return last;
  }
  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  FakeCluster cluster_;
  prometheus::Registry registry_;
  std::unique_ptr<MigratorEngine> engine_;
};

TEST_F(MigratorEngineTest, MigrationWalksEveryPhaseAndMovesTheSession) {
  Create(1);
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->phase(), v1::PHASE_PREPARING);
  v1::Migration done = WaitEnd(m->id());
  ASSERT_EQ(done.phase(), v1::PHASE_DONE) << done.rollback_reason();
  std::vector<v1::Phase> phases;
  for (const v1::PhaseChange& c : done.history()) phases.push_back(c.phase());
  EXPECT_THAT(phases, ElementsAre(v1::PHASE_PREPARING, v1::PHASE_TRANSFERRING,
                                  v1::PHASE_OVERLAPPING, v1::PHASE_CUT_OVER, v1::PHASE_DONE));
  EXPECT_EQ(done.generation(), 2u);
  EXPECT_TRUE(done.has_duration());
  std::vector<v1::Session> sessions = engine_->ListSessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].server_id(), "edge-2");
  EXPECT_EQ(sessions[0].generation(), 2u);
  EXPECT_TRUE(sessions[0].migration_id().empty());
  EXPECT_FALSE(cluster_.agent("edge-1").Serves(1));  // released at cut-over
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(1));
  EXPECT_THAT(Metrics(), HasSubstr("smig_migrations_total{result=\"done\",trigger=\"manual\"} 1"));
  // And back again: sequence numbers (generations) keep growing.
  absl::StatusOr<v1::Migration> back = engine_->Migrate(To(1, "edge-1"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(WaitEnd(back->id()).generation(), 3u);
}

TEST_F(MigratorEngineTest, TheSameRequestIdReturnsTheSameMigration) {
  Create(1);
  absl::StatusOr<v1::Migration> a = engine_->Migrate(To(1, "edge-2", "req-1"));
  absl::StatusOr<v1::Migration> b = engine_->Migrate(To(1, "edge-2", "req-1"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id(), b->id());
  WaitEnd(a->id());
  absl::StatusOr<v1::Migration> c = engine_->Migrate(To(1, "edge-2", "req-1"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->id(), a->id());
  EXPECT_EQ(c->phase(), v1::PHASE_DONE);
  EXPECT_EQ(engine_->ListMigrations(0).size(), 1u);
}

TEST_F(MigratorEngineTest, RefusalsSayWhatHappened) {
  Create(1);
  auto code = [&](const v1::MigrateRequest& r) { return engine_->Migrate(r).status(); };
  absl::Status s = code(To(9, "edge-2"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("session 9"));
  s = code(To(1, "edge-7"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("edge-7"));
  s = code(To(1, "edge-1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("edge-1"));
  v1::MigrateRequest no_target;
  no_target.set_session_id(1);
  EXPECT_EQ(code(no_target).code(), absl::StatusCode::kInvalidArgument);
  v1::MigrateRequest auto_target;
  auto_target.set_session_id(1);
  auto_target.mutable_auto_();
  EXPECT_EQ(code(auto_target).code(), absl::StatusCode::kFailedPrecondition);  // no PMM here

  cluster_.agent("edge-2").set_never_confirm(true);
  absl::StatusOr<v1::Migration> first = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(first.ok());
  s = code(To(1, "edge-2"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(first->id()));
  WaitEnd(first->id());

  cluster_.Add("edge-3").Kill();
  s = code(To(1, "edge-3"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("edge-3"));
  EXPECT_EQ(engine_->GetMigration("mig-404").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MigratorEngineTest, TargetDyingDuringTheOverlapRollsBackAndTheSourceKeepsServing) {
  Create(1);
  cluster_.agent("edge-2").set_never_confirm(true);
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok());
  for (absl::Time end = absl::Now() + absl::Seconds(2);
       engine_->GetMigration(m->id())->phase() != v1::PHASE_OVERLAPPING && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  cluster_.agent("edge-2").Kill();
  v1::Migration end = WaitEnd(m->id());
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("target failed during the overlap"));
  EXPECT_THAT(end.rollback_reason(), HasSubstr("edge-2"));
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
  EXPECT_EQ(cluster_.agent("edge-1").releases(), 0);
  EXPECT_EQ(engine_->ListSessions()[0].server_id(), "edge-1");
  EXPECT_TRUE(engine_->ListSessions()[0].migration_id().empty());
  EXPECT_THAT(Metrics(), HasSubstr("smig_migrations_total{result=\"rolled_back\",trigger=\"manual\"} 1"));
}

TEST_F(MigratorEngineTest, RefusedImportAndOverlapTimeoutRollBack) {
  Create(1);
  cluster_.agent("edge-2").set_import_error(absl::ResourceExhaustedError("edge-2 is at capacity"));
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok());
  v1::Migration end = WaitEnd(m->id());
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("at capacity"));

  cluster_.agent("edge-2").set_import_error(absl::OkStatus());
  cluster_.agent("edge-2").set_never_confirm(true);
  m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok());
  end = WaitEnd(m->id());
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("did not confirm"));
  EXPECT_FALSE(cluster_.agent("edge-2").Serves(1));  // the target let go
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
}

TEST_F(MigratorEngineTest, CancelRollsBackBeforeCutOverOnly) {
  Create(1);
  cluster_.agent("edge-2").set_never_confirm(true);
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok());
  absl::StatusOr<v1::Migration> c = engine_->CancelMigration(m->id(), "operator changed mind");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_EQ(c->rollback_reason(), "cancelled: operator changed mind");
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
  EXPECT_THAT(Metrics(), HasSubstr("result=\"cancelled\""));
  EXPECT_EQ(engine_->CancelMigration(m->id(), "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MigratorEngineTest, MigrationsOfDifferentSessionsRunConcurrently) {
  cluster_.agent("edge-2").set_confirm_after(absl::Milliseconds(200));
  std::vector<std::string> ids;
  for (uint64_t s = 1; s <= 20; ++s) {
    Create(s);
    absl::StatusOr<v1::Migration> m = engine_->Migrate(To(s, "edge-2"));
    ASSERT_TRUE(m.ok()) << m.status();
    ids.push_back(m->id());
  }
  absl::Time start = absl::Now();
  for (const std::string& id : ids) EXPECT_EQ(WaitEnd(id).phase(), v1::PHASE_DONE);
  // Serially this would take 20 x 200 ms.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace smig::migrator
