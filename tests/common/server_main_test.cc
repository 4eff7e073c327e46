#include "common/server_main.h"

#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace smig {
namespace {

using ::grpc::health::v1::HealthCheckResponse;

// The server's overall health, or UNKNOWN when it does not answer.
HealthCheckResponse::ServingStatus Health(int port) {
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckResponse resp;
  if (!stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
    return HealthCheckResponse::UNKNOWN;
  }
  return resp.status();
}

TEST(ServerMainTest, ReadyLineIsTheJsonThatScriptsWaitFor) {
  EXPECT_EQ(ReadyLine("migrator", 7300, 9300),
            R"({"service":"migrator","grpc_port":7300,"metrics_port":9300})");
}

TEST(ServerMainTest, AReadyLabelNamesTheServerUnderItsOwnKey) {
  EXPECT_EQ(ReadyLine(ReadyLabel{"role", "edge"}, 7100, 9100),
            R"({"role":"edge","grpc_port":7100,"metrics_port":9100})");
}

TEST(ServerMainTest, ExitCodeIsZeroForOkAndTwoForAnError) {
  EXPECT_EQ(ExitCode(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCode(absl::InvalidArgumentError("bad config")), 2);
}

TEST(ServerMainTest, ATerminationSignalStopsServingThenRunsStopThenShutsDown) {
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.grpc_address = "127.0.0.1:0", .metrics_address = ""}, {}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->grpc_port();
  ASSERT_EQ(Health(port), HealthCheckResponse::SERVING);

  HealthCheckResponse::ServingStatus during_stop = HealthCheckResponse::UNKNOWN;
  absl::Notification blocked;
  ::testing::internal::CaptureStdout();
  std::thread serving([&] {
    BlockTerminationSignals();  // in this thread alone: the signal goes to it alone
    blocked.Notify();
    ServeUntilTerminated("test", **server, [&] { during_stop = Health(port); });
  });
  blocked.WaitForNotification();
  ASSERT_EQ(pthread_kill(serving.native_handle(), SIGTERM), 0);
  serving.join();
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), ReadyLine("test", port, 0) + "\n");
  EXPECT_EQ(during_stop, HealthCheckResponse::NOT_SERVING);  // still answering, not serving
  EXPECT_EQ(Health(port), HealthCheckResponse::UNKNOWN);     // shut down
}

// ParseFlags may run once per process, so this is the only case that calls ServerMain.
TEST(ServerMainTest, ServesTheConfigWithTheFlagsOverridesAndExitsTwoOnAnError) {
  const std::string path = ::testing::TempDir() + "/server_main_test.json";
  std::ofstream(path) << R"({"grpc_address": "127.0.0.1:1", "overlap_timeout": "3s"})";
  std::vector<std::string> args = {"smig-test", "--config=" + path,
                                   "--grpc-address=127.0.0.1:7"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  migrator::v1::MigratorConfig seen;
  int code = ServerMain<migrator::v1::MigratorConfig>(
      static_cast<int>(args.size()), argv.data(), "test",
      [&](const migrator::v1::MigratorConfig& config) {
        seen = config;
        return absl::UnavailableError("port taken");
      });
  EXPECT_EQ(code, 2);
  EXPECT_EQ(seen.grpc_address(), "127.0.0.1:7");
  EXPECT_EQ(seen.overlap_timeout().seconds(), 3);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace smig
