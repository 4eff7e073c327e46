// The SMM durable and replicated (issue 14), against fake agents that fence like real ones,
// a MemoryStore and FakeElections: a restart lists what it listed and keeps request ids; a
// leader that dies in each phase leaves the session on exactly one edge once the next leader
// has reconciled; a deposed leader changes neither an agent nor the store; a standby refuses
// changes naming the leader and answers reads; sessions the journal does not know are
// adopted; an edge that does not answer, or a store that does not, loses nothing.
//
// Time is a SimulatedClock that tests advance (Drive) once something waits on it; real time
// only bounds the waits (10 s).
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/migrator/migration_journal.h"
#include "services/migrator/migrator_engine.h"
#include "tests/fakes/fake_agents.h"
#include "tests/fakes/memory_store.h"

namespace smig::migrator {
namespace {

using ::smig::store::testing::FakeElection;
using ::smig::store::testing::MemoryStore;
using ::testing::HasSubstr;
using testing::FakeCluster;

constexpr absl::Duration kOverlapTimeout = absl::Milliseconds(500);
constexpr absl::Duration kHealthInterval = absl::Milliseconds(20);
constexpr absl::Duration kReconcileInterval = absl::Seconds(1);
constexpr char kElection[] = "leader/migrator";

// Holds the agent calls a hook sends here until Open().
class Hold {
 public:
  void Block() {
    {
      absl::MutexLock lock(&mu_);
      if (!reached_.HasBeenNotified()) reached_.Notify();
    }
    open_.WaitForNotification();
  }
  bool AwaitReached() { return reached_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  void Open() {
    if (!open_.HasBeenNotified()) open_.Notify();
  }

 private:
  absl::Mutex mu_;
  absl::Notification reached_, open_;
};

class MigratorReplicasTest : public ::testing::Test {
 protected:
  struct Replica {
    std::string id;
    std::unique_ptr<FakeElection> election;
    prometheus::Registry registry;
    std::unique_ptr<MigratorEngine> engine;

    uint64_t token() const { return election->current() ? election->current()->revision : 0; }
    std::string Metrics() { return prometheus::TextSerializer().Serialize(registry.Collect()); }
  };

  void SetUp() override {
    cluster_.Add("edge-1");
    cluster_.Add("edge-2");
  }
  void TearDown() override {
    hold_.Open();
    for (auto& r : replicas_) Stop(*r);
  }

  Replica& Start(const std::string& id, size_t max_finished = 10000,
                 absl::Duration audit = absl::InfiniteDuration()) {
    auto r = std::make_unique<Replica>();
    r->id = id;
    r->election = std::make_unique<FakeElection>(store_, kElection, id);
    r->engine = std::make_unique<MigratorEngine>(
        cluster_, nullptr,
        MigratorEngine::Options{.overlap_timeout = kOverlapTimeout,
                                .health_interval = kHealthInterval,
                                .max_finished = max_finished,
                                .store = &store_,
                                .election = r->election.get(),
                                .replica_id = id,
                                .reconcile_interval = kReconcileInterval,
                                .audit_interval = audit},
        &r->registry, clock_);
    r->election->SetListener(r->engine->Listener());
    replicas_.push_back(std::move(r));
    return *replicas_.back();
  }
  // Makes `r` the leader and waits until it has taken over.
  void Lead(Replica& r) {
    ASSERT_TRUE(r.election->MakeLeader().ok());
    ASSERT_TRUE(r.engine->AwaitServing(absl::Seconds(10))) << r.id << " did not take over";
  }
  // Stops a replica's engine (a restart, or the end): time moves meanwhile, so that its
  // migrations notice.
  void Stop(Replica& r) {
    if (!r.engine) return;
    Drive([] { return true; }, [&] { r.engine.reset(); });
  }

