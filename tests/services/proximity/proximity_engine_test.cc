// The PMM engine on a fake clock: the registry (static, registered with expiry, discovered),
// the four roles per vehicle, report expiry, watches (changes yes, jitter no), bad input.
#include "services/proximity/proximity_engine.h"

#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"

namespace smig::proximity {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Server Srv(const std::string& id, const std::string& agent = "", uint32_t sessions = 0,
               uint32_t capacity = 0) {
  v1::Server s;
  s.set_id(id);
  s.set_agent_address(agent.empty() ? absl::StrCat(id, ":7400") : agent);
  s.add_sctp_addresses("10.0.0.1");
  s.set_sessions(sessions);
  s.set_capacity(capacity);
  return s;
}

struct M {
  std::string server;
  bool reachable;
  double srtt;
};

v1::ProximityReport Rep(const std::string& vehicle, const std::string& serving,
                        const std::vector<M>& ms) {
  v1::ProximityReport r;
  r.set_vehicle_id(vehicle);
  r.set_serving_server_id(serving);
  for (const M& m : ms) {
    v1::Measurement* x = r.add_measurements();
    x->set_server_id(m.server);
    x->set_reachable(m.reachable);
    x->set_srtt_ms(m.srtt);
    x->set_hops(1);
  }
  return r;
}

v1::Role RoleOf(const v1::VehicleProximity& p, const std::string& server) {
  for (const v1::ServerProximity& s : p.servers()) {
    if (s.server_id() == server) return s.role();
  }
  return v1::ROLE_UNSPECIFIED;  // not listed
}

std::vector<std::string> Ids(const std::vector<v1::Server>& servers) {
  std::vector<std::string> ids;
  for (const v1::Server& s : servers) ids.push_back(s.id());
  return ids;
}

double MetricValue(prometheus::Registry& r, const std::string& name) {
  for (const prometheus::MetricFamily& f : r.Collect()) {
    if (f.name != name || f.metric.empty()) continue;
    const prometheus::ClientMetric& m = f.metric[0];
    return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return -1;
}

class EngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<ProximityEngine> Make(std::vector<v1::Server> statics, size_t queue = 256) {
    ProximityEngine::Options o;
    o.static_servers = std::move(statics);
    o.registry = registry_;
    o.watch_queue_limit = queue;
    absl::StatusOr<std::unique_ptr<ProximityEngine>> e =
        ProximityEngine::Create(std::move(o), clock_);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(*e);
  }
  void Advance(absl::Duration d) { clock_.Advance(d); }

  SimulatedClock clock_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
};

TEST_F(EngineTest, RegisteredServerExpiresTtlAfterItsLastHeartbeat) {
  auto e = Make({});
  absl::StatusOr<v1::Server> s = e->Register(Srv("edge-r"), absl::ZeroDuration());  // default 10 s
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->source(), v1::SERVER_SOURCE_REGISTERED);
  EXPECT_EQ(FromProto(s->expires_at()), clock_.Now() + absl::Seconds(10));
  EXPECT_EQ(MetricValue(*registry_, "smig_servers_registered"), 1);

  Advance(absl::Seconds(9));
  ASSERT_TRUE(e->Register(Srv("edge-r", "", /*sessions=*/4), absl::ZeroDuration()).ok());  // heartbeat
  Advance(absl::Seconds(9));  // 18 s after the first, 9 after the heartbeat
  ASSERT_THAT(Ids(e->ListServers()), ElementsAre("edge-r"));
  EXPECT_EQ(e->ListServers()[0].sessions(), 4u);

  Advance(absl::Seconds(1));  // exactly ttl after the heartbeat: gone
  EXPECT_TRUE(e->ListServers().empty());
  e->Sweep();
  EXPECT_EQ(MetricValue(*registry_, "smig_servers_registered"), 0);
}

TEST_F(EngineTest, StaticServerNeverExpiresAndKeepsItsAddress) {
  auto e = Make({Srv("edge-s", "10.0.0.1:7400")});
  Advance(absl::Hours(24));
  e->Sweep();
  ASSERT_THAT(Ids(e->ListServers()), ElementsAre("edge-s"));

  // A heartbeat from it brings its load; it stays static.
  absl::StatusOr<v1::Server> s = e->Register(Srv("edge-s", "10.0.0.1:7400", 3, 8), absl::Seconds(1));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->source(), v1::SERVER_SOURCE_STATIC);
  EXPECT_EQ(s->sessions(), 3u);
  EXPECT_FALSE(s->has_expires_at());
  Advance(absl::Seconds(5));
  EXPECT_THAT(Ids(e->ListServers()), ElementsAre("edge-s"));

  s = e->Register(Srv("edge-s", "10.9.9.9:7400"), absl::Seconds(1));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("edge-s"));
  EXPECT_THAT(s.status().message(), HasSubstr("10.9.9.9:7400"));
  EXPECT_EQ(e->ListServers()[0].agent_address(), "10.0.0.1:7400");
}

