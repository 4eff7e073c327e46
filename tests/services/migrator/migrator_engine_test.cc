// The SMM's state machine against fake agents: the happy path, every refusal's status code,
// rollbacks that leave the source serving, cancellation, idempotency and concurrency.
// Time is a SimulatedClock: the overlap's waits (the fake watch's) end only when a test
// advances it, once the migration's thread waits, so a timeout costs no real time and the
// order of events is fixed.
#include "services/migrator/migrator_engine.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <functional>
#include <future>
#include <thread>

#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_agents.h"

namespace smig::migrator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeCluster;

constexpr absl::Duration kOverlapTimeout = absl::Milliseconds(500);
constexpr absl::Duration kHealthInterval = absl::Milliseconds(20);

bool Ended(const v1::Migration& m) {
  return m.phase() == v1::PHASE_DONE || m.phase() == v1::PHASE_ROLLED_BACK;
}

class MigratorEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.Add("edge-1");
    cluster_.Add("edge-2");
    engine_ = std::make_unique<MigratorEngine>(
        cluster_, nullptr,
        MigratorEngine::Options{.overlap_timeout = kOverlapTimeout,
                                .health_interval = kHealthInterval},
        &registry_, clock_);
  }
  void TearDown() override {
    // The destructor cancels what still runs (after a failed assertion); a migration
    // notices once its watch wakes, so time has to move meanwhile.
    std::atomic<bool> gone = false;
    std::thread destroy([&] {
      engine_.reset();
      gone = true;
    });
    for (absl::Time end = absl::Now() + absl::Seconds(10); !gone && absl::Now() < end;) {
      if (clock_.AwaitSleepers(1, absl::Milliseconds(1))) clock_.Advance(kHealthInterval);
    }
    destroy.join();
  }

  // Waits in real time (the migration's own thread moves it on) until `done` holds for
  // the migration, for up to 10 s; `each` sees every state on the way.
  v1::Migration Await(const std::string& id, const std::function<bool(const v1::Migration&)>& done,
                      const std::function<void(const v1::Migration&)>& each = nullptr) {
    uint64_t seen = 0;
    v1::Migration m = *engine_->GetMigration(id);
    for (absl::Time end = absl::Now() + absl::Seconds(10); !done(m) && absl::Now() < end;) {
      if (each) each(m);
      absl::StatusOr<std::optional<v1::Migration>> next =
          engine_->WaitForChange(id, seen, absl::Milliseconds(1));
      if (next.ok() && next->has_value()) m = **next;
    }
    EXPECT_TRUE(done(m)) << id << " is still " << v1::Phase_Name(m.phase());
    return m;
  }
  bool AwaitPhase(const std::string& id, v1::Phase phase) {
    return Await(id, [&](const v1::Migration& m) { return m.phase() == phase; }).phase() == phase;
  }
  // Follows the migration to its end. Once it waits in its overlap, the clock moves on by
  // `advance` (once): the vehicle's confirmation falls due, or the wait times out.
  v1::Migration WaitEnd(const std::string& id, absl::Duration advance = kHealthInterval) {
    bool advanced = false;
    return Await(id, Ended, [&](const v1::Migration& m) {
      if (!advanced && m.phase() == v1::PHASE_OVERLAPPING &&
          clock_.AwaitSleepers(1, absl::Milliseconds(1))) {
        clock_.Advance(advance);
        advanced = true;
      }
    });
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
  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  SimulatedClock clock_;
  FakeCluster cluster_{clock_};
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
  std::vector<v1::Session> sessions = *engine_->ListSessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].server_id(), "edge-2");
  EXPECT_EQ(sessions[0].generation(), 2u);
  EXPECT_TRUE(sessions[0].migration_id().empty());
  EXPECT_TRUE(sessions[0].migration_to_server_id().empty());
  EXPECT_FALSE(cluster_.agent("edge-1").Serves(1));  // released at cut-over
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(1));
  // No token source: every fenced call goes unfenced (0).
  EXPECT_THAT(cluster_.agent("edge-1").fenced_calls(),
              ElementsAre("OpenSession 0", "ReleaseSession 0"));
  EXPECT_THAT(cluster_.agent("edge-2").fenced_calls(), ElementsAre("ImportState 0"));
  EXPECT_THAT(Metrics(), HasSubstr("smig_migrations_total{result=\"done\",trigger=\"manual\"} 1"));
  // And back again: sequence numbers (generations) keep growing.
  absl::StatusOr<v1::Migration> back = engine_->Migrate(To(1, "edge-1"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(WaitEnd(back->id()).generation(), 3u);
}

TEST_F(MigratorEngineTest, CreateSessionPassesTheRedundancyPolicyAndUnsetMeansAuto) {
  Create(1);  // no policy given
  v1::CreateSessionRequest r;
  r.set_session_id(2);
  r.set_vehicle_id("car-1");
  r.set_server_id("edge-1");
  r.add_vehicle_addresses("10.0.0.1");
  r.set_vehicle_port(6000);
  r.add_flows()->mutable_source()->set_file("movie.ts");
  r.set_redundancy(dv1::REDUNDANCY_POLICY_ALWAYS);
  absl::StatusOr<v1::Session> created = engine_->CreateSession(r);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->redundancy(), dv1::REDUNDANCY_POLICY_ALWAYS);
  EXPECT_EQ(cluster_.agent("edge-1").opened_redundancy(2), dv1::REDUNDANCY_POLICY_ALWAYS);
  EXPECT_EQ(cluster_.agent("edge-1").opened_redundancy(1), dv1::REDUNDANCY_POLICY_AUTO);
  std::vector<v1::Session> sessions = *engine_->ListSessions();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].redundancy(), dv1::REDUNDANCY_POLICY_AUTO);
  EXPECT_EQ(sessions[1].redundancy(), dv1::REDUNDANCY_POLICY_ALWAYS);
}