  // Runs `action` (if any) on its own thread and waits, in real time (up to 10 s), until it
  // returned and `done` holds; whenever some thread waits on the clock, time moves on by
  // the health interval.
  bool Drive(const std::function<bool()>& done, const std::function<void()>& action = nullptr) {
    std::atomic<bool> acted = action == nullptr;
    std::thread worker;
    if (action) {
      worker = std::thread([&] {
        action();
        acted = true;
      });
    }
    bool ok = false;
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
      if (acted && done()) {
        ok = true;
        break;
      }
      if (clock_.AwaitSleepers(1, absl::Milliseconds(1))) clock_.Advance(kHealthInterval);
    }
    if (worker.joinable()) worker.join();
    return ok;
  }
  bool DriveUntil(const std::function<bool()>& done) { return Drive(done); }
  // Waits (in real time, up to 10 s) without moving the clock: for what needs no time.
  static bool Eventually(const std::function<bool()>& done) {
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(1))) {
      if (done()) return true;
    }
    return false;
  }

  v1::Migration Get(Replica& r, const std::string& id) {
    absl::StatusOr<v1::Migration> m = r.engine->GetMigration(id);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : v1::Migration();
  }
  static bool Ended(const v1::Migration& m) {
    return m.phase() == v1::PHASE_DONE || m.phase() == v1::PHASE_ROLLED_BACK;
  }
  bool AwaitPhase(Replica& r, const std::string& id, v1::Phase phase) {
    return DriveUntil([&] { return Get(r, id).phase() == phase; });
  }
  v1::Migration AwaitEnd(Replica& r, const std::string& id) {
    DriveUntil([&] { return Ended(Get(r, id)); });
    return Get(r, id);
  }

  void Create(Replica& r, uint64_t session, const std::string& server = "edge-1") {
    v1::CreateSessionRequest req;
    req.set_session_id(session);
    req.set_vehicle_id("car-1");
    req.set_server_id(server);
    req.add_vehicle_addresses("10.0.0.1");
    req.set_vehicle_port(6000);
    req.add_flows()->mutable_source()->set_file("movie.ts");
    absl::StatusOr<v1::Session> s = r.engine->CreateSession(req);
    ASSERT_TRUE(s.ok()) << s.status();
  }
  static v1::MigrateRequest To(uint64_t session, const std::string& target,
                               const std::string& request_id = "") {
    v1::MigrateRequest req;
    req.set_session_id(session);
    req.set_target_server_id(target);
    req.set_request_id(request_id);
    req.set_reason("test");
    return req;
  }
  std::vector<v1::Session> Sessions(Replica& r) {
    absl::StatusOr<std::vector<v1::Session>> s = r.engine->ListSessions();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<v1::Session>();
  }
  // What the journal holds, read straight from the store.
  MigrationJournal::Snapshot Journal() {
    MigrationJournal journal(store_, {}, clock_);
    absl::StatusOr<MigrationJournal::Snapshot> s = journal.Load();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : MigrationJournal::Snapshot();
  }
  // The edges that serve `session` now.
  std::vector<std::string> ServedBy(uint64_t session) {
    std::vector<std::string> out;
    for (const char* id : {"edge-1", "edge-2", "edge-3"}) {
      if (absl::StatusOr<std::shared_ptr<Agent>> a = cluster_.Find(id);
          a.ok() && cluster_.agent(id).Serves(session)) {
        out.push_back(id);
      }
    }
    return out;
  }

  SimulatedClock clock_;
  FakeCluster cluster_{clock_};
  MemoryStore store_;
  Hold hold_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(MigratorReplicasTest, ARestartListsTheSameAndKeepsRequestIds) {
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);
  Create(a, 2);
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, "edge-2", "req-1"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(AwaitEnd(a, m->id()).phase(), v1::PHASE_DONE);
  const std::vector<v1::Session> before = Sessions(a);
  const std::vector<v1::Migration> migrations = *a.engine->ListMigrations(0);