TEST_F(EngineTest, BadInputIsRejectedNamingTheValue) {
  auto e = Make({Srv("edge-a")});
  absl::StatusOr<v1::Server> s = e->Register(Srv(""), absl::ZeroDuration());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("server.id"));
  v1::Server no_agent = Srv("edge-x");
  no_agent.clear_agent_address();
  s = e->Register(no_agent, absl::ZeroDuration());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("edge-x: agent_address"));
  s = e->Register(Srv("edge-y"), absl::Seconds(-1));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);

  absl::Status r = e->Report(Rep("", "edge-a", {{"edge-a", true, 5}}));
  EXPECT_EQ(r.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.message(), HasSubstr("vehicle_id"));
  r = e->Report(Rep("car-1", "edge-a", {{"edge-a", true, -3}}));
  EXPECT_EQ(r.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.message(), HasSubstr("edge-a"));
  r = e->Report(Rep("car-1", "edge-a", {{"edge-zz", true, 5}}));
  EXPECT_EQ(r.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.message(), HasSubstr("edge-zz"));

  absl::StatusOr<v1::VehicleProximity> p = e->Get("car-9");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(p.status().message(), HasSubstr("car-9"));
  // Rejected reports were received (counted) but changed nothing.
  EXPECT_EQ(MetricValue(*registry_, "smig_proximity_reports_total"), 3);
  EXPECT_EQ(e->Get("car-1").status().code(), absl::StatusCode::kNotFound);

  ProximityEngine::Options o;
  o.static_servers = {Srv("edge-d"), Srv("edge-d")};
  absl::StatusOr<std::unique_ptr<ProximityEngine>> dup = ProximityEngine::Create(o);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("edge-d"));
}

TEST_F(EngineTest, RolesTargetNewTargetTestedIdle) {
  auto e = Make({Srv("a", "", 2, 10), Srv("b"), Srv("c"), Srv("d")});
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 30}, {"b", true, 20}, {"c", true, 10}})).ok());
  absl::StatusOr<v1::VehicleProximity> p = e->Get("car");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->target_server_id(), "a");
  ASSERT_EQ(p->servers_size(), 4);  // every registered server, by id
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_TARGET);
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_TESTED);
  EXPECT_EQ(RoleOf(*p, "c"), v1::ROLE_NEW_TARGET);  // the nearest, nearer than the target
  EXPECT_EQ(RoleOf(*p, "d"), v1::ROLE_IDLE);
  EXPECT_EQ(p->servers(0).sessions(), 2u);
  EXPECT_EQ(p->servers(0).capacity(), 10u);
  EXPECT_EQ(p->servers(2).srtt_ms(), 10);

  // The target is the nearest: nobody is a new target.
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 5}, {"b", true, 20}, {"c", true, 10}})).ok());
  p = e->Get("car");
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_TARGET);
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_TESTED);
  EXPECT_EQ(RoleOf(*p, "c"), v1::ROLE_TESTED);
  // A tie is not "nearer".
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 10}, {"c", true, 10}})).ok());
  EXPECT_EQ(RoleOf(*e->Get("car"), "c"), v1::ROLE_TESTED);
}

TEST_F(EngineTest, UnreachableOrUnmeasuredTargetLetsTheNearestReachableServerTakeOver) {
  auto e = Make({Srv("a"), Srv("b"), Srv("c")});
  // c has the lowest srtt on paper but is unreachable; a (the target) is unreachable.
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", false, 0}, {"b", true, 40}, {"c", false, 1}})).ok());
  absl::StatusOr<v1::VehicleProximity> p = e->Get("car");
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_TARGET);
  EXPECT_FALSE(p->servers(0).reachable());
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_NEW_TARGET);
  EXPECT_EQ(RoleOf(*p, "c"), v1::ROLE_TESTED);

  // The target not measured at all (and b farther than it would have been): b still wins.
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"b", true, 400}, {"c", true, 500}})).ok());
  p = e->Get("car");
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_TARGET);
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_NEW_TARGET);
  EXPECT_EQ(RoleOf(*p, "c"), v1::ROLE_TESTED);
}

