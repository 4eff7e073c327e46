#include "services/decision/decision_engine.h"

#include <prometheus/registry.h>

#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::decision {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;

struct Server {
  std::string id;
  double srtt_ms = 10;
  bool reachable = true;
  double bandwidth_bps = 0;
  uint32_t sessions = 0;
  uint32_t capacity = 0;
};

proximity::v1::VehicleProximity Proximity(const std::vector<Server>& servers) {
  proximity::v1::VehicleProximity p;
  p.set_vehicle_id("car-1");
  for (const Server& s : servers) {
    proximity::v1::ServerProximity* sp = p.add_servers();
    sp->set_server_id(s.id);
    sp->set_reachable(s.reachable);
    sp->set_srtt_ms(s.srtt_ms);
    sp->set_bandwidth_bps(s.bandwidth_bps);
    sp->set_sessions(s.sessions);
    sp->set_capacity(s.capacity);
  }
  return p;
}

// A fake clock: tests move time by hand.
struct Clock {
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  void Advance(absl::Duration d) { now += d; }
};

const v1::Candidate& CandidateOf(const v1::DecisionRecord& r, const std::string& id) {
  for (const v1::Candidate& c : r.candidates()) {
    if (c.server_id() == id) return c;
  }
  static v1::Candidate none;
  ADD_FAILURE() << "no candidate " << id;
  return none;
}

double Counter(prometheus::Registry& registry, const std::string& outcome) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != "smig_decisions_total") continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "outcome" && l.value == outcome) return m.counter.value;
      }
    }
  }
  return -1;
}

TEST(DecisionEngineTest, RttsAlternatingInsideTheMarginNeverMigrate) {
  prometheus::Registry registry;
  DecisionEngine engine(&registry);
  Clock clock;
  int migrates = 0;
  for (int i = 0; i < 200; ++i) {
    // 10 ms vs 9 ms, then swapped: at most 10 % apart, under the 20 % margin.
    bool flip = i % 2 == 0;
    auto p = Proximity({{"edge-1", flip ? 10.0 : 9.0}, {"edge-2", flip ? 9.0 : 10.0}});
    v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
    EXPECT_EQ(d.outcome(), v1::OUTCOME_STAY) << i;
    if (d.outcome() == v1::OUTCOME_MIGRATE) ++migrates;
    if (flip) {
      EXPECT_THAT(d.reasons(), Contains(HasSubstr("inside the 20 % margin")));
    }
    clock.Advance(absl::Milliseconds(500));  // 100 s in all: many dwell times
  }
  EXPECT_EQ(migrates, 0);
  EXPECT_EQ(Counter(registry, "hysteresis"), 100);
  EXPECT_EQ(Counter(registry, "stay"), 100);
  EXPECT_EQ(Counter(registry, "migrate"), 0);
  EXPECT_EQ(Counter(registry, "capacity"), 0);  // every contract label exists from the start
}

TEST(DecisionEngineTest, ClearlyNearerServerWinsOnlyAfterTheDwell) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(d.target_server_id(), "edge-2");
  EXPECT_THAT(d.reasons(), Contains("edge-2 costs 1.00 vs edge-1 2.00: 50 % better, over the "
                                    "20 % margin"));
  EXPECT_THAT(d.reasons(), Contains("waiting for dwell: 0.0 s of 3 s"));
  EXPECT_DOUBLE_EQ(CandidateOf(d, "edge-1").cost(), 2.0);
  EXPECT_TRUE(CandidateOf(d, "edge-2").eligible());

  clock.Advance(absl::Milliseconds(1200));
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_THAT(d.reasons(), Contains("waiting for dwell: 1.2 s of 3 s"));

  clock.Advance(absl::Milliseconds(1799));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);

  clock.Advance(absl::Milliseconds(1));  // exactly the dwell
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(d.target_server_id(), "edge-2");
  EXPECT_THAT(d.reasons(), Contains("edge-2 has been the best for 3.0 s (dwell 3 s)"));

  // The migration resets the dwell: until the SMM has moved the session, a new one starts.
  clock.Advance(absl::Milliseconds(100));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);
  // Once it has moved, the old server is the far one: stay.
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-2", p, clock.now).outcome(), v1::OUTCOME_STAY);
}

TEST(DecisionEngineTest, DwellIsPerSession) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  engine.Decide(1, "car-1", "edge-1", p, clock.now);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(engine.Decide(2, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_MIGRATE);
}