  // The process restarts: a new engine over the same store, in a new term.
  const size_t calls = cluster_.agent("edge-2").fenced_calls().size();
  Stop(a);
  a.election->Depose();
  Replica& again = Start("smm-0");
  Lead(again);
  const std::vector<v1::Session> after = Sessions(again);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString()) << after[i].DebugString();
  }
  absl::StatusOr<std::vector<v1::Migration>> listed = again.engine->ListMigrations(0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].SerializeAsString(), migrations[0].SerializeAsString());
  // The same request id is the same migration, across the restart.
  absl::StatusOr<v1::Migration> same = again.engine->Migrate(To(1, "edge-1", "req-1"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->id(), m->id());
  EXPECT_EQ(same->phase(), v1::PHASE_DONE);
  // A new migration gets a new number: ids are not reused across terms.
  absl::StatusOr<v1::Migration> next = again.engine->Migrate(To(2, "edge-2"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->id(), "mig-2");
  EXPECT_EQ(AwaitEnd(again, next->id()).phase(), v1::PHASE_DONE);
  // Reconciliation found everything as recorded: it only raised the fences.
  std::vector<std::string> since = cluster_.agent("edge-2").fenced_calls();
  since.erase(since.begin(), since.begin() + calls);
  EXPECT_THAT(since, ::testing::ElementsAre(absl::StrCat("RaiseFence ", again.token()),
                                            absl::StrCat("ImportState ", again.token())));
  EXPECT_THAT(again.Metrics(), HasSubstr("smig_takeover_duration_seconds_count 1"));
}

// The leader dies (its term ends) while a migration is in `phase`, held there by an agent
// hook (or, for OVERLAPPING, by a vehicle that never confirms); another replica takes over.
class LeaderDiesTest : public MigratorReplicasTest,
                       public ::testing::WithParamInterface<v1::Phase> {};

TEST_P(LeaderDiesTest, TheNextLeaderEndsTheMigrationAndTheSessionIsOnOneEdge) {
  const v1::Phase phase = GetParam();
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);
  const uint64_t token_a = a.token();
  switch (phase) {
    case v1::PHASE_PREPARING:
      cluster_.agent("edge-1").set_hook([&](const std::string& method, uint64_t, uint64_t) {
        if (method == "WatchContiguity") hold_.Block();
      });
      break;
    case v1::PHASE_TRANSFERRING:
      cluster_.agent("edge-2").set_hook([&](const std::string& method, uint64_t, uint64_t token) {
        if (method == "ImportState" && token == token_a) hold_.Block();
      });
      break;
    case v1::PHASE_OVERLAPPING:
      cluster_.agent("edge-2").set_never_confirm(true);
      break;
    default:  // CUT_OVER: the source's release
      cluster_.agent("edge-1").set_hook(
          [&](const std::string& method, uint64_t session, uint64_t token) {
            if (method == "ReleaseSession" && session == 1 && token == token_a) hold_.Block();
          });
  }
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, "edge-2", "req-1"));
  ASSERT_TRUE(m.ok()) << m.status();
  if (phase == v1::PHASE_OVERLAPPING) {
    // Both edges send: the state the measured bug left behind.
    ASSERT_TRUE(Eventually([&] { return Get(a, m->id()).phase() == phase; }));
    EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1", "edge-2"));
  } else {
    if (phase == v1::PHASE_CUT_OVER) {
      ASSERT_TRUE(DriveUntil([&] { return Get(a, m->id()).phase() == phase; }));
    }
    ASSERT_TRUE(hold_.AwaitReached());
    ASSERT_EQ(Get(a, m->id()).phase(), phase);
  }
  EXPECT_EQ(Journal().migrations.at(m->id()).migration.phase(), phase);

  a.election->Depose();
  Replica& b = Start("smm-1");
  Lead(b);
  EXPECT_GT(b.token(), token_a);

  const bool done = phase == v1::PHASE_CUT_OVER;
  const std::string keeper = done ? "edge-2" : "edge-1";
  v1::Migration end = Get(b, m->id());
  EXPECT_EQ(end.phase(), done ? v1::PHASE_DONE : v1::PHASE_ROLLED_BACK) << end.DebugString();
  EXPECT_THAT(end.history(end.history_size() - 1).note(), HasSubstr("reconciled by smm-1"));
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre(keeper));
  std::vector<v1::Session> sessions = Sessions(b);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].server_id(), keeper);
  EXPECT_EQ(sessions[0].generation(), cluster_.agent(keeper).generation(1));
  EXPECT_TRUE(sessions[0].migration_id().empty());
  EXPECT_TRUE(sessions[0].migration_to_server_id().empty());
  // The store agrees, as any replica reads it.
  MigrationJournal::Snapshot journal = Journal();
  EXPECT_EQ(journal.sessions.at(1).SerializeAsString(), sessions[0].SerializeAsString());
  EXPECT_EQ(journal.migrations.at(m->id()).migration.phase(), end.phase());
  // The request id still names it.
  absl::StatusOr<v1::Migration> same = b.engine->Migrate(To(1, "edge-2", "req-1"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->id(), m->id());

  // The old leader's thread, let go now (its call was in flight), changes nothing.
  hold_.Open();
  Stop(a);
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre(keeper));
  EXPECT_EQ(Journal().sessions.at(1).SerializeAsString(), sessions[0].SerializeAsString());
  EXPECT_THAT(b.Metrics(), HasSubstr(absl::StrCat("smig_reconcile_actions_total{action=\"",
                                                  done ? "finished" : "rolled_back", "\"} 1")));
}