TEST_F(EngineTest, MeasurementsOfUnknownServersCountOnceTheServerExists) {
  auto e = Make({Srv("a")});
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 30}, {"late", true, 5}})).ok());
  absl::StatusOr<v1::VehicleProximity> p = e->Get("car");
  ASSERT_EQ(p->servers_size(), 1);
  EXPECT_EQ(RoleOf(*p, "late"), v1::ROLE_UNSPECIFIED);
  ASSERT_TRUE(e->Register(Srv("late"), absl::Seconds(10)).ok());
  EXPECT_EQ(RoleOf(*e->Get("car"), "late"), v1::ROLE_NEW_TARGET);
}

TEST_F(EngineTest, StaleReportMakesEveryServerIdle) {
  auto e = Make({Srv("a"), Srv("b")});
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 30}, {"b", true, 10}})).ok());
  Advance(absl::Seconds(5));  // report_ttl: still fresh
  EXPECT_EQ(RoleOf(*e->Get("car"), "b"), v1::ROLE_NEW_TARGET);
  Advance(absl::Milliseconds(1));
  absl::StatusOr<v1::VehicleProximity> p = e->Get("car");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->target_server_id(), "");
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_IDLE);
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_IDLE);
  EXPECT_FALSE(p->servers(1).reachable());

  Advance(absl::Minutes(5));  // silent for long: forgotten
  e->Sweep();
  EXPECT_EQ(e->Get("car").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, WatchGetsChangesButNotJitter) {
  auto e = Make({Srv("a"), Srv("b")});
  std::shared_ptr<ProximityWatch> w = e->Watch("car");
  std::shared_ptr<ProximityWatch> other = e->Watch("car-2");
  std::shared_ptr<ProximityWatch> all = e->Watch("");
  EXPECT_FALSE(w->Pop(absl::ZeroDuration()).has_value());  // nothing known yet

  auto report = [&](double a, double b, bool b_reachable = true) {
    ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, a}, {"b", b_reachable, b}})).ok());
  };
  auto changed = [&] { return w->Pop(absl::ZeroDuration()).has_value(); };

  report(100, 150);
  ASSERT_TRUE(changed());
  report(101.5, 151);  // 1.5 ms, 1.5 %: jitter
  EXPECT_FALSE(changed());
  report(103, 150);  // 3 ms from what was published: > 2 ms
  EXPECT_TRUE(changed());
  report(104, 150);  // 1 ms
  EXPECT_FALSE(changed());
  report(105.5, 150);  // 1.5 ms from the last report, 2.5 ms from the last published
  EXPECT_TRUE(changed());
  report(105.5, 150, /*b_reachable=*/false);  // reachability
  EXPECT_TRUE(changed());
  report(105.5, 100);  // b: reachable and nearer -> NEW_TARGET (a role change)
  std::optional<v1::VehicleProximity> p = w->Pop(absl::ZeroDuration());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(RoleOf(*p, "b"), v1::ROLE_NEW_TARGET);

  // Small RTTs: 10 % matters even below 2 ms.
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 5}})).ok());
  ASSERT_TRUE(changed());
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 5.3}})).ok());  // 6 %
  EXPECT_FALSE(changed());
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 5.6}})).ok());  // 12 %
  EXPECT_TRUE(changed());

  EXPECT_FALSE(other->Pop(absl::ZeroDuration()).has_value());  // another vehicle's watch
  // The all-vehicles watch got the same changes, coalesced into car's latest snapshot.
  p = all->Pop(absl::ZeroDuration());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->servers(0).srtt_ms(), 5.6);
  EXPECT_FALSE(all->Pop(absl::ZeroDuration()).has_value());

  // A new watcher starts with the current state.
  std::shared_ptr<ProximityWatch> late = e->Watch("car");
  p = late->Pop(absl::ZeroDuration());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->target_server_id(), "a");
}

TEST_F(EngineTest, SweepPublishesExpiries) {
  auto e = Make({Srv("a")});
  ASSERT_TRUE(e->Register(Srv("r"), absl::Seconds(2)).ok());
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 30}, {"r", true, 10}})).ok());
  std::shared_ptr<ProximityWatch> w = e->Watch("car");
  ASSERT_EQ(w->Pop(absl::ZeroDuration())->servers_size(), 2);

  e->Sweep();  // nothing expired: nothing published
  EXPECT_FALSE(w->Pop(absl::ZeroDuration()).has_value());
  Advance(absl::Seconds(2));  // r's ttl
  e->Sweep();
  std::optional<v1::VehicleProximity> p = w->Pop(absl::ZeroDuration());
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->servers_size(), 1);
  EXPECT_EQ(p->servers(0).server_id(), "a");

  Advance(absl::Seconds(4));  // the report is now 6 s old
  e->Sweep();
  p = w->Pop(absl::ZeroDuration());
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(RoleOf(*p, "a"), v1::ROLE_IDLE);
}

