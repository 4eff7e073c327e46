// The PMM's gRPC adapter over a real GrpcServer on 127.0.0.1:0: status codes one by one,
// a streamed report then GetProximity, RegisterServer/ListServers, and WatchProximity.
#include "services/proximity/proximity_service.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::proximity {
namespace {

using ::testing::HasSubstr;

v1::Server Srv(const std::string& id) {
  v1::Server s;
  s.set_id(id);
  s.set_agent_address(absl::StrCat(id, ":7400"));
  return s;
}

v1::ProximityReport Rep(const std::string& vehicle, double srtt_a, double srtt_b) {
  v1::ProximityReport r;
  r.set_vehicle_id(vehicle);
  r.set_serving_server_id("edge-a");
  for (auto [id, srtt] : {std::pair<std::string, double>{"edge-a", srtt_a}, {"edge-b", srtt_b}}) {
    v1::Measurement* m = r.add_measurements();
    m->set_server_id(id);
    m->set_reachable(true);
    m->set_srtt_ms(srtt);
  }
  return r;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto registry = std::make_shared<prometheus::Registry>();
    ProximityEngine::Options o;
    o.static_servers = {Srv("edge-a"), Srv("edge-b")};
    o.registry = registry;
    engine_ = *ProximityEngine::Create(std::move(o));
    service_ = std::make_unique<ProximityService>(*engine_);
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start({.metrics_address = ""}, {service_.get()}, registry);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Proximity::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (engine_) engine_->CloseWatches();
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // Every call gets a deadline, so that a broken server fails the test instead of hanging it.
  static void Deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  grpc::Status Stream(const std::vector<v1::ProximityReport>& reports,
                      v1::ReportProximityResponse* resp) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    std::unique_ptr<grpc::ClientWriter<v1::ProximityReport>> w = stub_->ReportProximity(&ctx, resp);
    for (const v1::ProximityReport& r : reports) {
      if (!w->Write(r)) break;  // the server ended the call; Finish says why
    }
    w->WritesDone();
    return w->Finish();
  }

  grpc::Status Get(const std::string& vehicle, v1::VehicleProximity* out) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::GetProximityRequest req;
    req.set_vehicle_id(vehicle);
    return stub_->GetProximity(&ctx, req, out);
  }

  std::unique_ptr<ProximityEngine> engine_;
  std::unique_ptr<ProximityService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::Proximity::Stub> stub_;
};

TEST_F(ServiceTest, StatusCodesMapOneByOne) {
  v1::VehicleProximity p;
  grpc::Status s = Get("car-404", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("car-404"));

  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::RegisterServerRequest req;
  req.mutable_server()->set_agent_address("10.0.0.9:7400");  // no id
  v1::Server out;
  s = stub_->RegisterServer(&ctx, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("server.id"));

  grpc::ClientContext ctx2;
  Deadline(ctx2);
  *req.mutable_server() = Srv("edge-a");
  req.mutable_server()->set_agent_address("10.0.0.9:7400");  // edge-a is static elsewhere
  s = stub_->RegisterServer(&ctx2, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // A bad report ends the stream with its code; the good one before it counted.
  v1::ReportProximityResponse resp;
  s = Stream({Rep("car-1", 10, 20), Rep("", 10, 20)}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("vehicle_id"));
  EXPECT_TRUE(Get("car-1", &p).ok());
  v1::ProximityReport unknown = Rep("car-2", 10, 20);
  for (v1::Measurement& m : *unknown.mutable_measurements()) m.set_server_id("edge-zz");
  s = Stream({unknown}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("edge-zz"));
}

TEST_F(ServiceTest, StreamedReportsThenGetProximity) {
  v1::ReportProximityResponse resp;
  grpc::Status s = Stream({Rep("car-1", 30, 40), Rep("car-1", 30, 25), Rep("car-1", 30, 10)}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.reports(), 3u);

  v1::VehicleProximity p;
  s = Get("car-1", &p);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(p.target_server_id(), "edge-a");
  ASSERT_EQ(p.servers_size(), 2);
  EXPECT_EQ(p.servers(0).role(), v1::ROLE_TARGET);
  EXPECT_EQ(p.servers(1).role(), v1::ROLE_NEW_TARGET);  // the last report: 10 ms < 30 ms
  EXPECT_EQ(p.servers(1).srtt_ms(), 10);
}

TEST_F(ServiceTest, RegisterThenList) {
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::RegisterServerRequest req;
  *req.mutable_server() = Srv("edge-r");
  req.mutable_server()->set_sessions(2);
  *req.mutable_ttl() = ToProtoDuration(absl::Seconds(30));
  v1::Server out;
  grpc::Status s = stub_->RegisterServer(&ctx, req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.source(), v1::SERVER_SOURCE_REGISTERED);
  EXPECT_EQ(FromProto(out.expires_at()) - FromProto(out.last_heartbeat()), absl::Seconds(30));

  grpc::ClientContext ctx2;
  Deadline(ctx2);
  v1::ListServersResponse list;
  s = stub_->ListServers(&ctx2, v1::ListServersRequest(), &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(list.servers_size(), 3);
  EXPECT_EQ(list.servers(2).id(), "edge-r");
  EXPECT_EQ(list.servers(2).sessions(), 2u);
}

TEST_F(ServiceTest, WatchProximityGetsTheStateThenChangesThenUnavailableOnShutdown) {
  ASSERT_TRUE(engine_->Report(Rep("car-1", 30, 40)).ok());
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::WatchProximityRequest req;
  req.set_vehicle_id("car-1");
  std::unique_ptr<grpc::ClientReader<v1::VehicleProximity>> reader = stub_->WatchProximity(&ctx, req);
  v1::VehicleProximity p;
  ASSERT_TRUE(reader->Read(&p));  // the state at subscription
  EXPECT_EQ(p.servers(1).role(), v1::ROLE_TESTED);

  v1::ReportProximityResponse resp;
  ASSERT_TRUE(Stream({Rep("car-1", 30, 10)}, &resp).ok());
  ASSERT_TRUE(reader->Read(&p));
  EXPECT_EQ(p.servers(1).role(), v1::ROLE_NEW_TARGET);

  engine_->CloseWatches();
  EXPECT_FALSE(reader->Read(&p));
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServiceTest, CancelledWatchEndsItsCall) {
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::WatchProximityRequest req;  // every vehicle
  std::unique_ptr<grpc::ClientReader<v1::VehicleProximity>> reader = stub_->WatchProximity(&ctx, req);
  ASSERT_TRUE(engine_->Report(Rep("car-7", 30, 40)).ok());
  v1::VehicleProximity p;
  // The report may land before or after the server subscribed; either way car-7 arrives.
  ASSERT_TRUE(reader->Read(&p));
  EXPECT_EQ(p.vehicle_id(), "car-7");
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server's handler returned, so shutdown does not wait for the grace period.
  absl::Time before = absl::Now();
  server_->Shutdown(absl::Seconds(5));
  server_.reset();
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
}

}  // namespace
}  // namespace smig::proximity
