// An idle session migrates (smig-dataplane end to end, real SCTP between namespaces): a VOD
// whose file has been sent whole, and a live feed that has paused. The new edge has no
// frame to send; its HELLO says where it goes on from, and the vehicle confirms it on
// that. The confirmation must reach the agent API within 2 RTT + 20 ms of ImportState
// (the goal of the "idle session cannot migrate" issue). The stack comes from
// $SMIG_TEST_STACK, as for the other suites.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "tests/integration/testbed.h"

namespace smig::dataplane {
namespace {

using testbed::Process;
using testbed::TwoHostNet;

std::string StackName() {
  const char* s = std::getenv("SMIG_TEST_STACK");
  return s ? s : "userland";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class IdleMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testbed::CanCreateNamespaces()) GTEST_SKIP() << "needs root for network namespaces";
    if (std::system("command -v ffmpeg >/dev/null") != 0) GTEST_SKIP() << "needs ffmpeg";
    absl::StatusOr<std::unique_ptr<TwoHostNet>> net = TwoHostNet::Create();
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = std::move(*net);
    dir_ = testbed::ScratchDir() + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/key") << "integration-test-deployment-key";
  }

  // The vehicle in namespace A with both radios; flow 0 goes to out.ts.
  std::unique_ptr<Process> StartVehicle() {
    std::ofstream(dir_ + "/vehicle.json") << absl::StrCat(
        R"({"role":"ROLE_VEHICLE","local_addresses":[")", TwoHostNet::AddrA(1), R"(",")",
        TwoHostNet::AddrA(2), R"("],"sctp_port":6000,"sctp_stack":")", StackName(),
        R"(","grpc_address":"unix:)", dir_, R"(/vehicle.sock","metrics_address":"127.0.0.1:0",)",
        R"("deployment_key_file":")", dir_, R"(/key","sinks":{"0":{"file":")", dir_,
        R"(/out.ts"}}})");
    return Start(net_->InA({SMIG_DATAPLANE, "--config=" + dir_ + "/vehicle.json"}), "vehicle");
  }
  // An edge in namespace B with its own UDP encapsulation port; `live_feed`: "name=ip:port".
  std::unique_ptr<Process> StartEdge(const std::string& name, int udp_port,
                                     const std::string& live_feed = "") {
    std::string extra = StackName() == "userland"
                            ? absl::StrCat(R"("udp_encaps_port":)", udp_port, ",")
                            : "";
    if (size_t eq = live_feed.find('='); eq != std::string::npos) {
      absl::StrAppend(&extra, R"("live_feeds":{")", live_feed.substr(0, eq), R"(":")",
                      live_feed.substr(eq + 1), R"("},)");
    }
    std::ofstream(dir_ + "/" + name + ".json") << absl::StrCat(
        R"({"role":"ROLE_EDGE","server_id":")", name, R"(","local_addresses":[")",
        TwoHostNet::AddrB(1), R"(",")", TwoHostNet::AddrB(2), R"("],"sctp_stack":")",
        StackName(), R"(",)", extra, R"("grpc_address":"unix:)", dir_, "/", name,
        R"(.sock","metrics_address":"127.0.0.1:0","deployment_key_file":")", dir_, R"(/key"})");
    return Start(net_->InB({SMIG_DATAPLANE, "--config=" + dir_ + "/" + name + ".json"}), name);
  }
  std::unique_ptr<Process> Start(const std::vector<std::string>& argv, const std::string& name) {
    absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(argv, dir_ + "/" + name + ".log");
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (Slurp(dir_ + "/" + name + ".log").find("grpc_port") == std::string::npos &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    Stub(name);
    channels_[name]->WaitForConnected(absl::ToChronoTime(deadline));
    return std::move(*p);
  }
  std::unique_ptr<v1::DataplaneAgent::Stub> Stub(const std::string& name) {
    std::shared_ptr<grpc::Channel>& channel = channels_[name];
    if (channel == nullptr) {
      channel = grpc::CreateChannel(absl::StrCat("unix:", dir_, "/", name, ".sock"),
                                    grpc::InsecureChannelCredentials());
    }
    return v1::DataplaneAgent::NewStub(channel);
  }
  std::string MakeStream(int seconds) {
    std::string path = dir_ + "/in.ts";
    std::string cmd = absl::StrCat(
        "ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t ", seconds,
        " -c:v mpeg2video -b:v 1500k -f mpegts -muxrate 2000k ", path);
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return path;
  }
  void Open(const std::string& edge, const std::string& file, const std::string& feed) {
    v1::OpenSessionRequest open;
    open.set_session_id(1);
    open.add_vehicle_addresses(TwoHostNet::AddrA(1));
    open.add_vehicle_addresses(TwoHostNet::AddrA(2));
    open.set_vehicle_port(6000);
    if (feed.empty()) {
      open.add_flows()->mutable_source()->set_file(file);
    } else {
      open.add_flows()->mutable_source()->set_live_feed(feed);
    }
    grpc::ClientContext ctx;
    v1::Session session;
    grpc::Status st = Stub(edge)->OpenSession(&ctx, open, &session);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  absl::StatusOr<v1::Session> Get(const std::string& daemon) {
    grpc::ClientContext c;
    v1::GetSessionRequest req;
    req.set_session_id(1);
    v1::Session s;
    grpc::Status st = Stub(daemon)->GetSession(&c, req, &s);
    if (!st.ok()) return absl::UnknownError(st.error_message());
    return s;
  }
  // Waits until the vehicle's flow 0 has stopped growing for `quiet` (the stream is idle).
  uint64_t WaitIdle(absl::Duration quiet) {
    uint64_t bytes = 0;
    absl::Time changed = absl::Now();
    for (absl::Time end = absl::Now() + absl::Seconds(40); absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(50))) {
      absl::StatusOr<v1::Session> s = Get("vehicle");
      uint64_t now_bytes = s.ok() && s->flows_size() == 1 ? s->flows(0).bytes() : 0;
      if (now_bytes != bytes) {
        bytes = now_bytes;
        changed = absl::Now();
      } else if (bytes > 0 && absl::Now() - changed >= quiet) {
        break;
      }
    }
    return bytes;
  }
  // The largest smoothed RTT of edge-a's association paths, as its stack reports it.
  absl::Duration Rtt() {
    absl::StatusOr<v1::Session> s = Get("edge-a");
    double ms = 0;
    if (s.ok()) {
      for (const auto& a : s->associations()) {
        for (const auto& p : a.paths()) ms = std::max(ms, p.srtt_ms());
      }
    }
    return absl::Milliseconds(ms);
  }

  // Moves the idle session 1 from edge-a to edge-b as the SMM does and returns how long
  // after ImportState was called the vehicle's confirmation arrived on WatchEvents.
  absl::Duration MigrateIdle(const std::string& what) {
    grpc::ClientContext watch_ctx;
    watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::WatchEventsRequest watch_req;
    watch_req.set_session_id(1);
    auto watch = Stub("vehicle")->WatchEvents(&watch_ctx, watch_req);
    absl::SleepFor(absl::Milliseconds(100));  // the stream is set up before the clock starts

    v1::SessionState state;
    {
      grpc::ClientContext ctx;
      v1::ExportStateRequest req;
      req.set_session_id(1);
      grpc::Status st = Stub("edge-a")->ExportState(&ctx, req, &state);
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    const absl::Duration rtt = Rtt();
    const absl::Time start = absl::Now();
    {
      grpc::ClientContext ctx;
      v1::ImportStateRequest req;
      *req.mutable_state() = state;
      v1::Session s;
      grpc::Status st = Stub("edge-b")->ImportState(&ctx, req, &s);
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    bool contiguous = false;
    for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
      contiguous = e.has_contiguous_generation() && e.contiguous_generation() == 2;
    }
    const absl::Duration took = absl::Now() - start;
    watch_ctx.TryCancel();
    EXPECT_TRUE(contiguous) << what << ": the vehicle never confirmed edge-b";
    std::cout << "[result] " << what << ": confirmed " << absl::FormatDuration(took)
              << " after ImportState (link srtt " << absl::FormatDuration(rtt) << ")\n";
    EXPECT_LE(took, 2 * rtt + absl::Milliseconds(20)) << what;
    // Without a frame from edge-b: it had nothing to send.
    absl::StatusOr<v1::Session> b = Get("edge-b");
    EXPECT_TRUE(b.ok() && b->flows_size() == 1 && b->flows(0).frames() == 0) << what;
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(1);
    v1::ReleaseSessionResponse resp;
    EXPECT_TRUE(Stub("edge-a")->ReleaseSession(&ctx, req, &resp).ok());
    return took;
  }

  std::unique_ptr<TwoHostNet> net_;
  std::string dir_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

TEST_F(IdleMigrationTest, AFinishedVodMigratesWithinTwoRttPlus20ms) {
  std::string in = MakeStream(2);
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  ASSERT_TRUE(vehicle && a && b);
  Open("edge-a", in, "");
  EXPECT_EQ(WaitIdle(absl::Milliseconds(500)), std::filesystem::file_size(in));
  MigrateIdle("finished VOD");
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in)) << "the player's file differs from the source";
}

TEST_F(IdleMigrationTest, APausedLiveFeedMigratesWithinTwoRttPlus20ms) {
  std::string in = MakeStream(2);
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899, "channel-1=127.0.0.1:5000");
  auto b = StartEdge("edge-b", 9900, "channel-1=127.0.0.1:5001");
  ASSERT_TRUE(vehicle && a && b);
  Open("edge-a", "", "channel-1");
  std::string outputs = "[f=mpegts]udp://127.0.0.1:5000?pkt_size=1316&bitrate=2000000|"
                        "[f=mpegts]udp://127.0.0.1:5001?pkt_size=1316&bitrate=2000000";
  auto encoder = Process::Start(net_->InB({"ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i",
                                           in, "-c", "copy", "-map", "0", "-f", "tee", outputs}),
                                dir_ + "/encoder.log");
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  // The feed sends for 2 s and then nothing: the channel has paused.
  ASSERT_EQ((*encoder)->Wait(absl::Seconds(30)).value_or(-1), 0) << (*encoder)->Stderr();
  EXPECT_GT(WaitIdle(absl::Milliseconds(500)), std::filesystem::file_size(in) / 2);
  MigrateIdle("paused live feed");
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);
}

}  // namespace
}  // namespace smig::dataplane
