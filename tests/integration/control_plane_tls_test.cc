// The control plane over mutual TLS on TCP, as on Kubernetes: an edge agent, the PMM, the
// SMM and the MDM each serve TLS and require a client certificate from the deployment's
// CA, and reach each other with their client_tls. The calls that cross every hop work;
// a client without a certificate, or with one from another CA, is refused; an SMM
// without client_tls cannot reach the agent, and says which hop failed.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "smig/decision/v1/decision.grpc.pb.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "tests/integration/testbed.h"

namespace smig::testing {
namespace {

using testbed::Process;

class ControlPlaneTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null && command -v ffmpeg >/dev/null") != 0) {
      GTEST_SKIP() << "needs openssl and ffmpeg";
    }
    dir_ = testbed::ScratchDir() + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    // A deployment CA; one certificate for every server (127.0.0.1 and localhost) that
    // also serves as the services' client certificate; a second CA, for a stranger.
    absl::StatusOr<std::string> made = testbed::Sh(absl::StrCat(
        "cd ", dir_, " && for ca in ca other; do openssl req -x509 -newkey rsa:2048 -nodes ",
        "-days 1 -subj /CN=$ca -keyout $ca.key -out $ca.pem; done && ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=smig -keyout node.key -out node.csr && ",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && ",
        "openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 ",
        "-extfile san.ext -out node.pem && ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=stranger -keyout stranger.key ",
        "-out stranger.csr && openssl x509 -req -in stranger.csr -CA other.pem ",
        "-CAkey other.key -CAcreateserial -days 1 -out stranger.pem 2>&1"));
    ASSERT_TRUE(made.ok()) << made.status();
  }
  void TearDown() override {
    for (auto& [name, p] : procs_) p->Kill(SIGTERM);
    if (!HasFailure()) testbed::RemoveScratch(dir_);
  }

  std::string Tls() const {
    return absl::StrCat(R"("tls":{"cert_file":")", dir_, R"(/node.pem","key_file":")", dir_,
                        R"(/node.key","client_ca_file":")", dir_, R"(/ca.pem"})");
  }
  std::string ClientTls() const {
    return absl::StrCat(R"("client_tls":{"ca_file":")", dir_, R"(/ca.pem","cert_file":")", dir_,
                        R"(/node.pem","key_file":")", dir_, R"(/node.key"})");
  }
  // Starts `binary` with a config of `json` members; its gRPC address ("127.0.0.1:N").
  std::string Start(const std::string& name, const std::string& binary, const std::string& json) {
    std::ofstream(dir_ + "/" + name + ".json")
        << R"({"grpc_address":"127.0.0.1:0","metrics_address":"off",)" << json << "}";
    absl::StatusOr<std::unique_ptr<Process>> p =
        Process::Start({binary, "--config=" + dir_ + "/" + name + ".json"}, dir_ + "/" + name + ".log");
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return "";
    procs_[name] = std::move(*p);
    for (absl::Time end = absl::Now() + absl::Seconds(15); absl::Now() < end;) {
      std::ifstream log(dir_ + "/" + name + ".log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      if (size_t at = text.find("\"grpc_port\":"); at != std::string::npos) {
        int port = 0;
        if (absl::SimpleAtoi(text.substr(at + 12, text.find_first_of(",}", at) - at - 12), &port)) {
          return absl::StrCat("127.0.0.1:", port);
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << name << " never said it was ready: " << procs_[name]->Stderr();
    return "";
  }
  ClientCredentials Client(const std::string& cert, const std::string& ca = "ca") const {
    common::v1::ClientTlsConfig tls;
    tls.set_ca_file(dir_ + "/" + ca + ".pem");
    if (!cert.empty()) {
      tls.set_cert_file(dir_ + "/" + cert + ".pem");
      tls.set_key_file(dir_ + "/" + cert + ".key");
    }
    return *ClientCredentials::FromConfig(tls);
  }
  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<Process>> procs_;
};

migrator::v1::CreateSessionRequest NewSession(uint64_t id, const std::string& media) {
  migrator::v1::CreateSessionRequest req;
  req.set_session_id(id);
  req.set_vehicle_id("car-1");
  req.set_server_id("edge-a");
  req.add_vehicle_addresses("127.0.0.1");
  req.set_vehicle_port(6999);  // nobody: the session stays CONNECTING, which is enough here
  req.add_flows()->mutable_source()->set_file(media);
  return req;
}

TEST_F(ControlPlaneTlsTest, EveryHopSpeaksMutualTlsAndStrangersAreRefused) {
  const std::string media = dir_ + "/media.ts";
  absl::StatusOr<std::string> made = testbed::Sh(
      "ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 2 "
      "-c:v mpeg2video -b:v 1500k -f mpegts -muxrate 2000k " + media + " 2>&1");
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string edge = Start(
      "edge-a", SMIG_DATAPLANE,
      absl::StrCat(R"("role":"ROLE_EDGE","server_id":"edge-a","local_addresses":["127.0.0.1"],)",
                   R"("sctp_stack":"userland","udp_encaps_port":19899,)", Tls()));
  const std::string pmm = Start("proximity", SMIG_PROXIMITY, Tls());
  const std::string servers =
      absl::StrCat(R"("servers":[{"id":"edge-a","agent_address":")", edge, R"("}],)");
  const std::string smm = Start(
      "migrator", SMIG_MIGRATOR,
      absl::StrCat(servers, R"("proximity_address":")", pmm, R"(",)", Tls(), ",", ClientTls()));
  const std::string mdm = Start(
      "decision", SMIG_DECISION,
      absl::StrCat(R"("proximity_address":")", pmm, R"(","migrator_address":")", smm, R"(",)",
                   Tls(), ",", ClientTls()));
  // Vehicle -> PMM: proximity reports over mutual TLS.
  const std::string vehicle = Start(
      "vehicle", SMIG_DATAPLANE,
      absl::StrCat(R"("role":"ROLE_VEHICLE","local_addresses":["127.0.0.1"],"sctp_port":6998,)",
                   R"("sctp_stack":"userland","udp_encaps_port":19900,"proximity":{"pmm_address":")", pmm,
                   R"(","vehicle_id":"car-1","interval":"0.2s",)", ClientTls(), "},", Tls()));
  const std::string blind = Start("migrator-without-client-tls", SMIG_MIGRATOR,
                                  absl::StrCat(servers, Tls()));
  ASSERT_FALSE(edge.empty() || pmm.empty() || smm.empty() || mdm.empty() || blind.empty() ||
               vehicle.empty());

  // Test -> SMM -> edge agent: the session is opened on the edge.
  const ClientCredentials ops = Client("node");
  migrator::v1::Session created;
  grpc::Status st = migrator::v1::Migrator::NewStub(ops.Channel(smm))
                        ->CreateSession(Context().get(), NewSession(10, media), &created);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // Test -> vehicle agent: the session's key, as its creator hands it over; no listing
  // of the SMM shows it.
  EXPECT_EQ(created.session_key().size(), 32u);
  dataplane::v1::OpenSessionRequest admit;
  admit.set_session_id(10);
  admit.set_session_key(created.session_key());
  dataplane::v1::Session admitted;
  st = dataplane::v1::DataplaneAgent::NewStub(ops.Channel(vehicle))
           ->OpenSession(Context().get(), admit, &admitted);
  EXPECT_TRUE(st.ok()) << st.error_message();
  migrator::v1::ListSessionsResponse smm_sessions;
  st = migrator::v1::Migrator::NewStub(ops.Channel(smm))
           ->ListSessions(Context().get(), migrator::v1::ListSessionsRequest(), &smm_sessions);
  ASSERT_TRUE(st.ok()) << st.error_message();
  for (const migrator::v1::Session& s : smm_sessions.sessions()) {
    EXPECT_TRUE(s.session_key().empty());
  }
  dataplane::v1::Session on_edge;
  dataplane::v1::GetSessionRequest get;
  get.set_session_id(10);
  st = dataplane::v1::DataplaneAgent::NewStub(ops.Channel(edge))
           ->GetSession(Context().get(), get, &on_edge);
  EXPECT_TRUE(st.ok()) << st.error_message();
  // Test -> MDM -> SMM and PMM: an evaluation reads both.
  decision::v1::EvaluateRequest eval;
  eval.set_session_id(10);
  decision::v1::DecisionRecord record;
  st = decision::v1::Decision::NewStub(ops.Channel(mdm))->Evaluate(Context().get(), eval, &record);
  EXPECT_NE(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  std::cout << "[result] over mutual TLS: CreateSession OK, the edge serves session 10, MDM "
               "Evaluate: "
            << (st.ok() ? "OK" : st.error_message()) << "\n";

  proximity::v1::GetProximityRequest which;
  which.set_vehicle_id("car-1");
  proximity::v1::VehicleProximity seen;
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
    st = proximity::v1::Proximity::NewStub(ops.Channel(pmm))->GetProximity(Context().get(), which, &seen);
    if (st.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(st.ok()) << "the vehicle's reports never reached the PMM: " << st.error_message();

  // Strangers: plaintext, no certificate, a certificate from another CA.
  for (const auto& [who, creds] :
       {std::pair{"plaintext", ClientCredentials()}, std::pair{"no certificate", Client("")},
        std::pair{"another CA's certificate", Client("stranger")}}) {
    migrator::v1::ListSessionsResponse listed;
    st = migrator::v1::Migrator::NewStub(creds.Channel(smm))
             ->ListSessions(Context().get(), {}, &listed);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << who;
    std::cout << "[result] " << who << " to the SMM: " << st.error_code() << " "
              << st.error_message() << "\n";
  }
  // An SMM without client_tls: its agent refuses it, and the error names the hop.
  st = migrator::v1::Migrator::NewStub(ops.Channel(blind))
           ->CreateSession(Context().get(), NewSession(11, media), &created);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("edge-a"));
  std::cout << "[result] SMM without client_tls: " << st.error_message() << "\n";
}

}  // namespace
}  // namespace smig::testing
