#include "services/decision/decision_service.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/decision/auto_migrator.h"
#include "tests/services/decision/fake_control_plane.h"

namespace smig::decision {
namespace {

using ::testing::HasSubstr;
using testing::FakeControlPlane;

proximity::v1::VehicleProximity NearerEdge2(const std::string& vehicle) {
  proximity::v1::VehicleProximity p;
  p.set_vehicle_id(vehicle);
  for (auto [id, srtt] : {std::pair{"edge-1", 20.0}, std::pair{"edge-2", 10.0}}) {
    proximity::v1::ServerProximity* s = p.add_servers();
    s->set_server_id(id);
    s->set_reachable(true);
    s->set_srtt_ms(srtt);
  }
  return p;
}

migrator::v1::Session Session(uint64_t id, const std::string& vehicle, const std::string& server) {
  migrator::v1::Session s;
  s.set_session_id(id);
  s.set_vehicle_id(vehicle);
  s.set_server_id(server);
  return s;
}

constexpr AutoMigrator::Options kFastLoop = {.tick = absl::Milliseconds(10),
                                              .sessions_ttl = absl::ZeroDuration(),
                                              .min_backoff = absl::Milliseconds(5),
                                              .max_backoff = absl::Milliseconds(20)};

using testing::Eventually;

class DecisionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<GrpcServer>> s =
        GrpcServer::Start({.grpc_address = "127.0.0.1:0", .metrics_address = ""}, {&service_},
                          nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    stub_ = v1::Decision::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(absl::Milliseconds(100)); }

  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return ctx;
  }

  // Moves the clock to `t` (at least one tick on) once the loop waits for its next tick,
  // and waits (in real time) until the loop has decided then: with sessions_ttl 0 every
  // pass lists the sessions.
  void TickAt(absl::Time t) {
    ASSERT_TRUE(clock_.AwaitSleepers(1));
    const int before = clients_.list_calls();
    clock_.SetTime(std::max(t, clock_.Now() + kFastLoop.tick));
    ASSERT_TRUE(Eventually([&] { return clients_.list_calls() > before; }));
  }
  // When the loop first decided for `session` (its dwell started then).
  absl::Time FirstDecided(uint64_t session) {
    std::vector<v1::DecisionRecord> d = engine_.ListDecisions(session, 0);
    return d.empty() ? absl::InfinitePast() : FromProto(d.back().decided_at());
  }

  SimulatedClock clock_;
  DecisionEngine engine_;
  FakeControlPlane clients_;
  DecisionService service_{engine_, clients_, clock_};
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::Decision::Stub> stub_;
};

TEST_F(DecisionServiceTest, PolicyRoundTripsAndABadOneIsInvalidArgumentNamingTheField) {
  v1::Policy p;
  ASSERT_TRUE(stub_->GetPolicy(Ctx().get(), {}, &p).ok());
  EXPECT_EQ(p.margin(), 0.2);

  v1::UpdatePolicyRequest req;
  *req.mutable_policy() = p;
  req.mutable_policy()->set_margin(1.5);
  grpc::Status s = stub_->UpdatePolicy(Ctx().get(), req, &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("margin"));

  req.mutable_policy()->set_margin(0.3);
  req.mutable_policy()->set_mode(v1::MODE_AUTOMATIC);
  ASSERT_TRUE(stub_->UpdatePolicy(Ctx().get(), req, &p).ok());
  ASSERT_TRUE(stub_->GetPolicy(Ctx().get(), {}, &p).ok());
  EXPECT_EQ(p.margin(), 0.3);
  EXPECT_EQ(p.mode(), v1::MODE_AUTOMATIC);
}

