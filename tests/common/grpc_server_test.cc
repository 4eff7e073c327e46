#include "common/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/testbed.h"

namespace smig {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus Check(int port, const std::string& service) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return HealthCheckResponse::UNKNOWN;
  return resp.status();
}

TEST(GrpcServerTest, ServesHealthAndMetricsAndStopsServingOnShutdown) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("smig_test_events_total")
                     .Help("Events counted by the test.")
                     .Register(*registry);
  family.Add({}).Increment(3);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start({}, {}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->grpc_port(), 0);
  ASSERT_GT((*server)->metrics_port(), 0);

  EXPECT_EQ(Check((*server)->grpc_port(), ""), HealthCheckResponse::SERVING);
  (*server)->SetServing("smig.test.v1.Thing", false);
  EXPECT_EQ(Check((*server)->grpc_port(), "smig.test.v1.Thing"), HealthCheckResponse::NOT_SERVING);

  std::string metrics = testbed::HttpGet((*server)->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, ::testing::HasSubstr("smig_test_events_total 3"));

  int port = (*server)->grpc_port();
  (*server)->Shutdown(absl::Milliseconds(100));
  EXPECT_NE(Check(port, ""), HealthCheckResponse::SERVING);
}

TEST(GrpcServerTest, BusyMetricsPortIsAClearError) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<GrpcServer>> first = GrpcServer::Start({}, {}, registry);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string taken = absl::StrCat("127.0.0.1:", (*first)->metrics_port());
  absl::StatusOr<std::unique_ptr<GrpcServer>> second =
      GrpcServer::Start({.metrics_address = taken}, {}, registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), ::testing::HasSubstr(taken));
}

}  // namespace
}  // namespace smig