TEST_F(EngineTest, WatchQueueKeepsTheLatestPerVehicleAndIsBounded) {
  auto e = Make({Srv("a")}, /*queue=*/2);
  std::shared_ptr<ProximityWatch> w = e->Watch("");
  for (double srtt : {10.0, 20.0, 30.0}) {
    ASSERT_TRUE(e->Report(Rep("car-1", "a", {{"a", true, srtt}})).ok());
  }
  ASSERT_TRUE(e->Report(Rep("car-2", "a", {{"a", true, 1}})).ok());
  ASSERT_TRUE(e->Report(Rep("car-3", "a", {{"a", true, 1}})).ok());  // pushes car-1 out
  EXPECT_EQ(w->dropped(), 1u);
  EXPECT_EQ(w->Pop(absl::ZeroDuration())->vehicle_id(), "car-2");
  EXPECT_EQ(w->Pop(absl::ZeroDuration())->vehicle_id(), "car-3");
  EXPECT_FALSE(w->Pop(absl::ZeroDuration()).has_value());

  std::shared_ptr<ProximityWatch> one = e->Watch("car-1");
  ASSERT_EQ(one->Pop(absl::ZeroDuration())->servers(0).srtt_ms(), 30);
  for (double srtt : {40.0, 50.0}) ASSERT_TRUE(e->Report(Rep("car-1", "a", {{"a", true, srtt}})).ok());
  EXPECT_EQ(one->Pop(absl::ZeroDuration())->servers(0).srtt_ms(), 50);  // coalesced
  EXPECT_FALSE(one->Pop(absl::ZeroDuration()).has_value());
}

TEST_F(EngineTest, ClosedAndAbandonedWatches) {
  auto e = Make({Srv("a")});
  std::shared_ptr<ProximityWatch> w = e->Watch("");
  std::weak_ptr<ProximityWatch> abandoned = e->Watch("");  // its watcher is gone at once
  EXPECT_TRUE(abandoned.expired());  // the engine holds no strong reference
  ASSERT_TRUE(e->Report(Rep("car", "a", {{"a", true, 1}})).ok());
  e->CloseWatches();
  EXPECT_FALSE(w->closed());  // still holds the last snapshot
  EXPECT_TRUE(w->Pop(absl::Seconds(5)).has_value());
  absl::Time before = absl::Now();
  EXPECT_FALSE(w->Pop(absl::Seconds(5)).has_value());  // returns at once: closed
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));
  EXPECT_TRUE(w->closed());
  EXPECT_TRUE(e->Watch("car")->closed());
}

TEST_F(EngineTest, DiscoveredServersAreReplacedWholesale) {
  auto e = Make({Srv("s", "10.0.0.1:7400")});
  ASSERT_TRUE(e->Register(Srv("r"), absl::Seconds(10)).ok());
  // "s" collides with a static server (static wins); "r" was registered (the cluster wins).
  e->ReplaceDiscovered({Srv("k1"), Srv("s", "10.5.5.5:7400"), Srv("r")});
  std::vector<v1::Server> list = e->ListServers();
  ASSERT_THAT(Ids(list), ElementsAre("k1", "r", "s"));
  EXPECT_EQ(list[0].source(), v1::SERVER_SOURCE_KUBERNETES);
  EXPECT_EQ(list[1].source(), v1::SERVER_SOURCE_KUBERNETES);
  EXPECT_EQ(list[2].source(), v1::SERVER_SOURCE_STATIC);
  EXPECT_EQ(list[2].agent_address(), "10.0.0.1:7400");
  EXPECT_EQ(MetricValue(*registry_, "smig_servers_registered"), 3);

  // A heartbeat brings k1's load; discovery keeps it; discovered servers do not expire.
  ASSERT_TRUE(e->Register(Srv("k1", "", 7), absl::Seconds(1)).ok());
  Advance(absl::Minutes(1));
  e->ReplaceDiscovered({Srv("k1")});
  list = e->ListServers();
  ASSERT_THAT(Ids(list), ElementsAre("k1", "s"));
  EXPECT_EQ(list[0].sessions(), 7u);
  EXPECT_EQ(MetricValue(*registry_, "smig_servers_registered"), 2);
}

}  // namespace
}  // namespace smig::proximity