// docs/protocol.md, "Session keys": the SMM mints a key per session, gives it to the edge
// and to CreateSession's caller (for the vehicle), and shows it in no listing.
TEST_F(MigratorEngineTest, CreateSessionMintsAKeyForTheEdgeAndTheCallerOnly) {
  v1::CreateSessionRequest r;
  r.set_vehicle_id("car-1");
  r.set_server_id("edge-1");
  r.add_vehicle_addresses("10.0.0.1");
  r.set_vehicle_port(6000);
  r.add_flows()->mutable_source()->set_file("movie.ts");
  std::vector<std::string> keys;
  for (uint64_t id : {1, 2}) {
    r.set_session_id(id);
    absl::StatusOr<v1::Session> created = engine_->CreateSession(r);
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_EQ(created->session_key().size(), 32u);
    EXPECT_EQ(created->session_key(), cluster_.agent("edge-1").opened_key(id));
    keys.push_back(created->session_key());
  }
  EXPECT_NE(keys[0], keys[1]);
  std::vector<v1::Session> listed = *engine_->ListSessions();
  ASSERT_EQ(listed.size(), 2u);
  for (const v1::Session& s : listed) EXPECT_TRUE(s.session_key().empty());
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
  EXPECT_EQ(engine_->ListMigrations(0)->size(), 1u);
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
  WaitEnd(first->id(), kOverlapTimeout);  // never confirmed: rolled back

  cluster_.Add("edge-3").Kill();
  s = code(To(1, "edge-3"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  // The hop that failed, by server and agent address, and why.
  EXPECT_EQ(s.message(), "target edge-3 (agent fake:edge-3) is unreachable: UNAVAILABLE: the "
                         "fake agent was killed");
  EXPECT_EQ(engine_->GetMigration("mig-404").status().code(), absl::StatusCode::kNotFound);
}

// Every fenced call carries the token of the leader that made it: CreateSession's at its
// time, a migration's from its Migrate to its end (a token that changes meanwhile is the
// next migration's), on the rollback's release too.
TEST_F(MigratorEngineTest, FencedCallsCarryTheTokenOfTheirMigration) {
  std::atomic<uint64_t> token = 57;
  engine_ = std::make_unique<MigratorEngine>(
      cluster_, nullptr,
      MigratorEngine::Options{.overlap_timeout = kOverlapTimeout,
                              .health_interval = kHealthInterval,
                              .fencing_token = [&token] { return token.load(); }},
      nullptr, clock_);
  Create(1);
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(AwaitPhase(m->id(), v1::PHASE_OVERLAPPING));
  token = 60;  // a new term begins while the migration overlaps
  ASSERT_EQ(WaitEnd(m->id()).phase(), v1::PHASE_DONE);
  EXPECT_THAT(cluster_.agent("edge-1").fenced_calls(),
              ElementsAre("OpenSession 57", "ReleaseSession 57"));
  EXPECT_THAT(cluster_.agent("edge-2").fenced_calls(), ElementsAre("ImportState 57"));

  // The next migration is the new term's; its rollback releases the target with it.
  cluster_.agent("edge-1").set_never_confirm(true);
  m = engine_->Migrate(To(1, "edge-1"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(WaitEnd(m->id(), kOverlapTimeout).phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(cluster_.agent("edge-1").fenced_calls(),
              ElementsAre("OpenSession 57", "ReleaseSession 57", "ImportState 60",
                          "ReleaseSession 60"));
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(1));
}

TEST_F(MigratorEngineTest, TargetDyingDuringTheOverlapRollsBackAndTheSourceKeepsServing) {
  Create(1);
  cluster_.agent("edge-2").set_never_confirm(true);
  absl::StatusOr<v1::Migration> m = engine_->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(AwaitPhase(m->id(), v1::PHASE_OVERLAPPING));
  cluster_.agent("edge-2").Kill();
  v1::Migration end = WaitEnd(m->id());
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("target failed during the overlap"));
  EXPECT_THAT(end.rollback_reason(), HasSubstr("edge-2"));
  EXPECT_TRUE(cluster_.agent("edge-1").Serves(1));
  EXPECT_EQ(cluster_.agent("edge-1").releases(), 0);
  EXPECT_EQ((*engine_->ListSessions())[0].server_id(), "edge-1");
  EXPECT_TRUE((*engine_->ListSessions())[0].migration_id().empty());
  EXPECT_TRUE((*engine_->ListSessions())[0].migration_to_server_id().empty());
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
  end = WaitEnd(m->id(), kOverlapTimeout);
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
  std::future<absl::StatusOr<v1::Migration>> cancel = std::async(std::launch::async, [&] {
    return engine_->CancelMigration(m->id(), "operator changed mind");
  });
  // The migration notices the cancel between two of its overlap's waits (or before its
  // overlap). Time moves once both it and CancelMigration wait on the clock: by then the
  // cancel has been asked.
  bool advanced = false;
  for (absl::Time end = absl::Now() + absl::Seconds(10);
       cancel.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready &&
       absl::Now() < end;) {
    if (!advanced && clock_.AwaitSleepers(2, absl::Milliseconds(1))) {
      clock_.Advance(kHealthInterval);
      advanced = true;
    }
  }
  absl::StatusOr<v1::Migration> c = cancel.get();
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
  ASSERT_TRUE(clock_.AwaitSleepers(20));  // every one of them in its overlap at once
  absl::Time start = clock_.Now();
  clock_.Advance(absl::Milliseconds(200));
  for (const std::string& id : ids) EXPECT_EQ(Await(id, Ended).phase(), v1::PHASE_DONE);
  // Serially this would take 20 x 200 ms (of the clock's time).
  EXPECT_LT(clock_.Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace smig::migrator