INSTANTIATE_TEST_SUITE_P(EveryPhase, LeaderDiesTest,
                         ::testing::Values(v1::PHASE_PREPARING, v1::PHASE_TRANSFERRING,
                                           v1::PHASE_OVERLAPPING, v1::PHASE_CUT_OVER),
                         [](const ::testing::TestParamInfo<v1::Phase>& p) {
                           return v1::Phase_Name(p.param);
                         });

// The old leader does not know it was deposed (its lease expired at the store, as in a
// partition): its journal writes are fenced, and its agent calls carry a token the agents
// refuse once the new leader has raised their fences.
TEST_F(MigratorReplicasTest, ADeposedLeaderChangesNeitherAnAgentNorTheStore) {
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);
  const uint64_t token_a = a.token();
  cluster_.agent("edge-2").set_hook([&](const std::string& method, uint64_t, uint64_t token) {
    if (method == "ImportState" && token == token_a) hold_.Block();
  });
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(hold_.AwaitReached());

  ASSERT_TRUE(store_.Delete(a.election->current()->key, {}).ok());  // the lease ran out
  Replica& b = Start("smm-1");
  Lead(b);
  ASSERT_TRUE(a.engine->Serving()) << "a still believes it leads";

  // The store refuses the old leader's writes: a CreateSession writes first, so no agent
  // was touched either.
  v1::CreateSessionRequest create;
  create.set_session_id(2);
  create.set_vehicle_id("car-2");
  create.set_server_id("edge-1");
  create.add_flows();
  absl::StatusOr<v1::Session> refused = a.engine->CreateSession(create);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("fenced"));
  EXPECT_FALSE(cluster_.agent("edge-1").Serves(2));
  EXPECT_FALSE(Journal().sessions.contains(2));

  // The import it had in flight is refused by the agent.
  hold_.Open();
  ASSERT_TRUE(DriveUntil([&] {
    std::vector<std::string> calls = cluster_.agent("edge-2").fenced_calls();
    return std::find(calls.begin(), calls.end(), absl::StrCat("ImportState ", token_a)) !=
           calls.end();
  }));
  absl::StatusOr<dv1::Session> release = cluster_.agent("edge-1").ReleaseSession(1, token_a);
  EXPECT_EQ(release.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(release.status().message(), HasSubstr("fenced"));
  Stop(a);
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1"));
  EXPECT_EQ(cluster_.agent("edge-2").highest_token(), b.token());
  EXPECT_EQ(Get(b, m->id()).phase(), v1::PHASE_ROLLED_BACK);
}