TEST(DecisionEngineTest, AChangingWinnerRestartsTheDwell) {
  DecisionEngine engine;
  Clock clock;
  engine.Decide(1, "car-1", "edge-1", Proximity({{"edge-1", 30}, {"edge-2", 10}, {"edge-3", 12}}),
                clock.now);
  clock.Advance(absl::Seconds(2));
  // edge-3 overtakes edge-2: its own dwell starts now.
  auto p = Proximity({{"edge-1", 30}, {"edge-2", 10}, {"edge-3", 9}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(d.target_server_id(), "edge-3");
  EXPECT_THAT(d.reasons(), Contains("waiting for dwell: 0.0 s of 3 s"));
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);
  clock.Advance(absl::Seconds(1));
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(d.target_server_id(), "edge-3");
}

TEST(DecisionEngineTest, AWinnerFallingInsideTheMarginRestartsTheDwell) {
  DecisionEngine engine;
  Clock clock;
  auto far = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  auto close = Proximity({{"edge-1", 11}, {"edge-2", 10}});
  engine.Decide(1, "car-1", "edge-1", far, clock.now);
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", close, clock.now).outcome(), v1::OUTCOME_STAY);
  clock.Advance(absl::Seconds(1));
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", far, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_THAT(d.reasons(), Contains("waiting for dwell: 0.0 s of 3 s"));
}

TEST(DecisionEngineTest, AFullServerIsNeverChosenEvenIfNearest) {
  prometheus::Registry registry;
  DecisionEngine engine(&registry);
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {.id = "edge-2", .srtt_ms = 5, .sessions = 9, .capacity = 10}});
  for (int i = 0; i < 20; ++i) {
    v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
    ASSERT_EQ(d.outcome(), v1::OUTCOME_STAY);
    const v1::Candidate& full = CandidateOf(d, "edge-2");
    EXPECT_FALSE(full.eligible());
    EXPECT_EQ(full.note(), "full: 9 of 10 sessions (max_load 0.9)");
    EXPECT_DOUBLE_EQ(full.load(), 0.9);
    EXPECT_THAT(d.reasons(), Contains(HasSubstr("edge-2 would cost 1.45 but is full")));
    clock.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(Counter(registry, "capacity"), 20);

  // With a third server that has room, that one wins, not the full nearest one.
  auto q = Proximity({{"edge-1", 20},
                      {.id = "edge-2", .srtt_ms = 5, .sessions = 10, .capacity = 10},
                      {.id = "edge-3", .srtt_ms = 8, .sessions = 1, .capacity = 10}});
  engine.Decide(1, "car-1", "edge-1", q, clock.now);
  clock.Advance(absl::Seconds(3));
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", q, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(d.target_server_id(), "edge-3");
}

TEST(DecisionEngineTest, MigrationsInFlightAndTheSmmsCountFillAServerTheReportCallsEmpty) {
  DecisionEngine engine;
  Clock clock;
  // The PMM last heard edge-2 with 1 session of 4; the SMM lists 2 there and 1 on its way.
  auto p = Proximity({{"edge-1", 20}, {.id = "edge-2", .srtt_ms = 5, .sessions = 1, .capacity = 4}});
  Occupancy occupancy{.servers = {{"edge-2", {.serving = 2, .arriving = 1}}}};
  v1::Policy policy = DefaultPolicy();
  policy.set_max_load(0.75);  // 3 of 4
  ASSERT_TRUE(engine.UpdatePolicy(policy).ok());
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.occupancy = &occupancy});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_STAY);
  const v1::Candidate& c = CandidateOf(d, "edge-2");
  EXPECT_FALSE(c.eligible());
  EXPECT_EQ(c.arriving(), 1u);
  EXPECT_DOUBLE_EQ(c.load(), 0.75);
  EXPECT_EQ(c.note(), "full: 2 of 4 sessions and 1 arriving (max_load 0.75)");
  EXPECT_THAT(d.reasons(), Contains(HasSubstr("edge-2 would cost")));

  // Without the SMM's view, the report alone leaves room.
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_TRUE(CandidateOf(d, "edge-2").eligible());

  // A fractional limit is never passed: 2.7 of 3 allows 2 sessions, not a third.
  policy.set_max_load(0.9);
  ASSERT_TRUE(engine.UpdatePolicy(policy).ok());
  auto q = Proximity({{"edge-1", 20}, {.id = "edge-2", .srtt_ms = 5, .sessions = 2, .capacity = 3}});
  EXPECT_FALSE(CandidateOf(engine.Decide(2, "car-1", "edge-1", q, clock.now), "edge-2").eligible());
}

