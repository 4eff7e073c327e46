// The MDM's automatic loop over a fleet whose nearest edge is too small for it: the loop
// must never take an edge over max_load (counting migrations in flight, whatever the PMM's
// older report says), must keep each edge's migrations in flight at the policy's maximum,
// and must spread the rest to the next best edge, saying why.
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/decision/auto_migrator.h"
#include "tests/services/decision/fake_control_plane.h"

namespace smig::decision {
namespace {

using ::testing::HasSubstr;
using testing::FakeControlPlane;

constexpr AutoMigrator::Options kFastLoop = {.tick = absl::Milliseconds(10),
                                              .sessions_ttl = absl::ZeroDuration(),
                                              .min_backoff = absl::Milliseconds(5),
                                              .max_backoff = absl::Milliseconds(20)};

struct Edge {
  const char* id;
  double srtt_ms;
  uint32_t capacity;
};
// edge-0 serves the whole fleet from afar; edge-1 is nearest to every car but holds 3.
constexpr Edge kEdges[] = {{"edge-0", 40, 100}, {"edge-1", 5, 3}, {"edge-2", 10, 20}};
constexpr int kCars = 10;
constexpr uint32_t kMaxInFlight = 2;

proximity::v1::VehicleProximity Near(const std::string& vehicle) {
  proximity::v1::VehicleProximity p;
  p.set_vehicle_id(vehicle);
  for (const Edge& e : kEdges) {
    proximity::v1::ServerProximity* s = p.add_servers();
    s->set_server_id(e.id);
    s->set_reachable(true);
    s->set_srtt_ms(e.srtt_ms);
    s->set_capacity(e.capacity);
    // The PMM's report never catches up: only the SMM's listing says who is where.
    s->set_sessions(std::string(e.id) == "edge-0" ? kCars : 0);
  }
  return p;
}

using testing::Eventually;

TEST(FleetCapacityTest, ANearestEdgeTooSmallIsFilledNeverOverAndTheRestSpreadsRateLimited) {
  SimulatedClock clock;
  DecisionEngine engine;
  FakeControlPlane clients;
  v1::Policy policy = DefaultPolicy();
  policy.set_mode(v1::MODE_AUTOMATIC);
  policy.mutable_dwell()->set_seconds(0);
  policy.set_max_load(1);
  policy.set_max_migrations_per_server(kMaxInFlight);
  ASSERT_TRUE(engine.UpdatePolicy(policy).ok());
  clients.set_migrations_in_flight(true);
  for (int i = 1; i <= kCars; ++i) {
    migrator::v1::Session s;
    s.set_session_id(i);
    s.set_vehicle_id(absl::StrCat("car-", i));
    s.set_server_id("edge-0");
    clients.SetSession(s);
    clients.SetProximity(Near(s.vehicle_id()));
  }

  AutoMigrator loop(engine, clients, kFastLoop, clock);
  loop.Start();
  // Pass after pass: the loop decides every car, then the SMM ends what is in flight.
  std::map<std::string, int> placed = {{"edge-0", kCars}};
  for (int pass = 0; pass < 20 && placed["edge-0"] != 0; ++pass) {
    ASSERT_TRUE(clock.AwaitSleepers(1));
    const size_t before = clients.migrate_calls().size();
    const int lists = clients.list_calls();
    clock.Advance(kFastLoop.tick);
    ASSERT_TRUE(Eventually([&] { return clients.list_calls() > lists; }));
    ASSERT_TRUE(clock.AwaitSleepers(1));  // the pass is over
    EXPECT_LE(clients.migrate_calls().size() - before, 2 * kMaxInFlight) << "pass " << pass;
    clients.CompleteMigrations();
    placed.clear();
    const std::vector<migrator::v1::Session> sessions = *clients.ListSessions();
    for (const migrator::v1::Session& s : sessions) ++placed[s.server_id()];
  }
  loop.Stop();

  EXPECT_EQ(placed["edge-0"], 0);
  EXPECT_EQ(placed["edge-1"], 3);
  EXPECT_EQ(placed["edge-2"], kCars - 3);
  const std::vector<testing::MigrateCall> calls = clients.migrate_calls();
  EXPECT_EQ(calls.size(), static_cast<size_t>(kCars));  // each car moved once
  for (const testing::MigrateCall& c : calls) {
    const uint32_t capacity = c.target == "edge-1" ? 3 : 20;
    EXPECT_LE(c.target_taken, capacity) << "session " << c.session_id << " to " << c.target;
    EXPECT_LE(c.target_arriving, kMaxInFlight) << "session " << c.session_id << " to " << c.target;
    if (c.target == "edge-2") {
      EXPECT_THAT(c.reason, HasSubstr("edge-1 would cost 1.50 but is full: "));
    }
  }
  // Some cars waited for a free slot rather than going elsewhere, and said why.
  bool rate_limited = false;
  for (const v1::DecisionRecord& d : engine.ListDecisions(0, 1000)) {
    for (const std::string& r : d.reasons()) rate_limited |= absl::StrContains(r, "rate limited");
  }
  EXPECT_TRUE(rate_limited);
}

}  // namespace
}  // namespace smig::decision