TEST_F(MigratorReplicasTest, AStandbyRefusesChangesNamingTheLeaderAndAnswersReads) {
  Replica& a = Start("smm-0");
  Replica& standby = Start("smm-1");
  Lead(a);
  Create(a, 1);
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(AwaitEnd(a, m->id()).phase(), v1::PHASE_DONE);

  absl::Status refused = standby.engine->Migrate(To(1, "edge-1")).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("the leader is smm-0"));
  v1::CreateSessionRequest create;
  create.set_session_id(2);
  create.set_vehicle_id("car-2");
  create.set_server_id("edge-1");
  create.add_flows();
  EXPECT_EQ(standby.engine->CreateSession(create).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(standby.engine->CancelMigration(m->id(), "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(standby.engine->Serving());

  // Reads come from the store.
  std::vector<v1::Session> sessions = Sessions(standby);
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].server_id(), "edge-2");
  EXPECT_EQ(Get(standby, m->id()).phase(), v1::PHASE_DONE);
  EXPECT_EQ(standby.engine->ListMigrations(1)->size(), 1u);
  uint64_t seen = 0;
  absl::StatusOr<std::optional<v1::Migration>> watched =
      standby.engine->WaitForChange(m->id(), seen, absl::Seconds(1));
  ASSERT_TRUE(watched.ok() && watched->has_value());
  EXPECT_EQ((*watched)->phase(), v1::PHASE_DONE);
  EXPECT_GT(seen, 0u);
  EXPECT_EQ(standby.engine->GetMigration("mig-404").status().code(), absl::StatusCode::kNotFound);

  // No leader at all: try again later.
  a.election->Depose();
  refused = standby.engine->Migrate(To(1, "edge-1")).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("no SMM replica leads"));
}