TEST(DecisionEngineTest, AMoveAwayFromAFullNearestServerSaysSo) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-0", 40},
                      {.id = "edge-1", .srtt_ms = 5, .sessions = 3, .capacity = 3},
                      {.id = "edge-2", .srtt_ms = 10, .sessions = 0, .capacity = 10}});
  v1::Policy policy = DefaultPolicy();
  policy.set_max_load(1);
  ASSERT_TRUE(engine.UpdatePolicy(policy).ok());
  engine.Decide(1, "car-1", "edge-0", p, clock.now);
  clock.Advance(absl::Seconds(3));
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-0", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(d.target_server_id(), "edge-2");
  EXPECT_THAT(d.reasons(), Contains(HasSubstr("edge-1 would cost 1.50 but is full: 3 of 3 sessions")));
}

TEST(DecisionEngineTest, ATargetWithItsMaximumOfMigrationsInFlightWaitsKeepingTheDwell) {
  prometheus::Registry registry;
  DecisionEngine engine(&registry);
  Clock clock;
  v1::Policy policy = DefaultPolicy();
  policy.set_max_migrations_per_server(2);
  ASSERT_TRUE(engine.UpdatePolicy(policy).ok());
  auto p = Proximity({{"edge-1", 20}, {.id = "edge-2", .srtt_ms = 5, .capacity = 100}});
  Occupancy busy{.servers = {{"edge-2", {.arriving = 2}}}};
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.occupancy = &busy});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);  // the dwell starts as usual
  EXPECT_EQ(CandidateOf(d, "edge-2").note(), "busy: 2 migrations in flight (at most 2)");
  clock.Advance(absl::Seconds(5));
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.occupancy = &busy});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(d.target_server_id(), "edge-2");
  EXPECT_THAT(d.reasons(), Contains(HasSubstr("rate limited: edge-2 has 2 migrations in flight "
                                              "(at most 2 per server)")));
  EXPECT_EQ(Counter(registry, "rate_limited"), 1);
  // One ends: the session moves at once, its dwell long done.
  clock.Advance(absl::Milliseconds(100));
  Occupancy freed{.servers = {{"edge-2", {.arriving = 1}}}};
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.occupancy = &freed});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
}

TEST(DecisionEngineTest, UnreachableAndUnmeasuredCandidatesAreIgnored) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20},
                      {.id = "edge-2", .srtt_ms = 1, .reachable = false},
                      {.id = "edge-3", .srtt_ms = 0}});
  for (int i = 0; i < 10; ++i) {
    v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
    ASSERT_EQ(d.outcome(), v1::OUTCOME_STAY);
    EXPECT_EQ(CandidateOf(d, "edge-2").note(), "unreachable");
    EXPECT_FALSE(CandidateOf(d, "edge-2").eligible());
    EXPECT_EQ(CandidateOf(d, "edge-3").note(), "not measured: no RTT yet");
    EXPECT_TRUE(CandidateOf(d, "edge-1").eligible());
    clock.Advance(absl::Seconds(1));
  }
}

TEST(DecisionEngineTest, CostWeighsBandwidthOnlyWhenEveryServerHasAnEstimate) {
  DecisionEngine engine;
  auto p = Proximity({{.id = "edge-1", .srtt_ms = 10, .bandwidth_bps = 10e6},
                      {.id = "edge-2", .srtt_ms = 20, .bandwidth_bps = 5e6, .sessions = 5,
                       .capacity = 10}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, absl::Now());
  EXPECT_DOUBLE_EQ(CandidateOf(d, "edge-1").cost(), 1.0 + 0.2);
  EXPECT_DOUBLE_EQ(CandidateOf(d, "edge-2").cost(), 2.0 + 0.2 * 2 + 0.5 * 0.5);
  auto q = Proximity({{.id = "edge-1", .srtt_ms = 10, .bandwidth_bps = 10e6},
                      {.id = "edge-2", .srtt_ms = 20}});
  d = engine.Decide(1, "car-1", "edge-1", q, absl::Now());
  EXPECT_DOUBLE_EQ(CandidateOf(d, "edge-1").cost(), 1.0);
  EXPECT_DOUBLE_EQ(CandidateOf(d, "edge-2").cost(), 2.0);
}

TEST(DecisionEngineTest, CurrentUnreachableAndNothingElseEligibleIsNoCandidate) {
  prometheus::Registry registry;
  DecisionEngine engine(&registry);
  auto p = Proximity({{.id = "edge-1", .srtt_ms = 10, .reachable = false},
                      {.id = "edge-2", .srtt_ms = 5, .sessions = 10, .capacity = 10},
                      {.id = "edge-3", .reachable = false}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, absl::Now());
  EXPECT_EQ(d.outcome(), v1::OUTCOME_NO_CANDIDATE);
  EXPECT_THAT(d.reasons(), Contains(AllOf(HasSubstr("edge-1 (current) is unreachable"),
                                          HasSubstr("no other server is reachable with room"))));
  EXPECT_EQ(Counter(registry, "no_candidate"), 1);

  // A current server that is full, with nowhere else to go, is the same.
  auto q = Proximity({{.id = "edge-1", .srtt_ms = 10, .sessions = 10, .capacity = 10}});
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", q, absl::Now()).outcome(),
            v1::OUTCOME_NO_CANDIDATE);
  // A current server missing from the PMM's view too.
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-9", q, absl::Now()).outcome(),
            v1::OUTCOME_NO_CANDIDATE);
}

