// MDM replicas over one store (MemoryStore + FakeElection, a SimulatedClock): the policy in
// the store survives a restart, only the leader takes UpdatePolicy and migrates, a standby
// observes, a deposed leader stops at once and the new one acts on the stored policy, and a
// store that is down changes nothing.
#include <algorithm>
#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/decision/auto_migrator.h"
#include "services/decision/decision_service.h"
#include "services/decision/policy_store.h"
#include "tests/fakes/memory_store.h"
#include "tests/services/decision/fake_control_plane.h"

namespace smig::decision {
namespace {

using ::testing::HasSubstr;
using store::testing::FakeElection;
using store::testing::MemoryStore;
using testing::FakeControlPlane;
using testing::ReplicaClients;

constexpr char kElection[] = "leader/decision";

constexpr AutoMigrator::Options kFastLoop = {.tick = absl::Milliseconds(10),
                                              .sessions_ttl = absl::ZeroDuration(),
                                              .min_backoff = absl::Milliseconds(5),
                                              .max_backoff = absl::Milliseconds(20)};

proximity::v1::VehicleProximity Nearer(const std::string& nearer, const std::string& farther) {
  proximity::v1::VehicleProximity p;
  p.set_vehicle_id("car-1");
  for (auto [id, srtt] : {std::pair{nearer, 10.0}, std::pair{farther, 20.0}}) {
    proximity::v1::ServerProximity* s = p.add_servers();
    s->set_server_id(id);
    s->set_reachable(true);
    s->set_srtt_ms(srtt);
  }
  return p;
}

migrator::v1::Session Session(uint64_t id, const std::string& server) {
  migrator::v1::Session s;
  s.set_session_id(id);
  s.set_vehicle_id("car-1");
  s.set_server_id(server);
  return s;
}

using testing::Eventually;

v1::Policy Policy(v1::Mode mode, absl::Duration dwell, double margin = 0.2) {
  v1::Policy p = DefaultPolicy();
  p.set_mode(mode);
  *p.mutable_dwell() = ToProtoDuration(dwell);
  p.set_margin(margin);
  return p;
}

// An MDM replica as main.cc wires it, minus gRPC: its election, engine, policy in the store,
// adapter and loop. The policy store's thread is not started (tests call Sync() when the
// thread would), so that the clock's only sleepers are the loops'.
struct Replica {
  Replica(const std::string& id, MemoryStore& store, FakeControlPlane& smm, Clock& clock,
          const v1::Policy& configured)
      : election(store, kElection, id),
        clients(smm),
        policy(engine, store, election, {.configured = configured, .replica_id = id}, clock),
        service(engine, clients, clock, &policy),
        loop(engine, clients, kFastLoop, clock, [this] { return policy.MayAct(); }) {
    EXPECT_TRUE(engine.UpdatePolicy(configured).ok());
    election.SetListener(policy.Listener());
  }

