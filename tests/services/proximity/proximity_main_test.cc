// smig-proximity as a process: config, the ready line, gRPC + /metrics, a Kubernetes API
// that does not answer (the static list stays), SIGTERM -> clean exit; and a bad config.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "tests/integration/testbed.h"

namespace smig::proximity {
namespace {

using ::testing::HasSubstr;

struct Ready {
  int grpc_port = 0;
  int metrics_port = 0;
};

// The first stdout line: {"service":"proximity","grpc_port":N,"metrics_port":M}.
std::optional<Ready> AwaitReady(const std::string& path, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(path);
    std::string line;
    if (std::getline(in, line) && !line.empty()) {
      Ready r;
      std::string want = "{\"service\":\"proximity\",\"grpc_port\":";
      if (line.rfind(want, 0) != 0) return std::nullopt;
      if (sscanf(line.c_str() + want.size(), "%d,\"metrics_port\":%d}", &r.grpc_port,
                 &r.metrics_port) != 2) {
        return std::nullopt;
      }
      return r;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return std::nullopt;
}

class MainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testbed::ScratchDir() + "/pmm-main";
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::error_code ec;  // the per-process scratch dir too, if nothing else is in it
    std::filesystem::remove(std::filesystem::path(dir_).parent_path(), ec);
  }
  std::string dir_;
};

TEST_F(MainTest, ServesTheStaticRegistryAndStopsOnSigterm) {
  std::ofstream(dir_ + "/pmm.json") << R"({
    "grpc_address": "127.0.0.1:0",
    "servers": [{"id": "edge-1", "agent_address": "127.0.0.1:7400", "sctp_addresses": ["10.0.0.1"]}],
    "discovery": {"kubernetes": {"service": "smig-dataplane", "namespace": "smig"}},
    "report_ttl": "2s"
  })";
  // An API server that refuses connections: discovery fails, the static list stays.
  setenv("SMIG_KUBERNETES_API", "http://127.0.0.1:1", 1);
  absl::StatusOr<std::unique_ptr<testbed::Process>> p = testbed::Process::Start(
      {SMIG_PROXIMITY, "--config=" + dir_ + "/pmm.json", "--metrics-address=127.0.0.1:0"},
      dir_ + "/out");
  ASSERT_TRUE(p.ok()) << p.status();
  std::optional<Ready> ready = AwaitReady(dir_ + "/out", absl::Seconds(15));
  ASSERT_TRUE(ready.has_value()) << (*p)->Stderr();
  ASSERT_GT(ready->metrics_port, 0);

  auto stub = v1::Proximity::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", ready->grpc_port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListServersResponse list;
  grpc::Status s = stub->ListServers(&ctx, v1::ListServersRequest(), &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(list.servers_size(), 1);
  EXPECT_EQ(list.servers(0).id(), "edge-1");
  EXPECT_EQ(list.servers(0).source(), v1::SERVER_SOURCE_STATIC);

  std::string metrics = testbed::HttpGet(ready->metrics_port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("smig_servers_registered 1"));
  EXPECT_THAT(metrics, HasSubstr("smig_proximity_reports_total 0"));

  (*p)->Kill(SIGTERM);
  absl::StatusOr<int> rc = (*p)->Wait(absl::Seconds(10));
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 0);
  EXPECT_THAT((*p)->Stderr(), HasSubstr("kubernetes discovery failed"));
}

TEST_F(MainTest, RejectsAnUnknownConfigKey) {
  std::ofstream(dir_ + "/pmm.json") << R"({"grpc_adress": "127.0.0.1:0"})";
  absl::StatusOr<std::unique_ptr<testbed::Process>> p =
      testbed::Process::Start({SMIG_PROXIMITY, "--config=" + dir_ + "/pmm.json"}, dir_ + "/out");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> rc = (*p)->Wait(absl::Seconds(10));
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_EQ(*rc, 2);
  EXPECT_THAT((*p)->Stderr(), HasSubstr("grpc_adress"));
}

}  // namespace
}  // namespace smig::proximity