TEST(DecisionEngineTest, CurrentUnreachableMovesToTheBestAfterTheDwell) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{.id = "edge-1", .srtt_ms = 10, .reachable = false}, {"edge-2", 30}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now);
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_THAT(d.reasons(), Contains(HasSubstr("edge-1 (current) is unreachable; edge-2 is the "
                                              "best eligible server")));
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_MIGRATE);
}

TEST(DecisionEngineTest, PolicyDefaultsAndValidationNameTheField) {
  DecisionEngine engine;
  v1::Policy p = engine.policy();
  EXPECT_EQ(p.latency_weight(), 1);
  EXPECT_EQ(p.bandwidth_weight(), 0.2);
  EXPECT_EQ(p.load_weight(), 0.5);
  EXPECT_EQ(p.margin(), 0.2);
  EXPECT_EQ(p.dwell().seconds(), 3);
  EXPECT_EQ(p.max_load(), 0.9);
  EXPECT_EQ(p.mode(), v1::MODE_MANUAL);
  EXPECT_EQ(p.max_migrations_per_server(), 4u);

  struct Bad {
    std::function<void(v1::Policy&)> edit;
    std::string message;
  };
  std::vector<Bad> bad = {
      {[](v1::Policy& q) { q.set_latency_weight(-1); }, "latency_weight must be >= 0, got -1"},
      {[](v1::Policy& q) { q.set_bandwidth_weight(-0.5); }, "bandwidth_weight must be >= 0, got -0.5"},
      {[](v1::Policy& q) { q.set_load_weight(std::nan("")); }, "load_weight must be >= 0, got nan"},
      {[](v1::Policy& q) {
         q.set_latency_weight(0);
         q.set_bandwidth_weight(0);
         q.set_load_weight(0);
       },
       "latency_weight, bandwidth_weight and load_weight are all 0"},
      {[](v1::Policy& q) { q.set_margin(1); }, "margin must be in [0, 1), got 1"},
      {[](v1::Policy& q) { q.set_margin(-0.1); }, "margin must be in [0, 1), got -0.1"},
      {[](v1::Policy& q) { q.mutable_dwell()->set_seconds(-1); }, "dwell must be >= 0, got -1s"},
      {[](v1::Policy& q) { q.set_max_load(0); }, "max_load must be in (0, 1], got 0"},
      {[](v1::Policy& q) { q.set_max_load(1.5); }, "max_load must be in (0, 1], got 1.5"},
      {[](v1::Policy& q) { q.set_mode(static_cast<v1::Mode>(7)); }, "mode must be"},
  };
  for (const Bad& b : bad) {
    v1::Policy q = DefaultPolicy();
    b.edit(q);
    absl::StatusOr<v1::Policy> r = engine.UpdatePolicy(q);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << b.message;
    EXPECT_THAT(r.status().message(), HasSubstr(b.message));
  }
  EXPECT_EQ(engine.policy().margin(), 0.2);  // nothing bad was applied

  v1::Policy good;
  good.set_latency_weight(1);
  good.set_max_load(1);
  absl::StatusOr<v1::Policy> r = engine.UpdatePolicy(good);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dwell().seconds(), 3);  // unset dwell: the default
  EXPECT_EQ(r->mode(), v1::MODE_MANUAL);
  EXPECT_EQ(r->margin(), 0);  // numbers are taken as given
  EXPECT_EQ(r->max_migrations_per_server(), 4u);  // 0: the default
}