  // The UpdatePolicy RPC, through the adapter's code mapping.
  grpc::Status UpdatePolicy(const v1::Policy& p, v1::Policy* out = nullptr) {
    v1::UpdatePolicyRequest req;
    *req.mutable_policy() = p;
    v1::Policy resp;
    grpc::Status s = service.UpdatePolicy(nullptr, &req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  v1::Policy GetPolicy() {
    v1::Policy p;
    EXPECT_TRUE(service.GetPolicy(nullptr, nullptr, &p).ok());
    return p;
  }

  FakeElection election;
  DecisionEngine engine;
  ReplicaClients clients;
  PolicyStore policy;
  DecisionService service;
  AutoMigrator loop;
};

v1::Policy Stored(MemoryStore& store) {
  absl::StatusOr<std::optional<store::Entry>> e = store.Get(PolicyStore::kKey);
  EXPECT_TRUE(e.ok()) << e.status();
  v1::Policy p;
  if (!e.ok() || !e->has_value()) {
    ADD_FAILURE() << "no policy in the store";
    return p;
  }
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage((*e)->value, &p).ok()) << (*e)->value;
  return p;
}

TEST(PolicyStoreTest, APolicySetThroughUpdatePolicySurvivesARestart) {
  MemoryStore store;
  FakeControlPlane smm;
  SimulatedClock clock;
  const v1::Policy configured = Policy(v1::MODE_MANUAL, absl::Seconds(3));
  {
    Replica a("mdm-a", store, smm, clock, configured);
    a.policy.Start();
    ASSERT_TRUE(a.election.MakeLeader().ok());
    ASSERT_TRUE(a.policy.Sync().ok());
    // The leader found no policy in the store and wrote the config's.
    EXPECT_EQ(Stored(store).margin(), 0.2);
    v1::Policy in_force;
    grpc::Status s = a.UpdatePolicy(Policy(v1::MODE_AUTOMATIC, absl::Seconds(5), 0.35), &in_force);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(in_force.margin(), 0.35);
    EXPECT_EQ(Stored(store).margin(), 0.35);
    absl::StatusOr<std::optional<store::Entry>> raw = store.Get(PolicyStore::kKey);
    ASSERT_TRUE(raw.ok() && raw->has_value());
    EXPECT_THAT((*raw)->value, HasSubstr(R"("margin":0.35)"));  // JSON, field names as in the proto
    EXPECT_THAT((*raw)->value, HasSubstr(R"("mode":"MODE_AUTOMATIC")"));
    a.election.Depose();  // the process dies; its lease ends
  }
  // The restart: a new engine (with the config's policy) over the same store.
  Replica a("mdm-a", store, smm, clock, configured);
  EXPECT_EQ(a.GetPolicy().margin(), 0.2);
  a.policy.Start();
  v1::Policy p = a.GetPolicy();
  EXPECT_EQ(p.margin(), 0.35);
  EXPECT_EQ(p.mode(), v1::MODE_AUTOMATIC);
  EXPECT_EQ(FromProto(p.dwell()), absl::Seconds(5));
  // Leading again does not put the config's policy back: the store has one.
  ASSERT_TRUE(a.election.MakeLeader().ok());
  ASSERT_TRUE(a.policy.Sync().ok());
  EXPECT_EQ(Stored(store).margin(), 0.35);
  EXPECT_EQ(a.GetPolicy().margin(), 0.35);
}

TEST(PolicyStoreTest, AStandbyRefusesUpdatePolicyNamingTheLeaderAndFollowsIt) {
  MemoryStore store;
  FakeControlPlane smm;
  SimulatedClock clock;
  const v1::Policy configured = Policy(v1::MODE_MANUAL, absl::Seconds(3));
  Replica a("mdm-a", store, smm, clock, configured);
  Replica b("mdm-b", store, smm, clock, configured);
  const v1::Policy wanted = Policy(v1::MODE_AUTOMATIC, absl::Seconds(4), 0.3);

  // Nobody leads: UNAVAILABLE, and nothing is written.
  grpc::Status s = b.UpdatePolicy(wanted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("no MDM replica leads now"));
  ASSERT_TRUE(b.policy.Sync().ok());  // a standby does not write the config's policy either
  EXPECT_FALSE(store.Get(PolicyStore::kKey)->has_value());

  ASSERT_TRUE(a.election.MakeLeader().ok());
  ASSERT_TRUE(a.policy.Sync().ok());
  s = b.UpdatePolicy(wanted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("not the leader: mdm-a leads"));
  EXPECT_EQ(b.GetPolicy().margin(), 0.2);
  EXPECT_EQ(Stored(store).margin(), 0.2);
  // A bad policy is INVALID_ARGUMENT on any replica, before leadership is asked about.
  v1::Policy bad = wanted;
  bad.set_margin(2);
  EXPECT_EQ(b.UpdatePolicy(bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  s = a.UpdatePolicy(wanted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(b.GetPolicy().margin(), 0.2);  // until it reads the store (its thread: every 1 s)
  ASSERT_TRUE(b.policy.Sync().ok());
  EXPECT_EQ(b.GetPolicy().margin(), 0.3);
  EXPECT_EQ(b.GetPolicy().mode(), v1::MODE_AUTOMATIC);
  EXPECT_FALSE(b.policy.MayAct());
  EXPECT_TRUE(a.policy.MayAct());
}

TEST(PolicyStoreTest, TheThreadFollowsTheStoreEveryPollAndOnGainingLeadership) {
  MemoryStore store;
  FakeControlPlane smm;
  SimulatedClock clock;
  const v1::Policy configured = Policy(v1::MODE_MANUAL, absl::Seconds(3));
  Replica a("mdm-a", store, smm, clock, configured);
  Replica b("mdm-b", store, smm, clock, configured);
  a.policy.Start();
  b.policy.Start();
  ASSERT_TRUE(a.election.MakeLeader().ok());  // on_gained wakes a's thread: no clock needed
  ASSERT_TRUE(Eventually([&] { return a.policy.MayAct(); }));
  ASSERT_TRUE(a.UpdatePolicy(Policy(v1::MODE_AUTOMATIC, absl::Seconds(3), 0.4)).ok());
  ASSERT_TRUE(clock.AwaitSleepers(2));  // both threads wait for their next poll
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(Eventually([&] { return b.GetPolicy().margin() == 0.4; }));
}

TEST(PolicyStoreTest, AStoreThatIsDownChangesNothing) {
  MemoryStore store;
  FakeControlPlane smm;
  SimulatedClock clock;
  Replica a("mdm-a", store, smm, clock, Policy(v1::MODE_MANUAL, absl::Seconds(3)));
  ASSERT_TRUE(a.election.MakeLeader().ok());
  ASSERT_TRUE(a.policy.Sync().ok());

  store.SetUnavailable(true);
  grpc::Status s = a.UpdatePolicy(Policy(v1::MODE_AUTOMATIC, absl::Seconds(3), 0.5));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("the policy was not changed"));
  EXPECT_EQ(a.GetPolicy().margin(), 0.2);
  EXPECT_EQ(a.GetPolicy().mode(), v1::MODE_MANUAL);
  EXPECT_EQ(a.policy.Sync().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.GetPolicy().margin(), 0.2);
  store.SetUnavailable(false);
  EXPECT_EQ(Stored(store).margin(), 0.2);
  EXPECT_EQ(Stored(store).mode(), v1::MODE_MANUAL);
}

TEST(PolicyStoreTest, AnInvalidStoredPolicyIsNotPutInForceAndTheLeaderWaitsForAGoodOne) {
  MemoryStore store;
  FakeControlPlane smm;
  SimulatedClock clock;
  Replica a("mdm-a", store, smm, clock, Policy(v1::MODE_MANUAL, absl::Seconds(3)));
  ASSERT_TRUE(store.Put(PolicyStore::kKey, R"({"latency_weight": 1, "margin": 7, "max_load": 0.9})", {}).ok());  // an edit by hand
  ASSERT_TRUE(a.election.MakeLeader().ok());
  absl::Status s = a.policy.Sync();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("margin must be in [0, 1), got 7"));
  EXPECT_EQ(a.GetPolicy().margin(), 0.2);
  EXPECT_FALSE(a.policy.MayAct());
  ASSERT_TRUE(a.UpdatePolicy(Policy(v1::MODE_MANUAL, absl::Seconds(3), 0.25)).ok());
  EXPECT_TRUE(a.policy.MayAct());
  EXPECT_TRUE(a.policy.Sync().ok());
  EXPECT_EQ(Stored(store).margin(), 0.25);
}

// Two replicas with running loops on one clock; each tick waits until both have decided.
class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smm_.SetSession(Session(7, "edge-1"));
    a_.loop.Start();
    b_.loop.Start();
  }
  void SetProximity(const proximity::v1::VehicleProximity& p) {
    for (Replica* r : {&a_, &b_}) r->clients.pmm().SetProximity(p);
  }
  // Advances the clock one tick once both loops wait for it, then waits until both have
  // listed the sessions again (every pass does, with sessions_ttl 0).
  void Tick() {
    ASSERT_TRUE(clock_.AwaitSleepers(2));
    const int a = a_.clients.lists(), b = b_.clients.lists();
    clock_.Advance(kFastLoop.tick);
    ASSERT_TRUE(Eventually([&] { return a_.clients.lists() > a && b_.clients.lists() > b; }));
  }
  // Ticks until `done`, at most `ticks` times.
  bool TickUntil(const std::function<bool()>& done, int ticks = 100) {
    for (int i = 0; i < ticks && !done(); ++i) Tick();
    return done();
  }
  int Calls(Replica& r) { return static_cast<int>(r.clients.migrate_calls().size()); }
  std::string ServerOf(uint64_t session) {
    absl::StatusOr<std::vector<migrator::v1::Session>> sessions = smm_.ListSessions();
    for (const migrator::v1::Session& s : *sessions) {
      if (s.session_id() == session) return s.server_id();
    }
    return "";
  }