TEST_F(DecisionServiceTest, EvaluateAnUnknownSessionIsNotFoundNamingIt) {
  v1::EvaluateRequest req;
  req.set_session_id(42);
  v1::DecisionRecord r;
  grpc::Status s = stub_->Evaluate(Ctx().get(), req, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("session 42"));

  req.set_session_id(0);
  EXPECT_EQ(stub_->Evaluate(Ctx().get(), req, &r).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(DecisionServiceTest, EvaluateDecidesWithoutMigratingAndIsListed) {
  clients_.SetSession(Session(7, "car-1", "edge-1"));
  clients_.SetProximity(NearerEdge2("car-1"));
  v1::EvaluateRequest req;
  req.set_session_id(7);
  v1::DecisionRecord r;
  ASSERT_TRUE(stub_->Evaluate(Ctx().get(), req, &r).ok());
  EXPECT_EQ(r.outcome(), v1::OUTCOME_DWELL);
  EXPECT_EQ(r.vehicle_id(), "car-1");
  EXPECT_EQ(r.current_server_id(), "edge-1");
  EXPECT_EQ(r.target_server_id(), "edge-2");
  EXPECT_EQ(r.candidates_size(), 2);
  EXPECT_TRUE(clients_.migrate_calls().empty());

  v1::ListDecisionsRequest list;
  list.set_session_id(7);
  v1::ListDecisionsResponse resp;
  ASSERT_TRUE(stub_->ListDecisions(Ctx().get(), list, &resp).ok());
  ASSERT_EQ(resp.decisions_size(), 1);
  EXPECT_EQ(resp.decisions(0).id(), r.id());
  list.set_session_id(8);
  ASSERT_TRUE(stub_->ListDecisions(Ctx().get(), list, &resp).ok());
  EXPECT_EQ(resp.decisions_size(), 0);

  // A vehicle the PMM does not know: its NOT_FOUND passes through.
  clients_.SetSession(Session(8, "car-2", "edge-1"));
  req.set_session_id(8);
  EXPECT_EQ(stub_->Evaluate(Ctx().get(), req, &r).error_code(), grpc::StatusCode::NOT_FOUND);
}


TEST_F(DecisionServiceTest, AutomaticModeMigratesExactlyOnceAfterTheDwell) {
  v1::Policy p = DefaultPolicy();
  p.set_mode(v1::MODE_AUTOMATIC);
  p.mutable_dwell()->set_seconds(2);
  ASSERT_TRUE(engine_.UpdatePolicy(p).ok());
  clients_.SetSession(Session(7, "car-1", "edge-1"));
  clients_.SetSession(Session(9, "car-1", "edge-1"));
  clients_.set_move_on_migrate(true);
  {
    // Session 9 is being moved already: the loop must leave it alone.
    migrator::v1::Session busy = Session(9, "car-1", "edge-1");
    busy.set_migration_id("m-manual");
    clients_.SetSession(busy);
  }
  clients_.SetProximity(NearerEdge2("car-1"));
  clients_.FailWatches(2);  // the PMM is down at first: the loop reconnects

  AutoMigrator loop(engine_, clients_, kFastLoop, clock_);
  loop.Start();
  // Its backoff passes once both threads wait: the decide loop for a tick, the watch loop
  // to reconnect.
  ASSERT_TRUE(Eventually([&] {
    if (clients_.watch_calls() >= 3) return true;
    if (clock_.AwaitSleepers(2, absl::Milliseconds(1))) clock_.Advance(kFastLoop.min_backoff);
    return false;
  }));
  ASSERT_TRUE(Eventually([&] {
    auto d = engine_.ListDecisions(7, 1);
    return !d.empty() && d[0].outcome() == v1::OUTCOME_DWELL;
  }));
  const absl::Time dwell_start = FirstDecided(7);
  for (absl::Duration at : {absl::Milliseconds(10), absl::Milliseconds(20), absl::Seconds(1),
                            absl::Milliseconds(1900)}) {
    TickAt(dwell_start + at);
  }
  EXPECT_TRUE(clients_.migrate_calls().empty()) << "migrated before the dwell";

  TickAt(dwell_start + absl::Seconds(2));  // the dwell is over; ticks alone must notice
  ASSERT_TRUE(Eventually([&] { return !clients_.migrate_calls().empty(); }));
  TickAt(clock_.Now() + kFastLoop.tick);
  TickAt(clock_.Now() + absl::Seconds(10));
  const int before = clients_.list_calls();
  clients_.SetProximity(NearerEdge2("car-1"));  // an update, too
  ASSERT_TRUE(Eventually([&] { return clients_.list_calls() > before; }));
  loop.Stop();

  std::vector<testing::MigrateCall> calls = clients_.migrate_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].session_id, 7u);
  EXPECT_EQ(calls[0].target, "edge-2");
  EXPECT_THAT(calls[0].reason, HasSubstr("over the 20 % margin"));
  EXPECT_THAT(calls[0].reason, HasSubstr("dwell 2 s"));

  std::vector<v1::DecisionRecord> d = engine_.ListDecisions(7, 0);
  auto migrate = std::find_if(d.begin(), d.end(), [](const v1::DecisionRecord& r) {
    return r.outcome() == v1::OUTCOME_MIGRATE;
  });
  ASSERT_NE(migrate, d.end());
  // The request id names the move and its dwell's start, not this process's decision id.
  EXPECT_EQ(calls[0].request_id, MigrateRequestId(*migrate));
  EXPECT_EQ(calls[0].request_id,
            absl::StrCat("mdm/7/edge-1/edge-2/", absl::ToUnixSeconds(dwell_start)));
  EXPECT_EQ(migrate->migration_id(), "m-1");
  EXPECT_EQ(d.front().outcome(), v1::OUTCOME_STAY);  // it is on edge-2 now
  EXPECT_EQ(d.front().current_server_id(), "edge-2");
  EXPECT_TRUE(engine_.ListDecisions(9, 0).empty());
}

