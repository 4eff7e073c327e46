// Every gRPC method of every smig server, fed hostile input while a session streams:
// bytes no decoder accepts, fields on the wrong wire type, random well-formed requests,
// and requests over the configured maximum. Each gets an error of its own (never a crash,
// never UNKNOWN or UNAVAILABLE), every server stays healthy, and the streaming session
// arrives whole. The fixture is in dataplane_fixture.h.
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "smig/decision/v1/decision.pb.h"
#include "smig/migrator/v1/migrator.pb.h"
#include "smig/proximity/v1/proximity.pb.h"
#include "tests/integration/dataplane_fixture.h"
#include "tests/integration/grpc_prober.h"

namespace smig::dataplane::testing {
namespace {

constexpr int kMaxRequestBytes = 64 << 10;

struct Server {
  std::string name;     // its process and socket: dir_/<name>.sock
  std::string service;  // its own API
};

TEST_F(DataplaneTest, EveryGrpcMethodRefusesHostileInputAndTheStreamGoesOn) {
  // The services' descriptors, linked into this binary's pool for the prober.
  (void)proximity::v1::ProximityConfig::descriptor();
  (void)decision::v1::DecisionConfig::descriptor();
  (void)migrator::v1::MigratorConfig::descriptor();
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  const std::string limit = absl::StrCat(R"("max_request_bytes":)", kMaxRequestBytes, ",");
  agent_config_extra_ = limit;
  std::string in = MakeStream(10);
  auto vehicle = StartVehicle();
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);
  auto sock = [&](const std::string& name) { return absl::StrCat("unix:", dir_, "/", name, ".sock"); };
  auto service = [&](const std::string& name, const std::string& binary, const std::string& extra) {
    std::ofstream(dir_ + "/" + name + ".json")
        << "{" << limit << R"("grpc_address":")" << sock(name) << R"(","metrics_address":"off")"
        << extra << "}";
    return Start({binary, "--config=" + dir_ + "/" + name + ".json"}, name);
  };
  auto proximity = service("proximity", SMIG_PROXIMITY, "");
  auto migrator = service("migrator", SMIG_MIGRATOR,
                          absl::StrCat(R"(,"servers":[{"id":"edge-a","agent_address":")",
                                       sock("edge-a"), R"("}])"));
  auto decision = service("decision", SMIG_DECISION,
                          absl::StrCat(R"(,"proximity_address":")", sock("proximity"),
                                       R"(","migrator_address":")", sock("migrator"), R"(")"));
  ASSERT_TRUE(proximity && migrator && decision);
  Open("edge-a", in);

  const std::vector<Server> servers = {{"edge-a", "smig.dataplane.v1.DataplaneAgent"},
                                       {"vehicle", "smig.dataplane.v1.DataplaneAgent"},
                                       {"proximity", "smig.proximity.v1.Proximity"},
                                       {"decision", "smig.decision.v1.Decision"},
                                       {"migrator", "smig.migrator.v1.Migrator"}};
  // Under software CPU emulation (the project's VM) an answer can take longer than a
  // streaming call's 500 ms: fewer random requests, and more time for each stream.
  const bool emulated = std::getenv("SMIG_EMULATED_CPU") != nullptr;
  const testbed::ProbeOptions probe = {
      .random_messages = emulated ? 4 : 8,
      .seed = 7,
      .stream_deadline = emulated ? absl::Seconds(2) : absl::Milliseconds(500)};
  int calls = 0;
  for (const Server& s : servers) {
    auto channel = grpc::CreateChannel(sock(s.name), grpc::InsecureChannelCredentials());
    for (const std::string& api : {s.service, std::string("grpc.health.v1.Health")}) {
      std::vector<testbed::ProbeResult> results =
          testbed::ProbeEveryMethod(channel, api, probe);
      ASSERT_FALSE(results.empty()) << api << " is not linked into the test";
      std::map<std::string, std::map<std::string, int>> codes;  // method -> code -> calls
      for (const testbed::ProbeResult& r : results) {
        ++calls;
        const std::string what = absl::StrCat(s.name, " ", r.method, " (", r.input, "): ",
                                              r.code, " ", r.message);
        EXPECT_NE(r.code, grpc::StatusCode::UNAVAILABLE) << what;  // the server went away
        EXPECT_NE(r.code, grpc::StatusCode::UNKNOWN) << what;      // an error nobody mapped
        EXPECT_NE(r.code, grpc::StatusCode::DATA_LOSS) << what;
        if (r.input == "undecodable" && r.method == "/smig.proximity.v1.Proximity/ReportProximity") {
          // A client stream: gRPC's sync API shows the handler an undecodable message as
          // the stream's end (common/grpc_server.cc); nothing of it is applied.
          EXPECT_THAT(r.code, ::testing::AnyOf(grpc::StatusCode::OK,
                                               grpc::StatusCode::INVALID_ARGUMENT)) << what;
        } else if (r.input == "undecodable" && api == s.service) {
          EXPECT_EQ(r.code, grpc::StatusCode::INVALID_ARGUMENT) << what;
          EXPECT_THAT(r.message, ::testing::HasSubstr("is not a valid")) << what;
        } else if (api != s.service) {
          // gRPC's own health service decodes for itself: a non-OK code with a reason for
          // bytes that are no request, and for a service name over its 200 characters.
          if (r.input == "undecodable") {
            EXPECT_NE(r.code, grpc::StatusCode::OK) << what;
          }
          if (r.code != grpc::StatusCode::OK) {
            EXPECT_FALSE(r.message.empty()) << what;
          }
        } else {
          EXPECT_NE(r.code, grpc::StatusCode::INTERNAL) << what;  // decoded: ours to answer
        }
        ++codes[r.method][absl::StatusCodeToString(static_cast<absl::StatusCode>(r.code))];
      }
      for (const auto& [method, by_code] : codes) {
        std::cout << "[result] " << s.name << " " << method << ": "
                  << absl::StrJoin(by_code, ", ", absl::PairFormatter(" x")) << "\n";
      }
    }
    // Over the maximum: refused with both sizes named, before any handler.
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest big;
    big.set_service(std::string(kMaxRequestBytes + 1, 'x'));
    grpc::health::v1::HealthCheckResponse answer;
    grpc::Status st = health->Check(&ctx, big, &answer);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.name;
    EXPECT_THAT(st.error_message(), ::testing::HasSubstr(absl::StrCat(kMaxRequestBytes)));
    std::cout << "[result] " << s.name << " oversize request: " << st.error_code() << " "
              << st.error_message() << "\n";
    grpc::ClientContext ctx2;
    ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    st = health->Check(&ctx2, grpc::health::v1::HealthCheckRequest(), &answer);
    EXPECT_TRUE(st.ok()) << s.name << " after the hostile calls: " << st.error_message();
    EXPECT_EQ(answer.status(), grpc::health::v1::HealthCheckResponse::SERVING) << s.name;
  }

  // The session streamed through all of it and arrives whole.
  v1::Session session = WaitDelivered(std::filesystem::file_size(in));
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in)) << "the player got something else";
  std::cout << "[result] " << calls << " hostile calls; session 1 delivered "
            << std::filesystem::file_size(dir_ + "/out.ts") << " of "
            << std::filesystem::file_size(in) << " bytes\n";
  for (auto* p : {&decision, &migrator, &proximity, &edge, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&decision, &migrator, &proximity, &edge, &vehicle}) {
    EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0) << "exit status";
  }
}

}  // namespace
}  // namespace smig::dataplane::testing