TEST(DecisionEngineTest, HistoryIsNewestFirstFilteredAndBounded) {
  DecisionEngine engine(nullptr, 5);
  auto p = Proximity({{"edge-1", 10}});
  for (uint64_t i = 1; i <= 7; ++i) engine.Decide(i % 2 + 1, "car-1", "edge-1", p, absl::Now());
  std::vector<v1::DecisionRecord> all = engine.ListDecisions(0, 0);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.front().session_id(), 2u);  // i = 7
  EXPECT_EQ(engine.ListDecisions(1, 0).size(), 2u);
  EXPECT_EQ(engine.ListDecisions(0, 2).size(), 2u);
  EXPECT_NE(all[0].id(), all[1].id());

  ASSERT_TRUE(engine.SetMigrationId(all[1].id(), "m-9").ok());
  EXPECT_EQ(engine.ListDecisions(0, 0)[1].migration_id(), "m-9");
  EXPECT_EQ(engine.SetMigrationId("nope", "m-1").code(), absl::StatusCode::kNotFound);
}

TEST(DecisionEngineTest, OnlyChangesAreRecordedWhenAsked) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  for (int i = 0; i < 4; ++i) {  // DWELL, DWELL, DWELL, MIGRATE
    engine.Decide(1, "car-1", "edge-1", p, clock.now, {.record_only_changes = true});
    clock.Advance(absl::Seconds(1));
  }
  std::vector<v1::DecisionRecord> kept = engine.ListDecisions(1, 0);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(kept[1].outcome(), v1::OUTCOME_DWELL);
}

TEST(DecisionEngineTest, PeekNeitherStartsNorConsumesTheDwell) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  engine.Decide(1, "car-1", "edge-1", p, clock.now);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now, {.peek = true}).outcome(),
            v1::OUTCOME_MIGRATE);
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_MIGRATE);
  // A session nobody has decided for yet: a peek says the dwell would start now.
  EXPECT_EQ(engine.Decide(2, "car-1", "edge-1", p, clock.now, {.peek = true}).outcome(),
            v1::OUTCOME_DWELL);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(engine.Decide(2, "car-1", "edge-1", p, clock.now, {.peek = true}).outcome(),
            v1::OUTCOME_DWELL);
}

TEST(DecisionEngineTest, ObserveRunsTheDwellLikeTheLeaderButKeepsNothing) {
  prometheus::Registry registry;
  DecisionEngine engine(&registry);
  Clock clock;
  const absl::Time start = clock.now;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  v1::DecisionRecord d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.observe = true});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(FromProto(d.dwell_started_at()), start);
  clock.Advance(absl::Seconds(3));
  // The dwell ran out: a MIGRATE that nobody acts on leaves the dwell, and its start, as
  // they were, so that the replica acts at once when it leads (with the same start).
  for (int i = 0; i < 2; ++i) {
    d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.observe = true});
    EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
    EXPECT_EQ(FromProto(d.dwell_started_at()), start);
  }
  EXPECT_TRUE(engine.ListDecisions(0, 0).empty());
  EXPECT_EQ(Counter(registry, "migrate"), 0);
  EXPECT_EQ(Counter(registry, "dwell"), 0);

  // Acting now: the same decision, kept and counted, and the dwell is consumed.
  d = engine.Decide(1, "car-1", "edge-1", p, clock.now, {.record_only_changes = true});
  EXPECT_EQ(d.outcome(), v1::OUTCOME_MIGRATE);
  EXPECT_EQ(FromProto(d.dwell_started_at()), start);
  EXPECT_EQ(engine.ListDecisions(0, 0).size(), 1u);
  EXPECT_EQ(Counter(registry, "migrate"), 1);
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);
}

TEST(DecisionEngineTest, RetainSessionsForgetsEndedSessions) {
  DecisionEngine engine;
  Clock clock;
  auto p = Proximity({{"edge-1", 20}, {"edge-2", 10}});
  engine.Decide(1, "car-1", "edge-1", p, clock.now);
  clock.Advance(absl::Seconds(3));
  engine.RetainSessions({});
  EXPECT_EQ(engine.Decide(1, "car-1", "edge-1", p, clock.now).outcome(), v1::OUTCOME_DWELL);
}

}  // namespace
}  // namespace smig::decision