TEST_F(DecisionServiceTest, ManualModeOnlyRecords) {
  clients_.SetSession(Session(7, "car-1", "edge-1"));
  clients_.SetProximity(NearerEdge2("car-1"));
  AutoMigrator loop(engine_, clients_, kFastLoop, clock_);
  loop.Start();
  ASSERT_TRUE(Eventually([&] { return !engine_.ListDecisions(7, 1).empty(); }));
  TickAt(FirstDecided(7) + absl::Seconds(3));
  ASSERT_TRUE(Eventually([&] {
    auto d = engine_.ListDecisions(7, 1);
    return !d.empty() && d[0].outcome() == v1::OUTCOME_MIGRATE;
  }));
  loop.Stop();
  EXPECT_TRUE(clients_.migrate_calls().empty());
}

// GrpcControlPlaneClients against fake PMM and SMM servers: what goes on the wire.
class FakeSmm final : public migrator::v1::Migrator::Service {
 public:
  grpc::Status ListSessions(grpc::ServerContext*, const migrator::v1::ListSessionsRequest*,
                            migrator::v1::ListSessionsResponse* resp) override {
    *resp->add_sessions() = Session(7, "car-1", "edge-1");
    return grpc::Status::OK;
  }
  grpc::Status Migrate(grpc::ServerContext*, const migrator::v1::MigrateRequest* req,
                       migrator::v1::Migration* resp) override {
    absl::MutexLock lock(&mu);
    last = *req;
    resp->set_id("m-" + req->request_id());
    return grpc::Status::OK;
  }
  absl::Mutex mu;
  migrator::v1::MigrateRequest last;
};

class FakePmm final : public proximity::v1::Proximity::Service {
 public:
  grpc::Status GetProximity(grpc::ServerContext*, const proximity::v1::GetProximityRequest* req,
                            proximity::v1::VehicleProximity* resp) override {
    *resp = NearerEdge2(req->vehicle_id());
    return grpc::Status::OK;
  }
  // One update, then the stream stays open until the client cancels.
  grpc::Status WatchProximity(grpc::ServerContext* ctx, const proximity::v1::WatchProximityRequest*,
                              grpc::ServerWriter<proximity::v1::VehicleProximity>* w) override {
    w->Write(NearerEdge2("car-1"));
    while (!ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    return grpc::Status::CANCELLED;
  }
};

TEST(GrpcControlPlaneClientsTest, SpeaksToThePmmAndTheSmm) {
  FakeSmm smm;
  FakePmm pmm;
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.grpc_address = "127.0.0.1:0", .metrics_address = ""}, {&smm, &pmm},
                        nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string address = absl::StrCat("127.0.0.1:", (*server)->grpc_port());
  auto clients = GrpcControlPlaneClients::Create(address, address, ClientCredentials());

  absl::StatusOr<migrator::v1::Session> s = FindSession(*clients, 7);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->vehicle_id(), "car-1");
  EXPECT_EQ(FindSession(*clients, 8).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<proximity::v1::VehicleProximity> p = clients->GetProximity("car-3");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->vehicle_id(), "car-3");

  absl::StatusOr<std::string> m = clients->Migrate(7, "edge-2", "nearer", "d-1");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, "m-d-1");
  {
    absl::MutexLock lock(&smm.mu);
    EXPECT_EQ(smm.last.trigger(), migrator::v1::TRIGGER_AUTO);
    EXPECT_EQ(smm.last.target_server_id(), "edge-2");
    EXPECT_EQ(smm.last.reason(), "nearer");
    EXPECT_EQ(smm.last.request_id(), "d-1");
  }

  std::atomic<int> updates = 0;
  absl::Status watch;
  std::thread t([&] {
    watch = clients->WatchProximity([&](const proximity::v1::VehicleProximity&) { ++updates; });
  });
  ASSERT_TRUE(Eventually([&] { return updates.load() == 1; }));
  clients->CancelWatch();
  t.join();
  EXPECT_EQ(watch.code(), absl::StatusCode::kCancelled);
  (*server)->Shutdown(absl::Milliseconds(100));

  auto none = GrpcControlPlaneClients::Create("", "", ClientCredentials());
  EXPECT_EQ(none->ListSessions().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none->GetProximity("car-1").status().message(), HasSubstr("proximity_address"));
}

}  // namespace
}  // namespace smig::decision