TEST_F(MigratorReplicasTest, SessionsTheJournalDoesNotKnowAreAdoptedAndStrayCopiesReleased) {
  cluster_.Add("edge-3");
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);  // recorded at edge-1 ...
  cluster_.agent("edge-3").Place(1, 5);  // ... and a stray copy elsewhere, newer
  cluster_.agent("edge-2").Place(7, 3);  // unknown, on two edges
  cluster_.agent("edge-3").Place(7, 4);
  cluster_.agent("edge-2").Place(8, 1);  // unknown, on one
  Create(a, 9);                          // recorded, but its edge lost it
  ASSERT_TRUE(cluster_.agent("edge-1").ReleaseSession(9, kUnfenced).ok());
  a.election->Depose();

  Replica& b = Start("smm-1");
  Lead(b);
  std::map<uint64_t, v1::Session> sessions;
  for (const v1::Session& s : Sessions(b)) sessions[s.session_id()] = s;
  ASSERT_EQ(sessions.size(), 3u);
  EXPECT_EQ(sessions[1].server_id(), "edge-1");  // the journal names it
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1"));
  EXPECT_EQ(sessions[7].server_id(), "edge-3");  // the highest generation
  EXPECT_EQ(sessions[7].generation(), 4u);
  EXPECT_THAT(sessions[7].note(), HasSubstr("adopted by smm-1"));
  EXPECT_THAT(ServedBy(7), ::testing::ElementsAre("edge-3"));
  EXPECT_EQ(sessions[8].server_id(), "edge-2");
  EXPECT_THAT(ServedBy(8), ::testing::ElementsAre("edge-2"));
  EXPECT_FALSE(sessions.contains(9));  // no edge serves it: dropped
  EXPECT_FALSE(Journal().sessions.contains(9));
  const std::string metrics = b.Metrics();
  EXPECT_THAT(metrics, HasSubstr("smig_reconcile_actions_total{action=\"adopted\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("smig_reconcile_actions_total{action=\"released\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("smig_reconcile_actions_total{action=\"dropped\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("smig_reconcile_duration_seconds_count 1"));
}

// A copy appears on a second edge behind the leader's back (no migration explains it): the
// leader's audit finds it and releases it; one it cannot release is counted in
// smig_sessions_on_several_edges until it can. Without the audit, nothing would look.
TEST_F(MigratorReplicasTest, TheAuditFindsASessionOnTwoEdgesAndSettlesIt) {
  Replica& a = Start("smm-0", 10000, absl::Seconds(2));
  Lead(a);
  Create(a, 1);
  cluster_.agent("edge-2").Place(1, 0);  // a stray, older copy
  ASSERT_TRUE(DriveUntil([&] { return ServedBy(1) == std::vector<std::string>{"edge-1"}; }))
      << "the audit did not release the stray copy";
  EXPECT_THAT(a.Metrics(), HasSubstr("smig_sessions_on_several_edges 0"));

  cluster_.agent("edge-2").set_release_error(absl::UnavailableError("edge-2 is restarting"));
  cluster_.agent("edge-2").Place(1, 0);
  ASSERT_TRUE(DriveUntil([&] {
    return absl::StrContains(a.Metrics(), "smig_sessions_on_several_edges 1");
  })) << a.Metrics();
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1", "edge-2"));
  for (const v1::Session& s : Sessions(a)) EXPECT_EQ(s.server_id(), "edge-1");

  cluster_.agent("edge-2").set_release_error(absl::OkStatus());
  ASSERT_TRUE(DriveUntil([&] {
    return ServedBy(1) == std::vector<std::string>{"edge-1"} &&
           absl::StrContains(a.Metrics(), "smig_sessions_on_several_edges 0");
  })) << a.Metrics();

  // A standby reports none: only the leader's passes look.
  cluster_.agent("edge-2").set_release_error(absl::UnavailableError("edge-2 is restarting"));
  cluster_.agent("edge-2").Place(1, 0);
  ASSERT_TRUE(DriveUntil([&] {
    return absl::StrContains(a.Metrics(), "smig_sessions_on_several_edges 1");
  }));
  a.election->Depose();
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(a.Metrics(), "smig_sessions_on_several_edges 0");
  }));
}

// The source does not answer when the new leader takes over: nothing is released, the
// migration ends (before CUT_OVER: rolled back), and the edges are settled once it answers.
TEST_F(MigratorReplicasTest, AnEdgeThatDoesNotAnswerLosesNothingAndIsSettledLater) {
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);
  Create(a, 2);
  cluster_.agent("edge-2").set_never_confirm(true);
  absl::StatusOr<v1::Migration> m1 = a.engine->Migrate(To(1, "edge-2"));
  absl::StatusOr<v1::Migration> m2 = a.engine->Migrate(To(2, "edge-2"));
  ASSERT_TRUE(m1.ok() && m2.ok());
  ASSERT_TRUE(Eventually([&] {
    return Get(a, m1->id()).phase() == v1::PHASE_OVERLAPPING &&
           Get(a, m2->id()).phase() == v1::PHASE_OVERLAPPING;
  }));
  a.election->Depose();
  cluster_.agent("edge-1").Kill();

  Replica& b = Start("smm-1");
  Lead(b);
  for (const auto& m : {m1, m2}) {
    v1::Migration end = Get(b, m->id());
    EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
    EXPECT_THAT(end.rollback_reason(), HasSubstr("edge-1"));
    EXPECT_THAT(end.rollback_reason(), HasSubstr("did not answer"));
  }
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(1));  // not released: edge-1 is unconfirmed
  EXPECT_TRUE(cluster_.agent("edge-2").Serves(2));
  for (const v1::Session& s : Sessions(b)) EXPECT_EQ(s.server_id(), "edge-1");

  // edge-1 answers again, having kept session 1 but lost session 2 (as a restart would).
  cluster_.agent("edge-1").Revive();
  ASSERT_TRUE(cluster_.agent("edge-1").ReleaseSession(2, kUnfenced).ok());
  ASSERT_TRUE(DriveUntil([&] {
    std::vector<v1::Session> s = Sessions(b);
    return !cluster_.agent("edge-2").Serves(1) && s.size() == 2 && s[1].server_id() == "edge-2";
  })) << "the later pass did not settle the edges";
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1"));  // the journal's edge kept it
  EXPECT_THAT(ServedBy(2), ::testing::ElementsAre("edge-2"));  // the only copy left
  std::vector<v1::Session> sessions = Sessions(b);
  EXPECT_EQ(sessions[0].server_id(), "edge-1");
  EXPECT_EQ(sessions[1].server_id(), "edge-2");
  EXPECT_THAT(b.Metrics(), HasSubstr("smig_reconcile_actions_total{action=\"moved\"} 1"));
}

