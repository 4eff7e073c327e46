// The SMM's gRPC agent client against a recording agent: the fencing token reaches the
// wire in each fenced call, and an agent that is down is reported by its reason only (the
// caller names the hop).
#include "services/migrator/agent_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/recording_agent.h"

namespace smig::migrator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A loopback port nothing listens on (a server took it and let it go).
int DeadPort() {
  testing::RecordingAgent gone("gone");
  absl::StatusOr<std::unique_ptr<GrpcServer>> s =
      GrpcServer::Start({.metrics_address = ""}, {&gone}, nullptr);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? (*s)->grpc_port() : 1;  // the server stops as it goes out of scope
}

v1::StaticServer Server(const std::string& id, const std::string& address) {
  v1::StaticServer s;
  s.set_id(id);
  s.set_agent_address(address);
  return s;
}

TEST(GrpcAgentTest, FencedCallsCarryTheTokenOnTheWire) {
  testing::RecordingAgent recorder("edge-1");
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.metrics_address = ""}, {&recorder}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->grpc_port());
  std::unique_ptr<AgentDirectory> agents =
      MakeGrpcAgentDirectory({Server("edge-1", address)}, "", {});
  absl::StatusOr<std::shared_ptr<Agent>> edge = agents->Find("edge-1");
  ASSERT_TRUE(edge.ok()) << edge.status();
  EXPECT_EQ((*edge)->server_id(), "edge-1");
  EXPECT_EQ((*edge)->address(), address);

  dv1::OpenSessionRequest open;
  open.set_session_id(7);
  open.set_fencing_token(57);
  ASSERT_TRUE((*edge)->OpenSession(open).ok());
  dv1::SessionState state;
  state.set_session_id(7);
  state.set_generation(2);
  ASSERT_TRUE((*edge)->ImportState(state, 58).ok());
  ASSERT_TRUE((*edge)->ReleaseSession(7, 59).ok());
  ASSERT_TRUE((*edge)->ReleaseSession(7, kUnfenced).ok());

  ASSERT_EQ(recorder.opens().size(), 1u);
  EXPECT_EQ(recorder.opens()[0].fencing_token(), 57u);
  ASSERT_EQ(recorder.imports().size(), 1u);
  EXPECT_EQ(recorder.imports()[0].fencing_token(), 58u);
  EXPECT_EQ(recorder.imports()[0].state().generation(), 2u);
  ASSERT_EQ(recorder.releases().size(), 2u);
  EXPECT_EQ(recorder.releases()[0].fencing_token(), 59u);
  EXPECT_EQ(recorder.releases()[1].fencing_token(), 0u);
  EXPECT_TRUE((*edge)->Ping().ok());
}

TEST(GrpcAgentTest, PingOfAnAgentThatIsDownSaysWhyWithoutNamingIt) {
  const std::string address = absl::StrCat("127.0.0.1:", DeadPort());
  std::unique_ptr<AgentDirectory> agents =
      MakeGrpcAgentDirectory({Server("edge-2", address)}, "", {.rpc_timeout = absl::Seconds(2)});
  absl::StatusOr<std::shared_ptr<Agent>> edge = agents->Find("edge-2");
  ASSERT_TRUE(edge.ok()) << edge.status();
  absl::Status s = (*edge)->Ping();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), StartsWith("UNAVAILABLE: "));  // gRPC's code, then its reason
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("edge-2")));
  // The other calls name the call and the hop themselves.
  absl::StatusOr<dv1::Session> got = (*edge)->GetSession(7);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), StartsWith(absl::StrCat("GetSession at edge-2 (", address, "): ")));
}

}  // namespace
}  // namespace smig::migrator