  MemoryStore store_;
  FakeControlPlane smm_;
  SimulatedClock clock_;
  // The config says MANUAL: only the stored policy (AUTOMATIC, set on the leader) migrates.
  const v1::Policy configured_ = Policy(v1::MODE_MANUAL, absl::Milliseconds(50));
  Replica a_{"mdm-a", store_, smm_, clock_, configured_};
  Replica b_{"mdm-b", store_, smm_, clock_, configured_};
};

TEST_F(ReplicasTest, OnlyTheLeaderMigratesAndADeposedOneStopsAtOnceForTheNextWhoUsesTheStore) {
  ASSERT_TRUE(a_.election.MakeLeader().ok());
  ASSERT_TRUE(a_.policy.Sync().ok());
  ASSERT_TRUE(b_.policy.Sync().ok());
  ASSERT_TRUE(a_.UpdatePolicy(Policy(v1::MODE_AUTOMATIC, absl::Milliseconds(50))).ok());

  // edge-2 is nearer: after the dwell the leader moves the session; the standby only watches.
  SetProximity(Nearer("edge-2", "edge-1"));
  ASSERT_TRUE(TickUntil([&] { return Calls(a_) > 0; }));
  for (int i = 0; i < 10; ++i) Tick();
  ASSERT_EQ(Calls(a_), 1);
  EXPECT_EQ(Calls(b_), 0);
  EXPECT_EQ(ServerOf(7), "edge-2");
  EXPECT_TRUE(b_.engine.ListDecisions(0, 0).empty()) << "a standby keeps no decisions";
  EXPECT_EQ(b_.GetPolicy().mode(), v1::MODE_MANUAL) << "b has not read the store since";

  // edge-1 is nearer again, and the leader is deposed before its dwell can end; b leads.
  SetProximity(Nearer("edge-1", "edge-2"));
  const absl::Time flipped = clock_.Now();
  a_.election.Depose();
  ASSERT_TRUE(b_.election.MakeLeader().ok());
  // b must read the store before it acts: until then, however long, nobody migrates (a's
  // loop runs on, but a no longer leads).
  for (int i = 0; i < 20; ++i) Tick();
  EXPECT_FALSE(b_.policy.MayAct());
  EXPECT_EQ(Calls(a_), 1);
  EXPECT_EQ(Calls(b_), 0);

  ASSERT_TRUE(b_.policy.Sync().ok());  // what its thread does at once on gaining leadership
  EXPECT_EQ(b_.GetPolicy().mode(), v1::MODE_AUTOMATIC);
  ASSERT_TRUE(TickUntil([&] { return Calls(b_) > 0; }));
  for (int i = 0; i < 10; ++i) Tick();
  EXPECT_EQ(Calls(a_), 1);
  ASSERT_EQ(Calls(b_), 1);
  EXPECT_EQ(ServerOf(7), "edge-1");
  const testing::MigrateCall call = b_.clients.migrate_calls()[0];
  EXPECT_EQ(call.target, "edge-1");
  // b watched the dwell as a standby, so its request names the dwell's start: the request
  // a would have sent for the same move.
  EXPECT_EQ(call.request_id,
            absl::StrCat("mdm/7/edge-2/edge-1/", absl::ToUnixSeconds(flipped)));
  std::vector<v1::DecisionRecord> d = b_.engine.ListDecisions(7, 0);
  auto migrate = std::find_if(d.begin(), d.end(), [](const v1::DecisionRecord& r) {
    return r.outcome() == v1::OUTCOME_MIGRATE;
  });
  ASSERT_NE(migrate, d.end());
  EXPECT_EQ(migrate->migration_id(), "m-2");
}

TEST(AutoMigratorReplicaTest, NoMigrateIsSentOnceLeadershipEndsDuringThePass) {
  SimulatedClock clock;
  DecisionEngine engine;
  FakeControlPlane clients;
  ASSERT_TRUE(engine.UpdatePolicy(Policy(v1::MODE_AUTOMATIC, absl::ZeroDuration())).ok());
  clients.SetSession(Session(7, "edge-1"));
  clients.SetProximity(Nearer("edge-2", "edge-1"));
  // Leading when the pass begins, no longer when the Migrate would be sent.
  std::atomic<int> asked = 0;
  AutoMigrator loop(engine, clients, kFastLoop, clock, [&] { return asked++ == 0; });
  loop.Start();
  ASSERT_TRUE(Eventually([&] { return !engine.ListDecisions(7, 1).empty(); }));
  loop.Stop();
  EXPECT_GE(asked.load(), 2);
  EXPECT_TRUE(clients.migrate_calls().empty());
  std::vector<v1::DecisionRecord> d = engine.ListDecisions(7, 0);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].outcome(), v1::OUTCOME_MIGRATE);  // decided while leading, never sent
  EXPECT_EQ(d[0].migration_id(), "");
}

}  // namespace
}  // namespace smig::decision