// The store stops answering mid-migration: the journal write retries (on the clock), then
// the migration stops acting; once the store answers, the leader's next pass ends it.
TEST_F(MigratorReplicasTest, AStoreThatDoesNotAnswerStopsTheMigrationAndReconciliationEndsIt) {
  Replica& a = Start("smm-0");
  Lead(a);
  Create(a, 1);
  const uint64_t token_a = a.token();
  cluster_.agent("edge-2").set_hook([&](const std::string& method, uint64_t, uint64_t token) {
    if (method == "ImportState" && token == token_a) hold_.Block();
  });
  absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, "edge-2"));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(hold_.AwaitReached());
  store_.SetUnavailable(true);
  hold_.Open();  // the import lands; recording OVERLAPPING cannot
  ASSERT_TRUE(DriveUntil([&] {
    return absl::StrContains(a.Metrics(), "smig_migrations_active 0");
  })) << "the migration did not stop";
  EXPECT_EQ(Get(a, m->id()).phase(), v1::PHASE_TRANSFERRING);
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1", "edge-2"));
  EXPECT_EQ(a.engine->CancelMigration(m->id(), "").status().code(),
            absl::StatusCode::kFailedPrecondition);

  store_.SetUnavailable(false);
  ASSERT_TRUE(DriveUntil([&] { return Ended(Get(a, m->id())); }));
  v1::Migration end = Get(a, m->id());
  EXPECT_EQ(end.phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_THAT(end.rollback_reason(), HasSubstr("reconciled by smm-0"));
  EXPECT_THAT(ServedBy(1), ::testing::ElementsAre("edge-1"));
  EXPECT_EQ(Journal().migrations.at(m->id()).migration.phase(), v1::PHASE_ROLLED_BACK);
}

TEST_F(MigratorReplicasTest, FinishedMigrationsAreBoundedInTheStore) {
  Replica& a = Start("smm-0", /*max_finished=*/2);
  Lead(a);
  Create(a, 1);
  int n = 0;
  for (const char* to : {"edge-2", "edge-1", "edge-2"}) {
    absl::StatusOr<v1::Migration> m = a.engine->Migrate(To(1, to, absl::StrCat("req-", ++n)));
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(AwaitEnd(a, m->id()).phase(), v1::PHASE_DONE);
  }
  EXPECT_EQ(a.engine->ListMigrations(0)->size(), 2u);
  MigrationJournal::Snapshot journal = Journal();
  EXPECT_EQ(journal.migrations.size(), 2u);
  EXPECT_FALSE(journal.migrations.contains("mig-1"));
  EXPECT_EQ(journal.next_id, 4u);
  absl::StatusOr<std::vector<store::Entry>> keys = store_.List("migrator/");
  ASSERT_TRUE(keys.ok());
  std::vector<std::string> names;
  for (const store::Entry& e : *keys) names.push_back(e.key);
  EXPECT_THAT(names, ::testing::ElementsAre("migrator/migrations/mig-2", "migrator/migrations/mig-3",
                                            "migrator/next_id",
                                            "migrator/sessions/00000000000000000001"));
}

}  // namespace
}  // namespace smig::migrator
