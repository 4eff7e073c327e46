// smig-dataplane end to end: a vehicle (two radios) and edges in their own network
// namespaces, a real MPEG-TS file served as VOD, the agent API over gRPC (unix sockets,
// which every namespace can reach), and checks on what the player side receives.
// The stack comes from $SMIG_TEST_STACK, as for the transport suite.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
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

class DataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testbed::CanCreateNamespaces()) GTEST_SKIP() << "needs root for network namespaces";
    if (std::system("command -v ffmpeg >/dev/null") != 0) GTEST_SKIP() << "needs ffmpeg";
    absl::StatusOr<std::unique_ptr<TwoHostNet>> net = TwoHostNet::Create();
    ASSERT_TRUE(net.ok()) << net.status();
    net_ = std::move(*net);
    dir_ = testbed::ScratchDir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/key") << "integration-test-deployment-key";
  }

  // A vehicle in namespace A with both radios, delivering flow 0 to a file (or, given a
  // UDP address, to a player there).
  std::unique_ptr<Process> StartVehicle(const std::string& udp_player = "") {
    std::string sink = udp_player.empty() ? absl::StrCat(R"({"file":")", dir_, R"(/out.ts"})")
                                          : absl::StrCat(R"({"udp":")", udp_player, R"("})");
    std::ofstream(dir_ + "/vehicle.json") << absl::StrCat(
        R"({"role":"ROLE_VEHICLE","local_addresses":[")", TwoHostNet::AddrA(1), R"(",")",
        TwoHostNet::AddrA(2), R"("],"sctp_port":6000,"sctp_stack":")", StackName(),
        R"(","grpc_address":"unix:)", dir_, R"(/vehicle.sock","metrics_address":"off",)",
        R"("deployment_key_file":")", dir_, R"(/key","sinks":{"0":)", sink, "}}");
    return Start(net_->InA({SMIG_DATAPLANE, "--config=" + dir_ + "/vehicle.json"}), "vehicle");
  }
  // An edge in namespace B; edges sharing B need their own UDP encapsulation port.
  std::unique_ptr<Process> StartEdge(const std::string& name, int udp_port = 9899) {
    std::string encaps = StackName() == "userland"
                             ? absl::StrCat(R"("udp_encaps_port":)", udp_port, ",")
                             : "";
    std::ofstream(dir_ + "/" + name + ".json") << absl::StrCat(
        R"({"role":"ROLE_EDGE","server_id":")", name, R"(","local_addresses":[")",
        TwoHostNet::AddrB(1), R"(",")", TwoHostNet::AddrB(2), R"("],"sctp_stack":")",
        StackName(), R"(",)", encaps, R"("grpc_address":"unix:)", dir_, "/", name,
        R"(.sock","metrics_address":"off","deployment_key_file":")", dir_, R"(/key"})");
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
    return std::move(*p);
  }
  std::unique_ptr<v1::DataplaneAgent::Stub> Stub(const std::string& name) {
    return v1::DataplaneAgent::NewStub(grpc::CreateChannel(
        absl::StrCat("unix:", dir_, "/", name, ".sock"), grpc::InsecureChannelCredentials()));
  }
  // Makes `seconds` of MPEG-TS test video at about 2 Mbit/s.
  std::string MakeStream(int seconds) {
    std::string path = dir_ + "/in.ts";
    std::string cmd = absl::StrCat(
        "ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t ", seconds,
        " -c:v mpeg2video -b:v 1500k -f mpegts -muxrate 2000k ", path);
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return path;
  }
  static int DecodedFrames(const std::string& path) {
    absl::StatusOr<std::string> out = testbed::Sh(
        "ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames "
        "-of csv=p=0 " + path);
    return out.ok() ? std::atoi(out->c_str()) : -1;
  }

  // Opens session 1 on `edge` with one flow from a file, or from live UDP at "udp:ip:port".
  void Open(const std::string& edge, const std::string& source) {
    v1::OpenSessionRequest open;
    open.set_session_id(1);
    open.add_vehicle_addresses(TwoHostNet::AddrA(1));
    open.add_vehicle_addresses(TwoHostNet::AddrA(2));
    open.set_vehicle_port(6000);
    if (source.rfind("udp:", 0) == 0) {
      open.add_flows()->mutable_source()->set_udp_listen(source.substr(4));
    } else {
      open.add_flows()->mutable_source()->set_file(source);
    }
    grpc::ClientContext ctx;
    v1::Session session;
    grpc::Status st = Stub(edge)->OpenSession(&ctx, open, &session);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // The vehicle's view of session 1 once it delivered `bytes` (or after 30 s).
  v1::Session WaitDelivered(size_t bytes) {
    v1::Session s;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      grpc::ClientContext c;
      v1::GetSessionRequest req;
      req.set_session_id(1);
      if (Stub("vehicle")->GetSession(&c, req, &s).ok() && s.flows_size() == 1 &&
          s.flows(0).bytes() >= bytes) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return s;
  }

  std::unique_ptr<TwoHostNet> net_;
  std::string dir_;
};

TEST_F(DataplaneTest, VodFileArrivesByteIdenticalAndDecodesFully) {
  std::string in = MakeStream(4);
  auto vehicle = StartVehicle();
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);

  Open("edge-a", in);
  WaitDelivered(std::filesystem::file_size(in));
  edge->Kill(SIGTERM);
  vehicle->Kill(SIGTERM);
  ASSERT_EQ(edge->Wait(absl::Seconds(10)).value_or(-1), 0) << Slurp(dir_ + "/edge-a.log.err");
  ASSERT_EQ(vehicle->Wait(absl::Seconds(10)).value_or(-1), 0) << Slurp(dir_ + "/vehicle.log.err");

  std::string sent = Slurp(in), got = Slurp(dir_ + "/out.ts");
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "the player's file differs from the source";
  int frames_in = DecodedFrames(in), frames_out = DecodedFrames(dir_ + "/out.ts");
  std::cout << "[result] " << sent.size() << " bytes, decoded frames " << frames_in << " -> "
            << frames_out << "\n";
  EXPECT_GT(frames_in, 90);
  EXPECT_EQ(frames_out, frames_in);
}

TEST_F(DataplaneTest, MigrationMidStreamKeepsTheFileByteIdentical) {
  std::string in = MakeStream(8);
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  ASSERT_TRUE(vehicle && a && b);
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::WatchEventsRequest watch_req;
  watch_req.set_session_id(1);
  auto watch = Stub("vehicle")->WatchEvents(&watch_ctx, watch_req);

  Open("edge-a", in);
  absl::SleepFor(absl::Seconds(2));
  v1::SessionState state;
  {
    grpc::ClientContext ctx;
    v1::ExportStateRequest req;
    req.set_session_id(1);
    grpc::Status st = Stub("edge-a")->ExportState(&ctx, req, &state);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  {
    grpc::ClientContext ctx;
    v1::ImportStateRequest req;
    *req.mutable_state() = state;
    v1::Session s;
    grpc::Status st = Stub("edge-b")->ImportState(&ctx, req, &s);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  bool contiguous = false;
  for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
    contiguous = e.has_contiguous_generation() && e.contiguous_generation() == 2;
  }
  ASSERT_TRUE(contiguous) << "the vehicle never saw edge-b's stream contiguous";
  watch_ctx.TryCancel();
  {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(1);
    v1::ReleaseSessionResponse resp;
    ASSERT_TRUE(Stub("edge-a")->ReleaseSession(&ctx, req, &resp).ok());
  }
  v1::Session seen = WaitDelivered(std::filesystem::file_size(in));
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);

  std::string sent = Slurp(in), got = Slurp(dir_ + "/out.ts");
  std::cout << "[result] " << sent.size() << " bytes sent, " << got.size() << " delivered, "
            << seen.flows(0).duplicates_dropped() << " duplicate frames dropped\n";
  EXPECT_TRUE(got == sent) << "the player's file differs from the source";
  EXPECT_GT(seen.flows(0).duplicates_dropped(), 0u);  // both edges sent for a while
  EXPECT_EQ(DecodedFrames(dir_ + "/out.ts"), DecodedFrames(in));
}

TEST_F(DataplaneTest, ARadioDiesMidStreamAndThePlayerLosesNothing) {
  std::string in = MakeStream(6);
  auto vehicle = StartVehicle();
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);
  Open("edge-a", in);
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(net_->SetLink(1, false).ok());  // the primary radio (first vehicle address)
  v1::Session seen = WaitDelivered(std::filesystem::file_size(in));
  ASSERT_TRUE(net_->SetLink(1, true).ok());
  edge->Kill(SIGTERM);
  vehicle->Kill(SIGTERM);
  EXPECT_EQ(edge->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(vehicle->Wait(absl::Seconds(10)).value_or(-1), 0);
  ASSERT_EQ(seen.flows_size(), 1);
  absl::Duration gap = absl::Nanoseconds(
      google::protobuf::util::TimeUtil::DurationToNanoseconds(seen.flows(0).max_delivery_gap()));
  std::cout << "[result] largest delivery gap with a radio down: " << absl::FormatDuration(gap)
            << "\n";
  EXPECT_LE(gap, absl::Milliseconds(300));
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in)) << "the player's file differs from the source";
}

// A live 20 s MPEG-TS stream: ffmpeg sends it over UDP to the edge, the vehicle hands it
// over UDP to an ffmpeg decoder, which must decode every frame with no continuity error.
TEST_F(DataplaneTest, LiveUdpStreamReachesADecoderWhole) {
  std::string in = MakeStream(20);
  int frames_in = DecodedFrames(in);
  auto decoder = Process::Start(
      net_->InA({"ffmpeg", "-nostdin", "-loglevel", "level+debug", "-i",
                 "udp://127.0.0.1:5004?timeout=4000000&fifo_size=1000000&overrun_nonfatal=1",
                 "-f", "null", "-"}),
      dir_ + "/decoder.log");
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  auto vehicle = StartVehicle("127.0.0.1:5004");
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);
  Open("edge-a", "udp:127.0.0.1:5000");
  auto feed = Process::Start(
      net_->InB({"ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", in, "-c", "copy", "-f",
                 "mpegts", "udp://127.0.0.1:5000?pkt_size=1316&bitrate=2000000"}),
      dir_ + "/feed.log");
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ((*feed)->Wait(absl::Seconds(60)).value_or(-1), 0) << (*feed)->Stderr();
  // The decoder ends 4 s after the last datagram (its timeout).
  EXPECT_TRUE((*decoder)->Wait(absl::Seconds(30)).ok());
  edge->Kill(SIGTERM);
  vehicle->Kill(SIGTERM);
  EXPECT_EQ(edge->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(vehicle->Wait(absl::Seconds(10)).value_or(-1), 0);

  std::string log = (*decoder)->Stderr();
  size_t cc_errors = 0;
  for (size_t at = 0; (at = log.find("Continuity check failed", at)) != std::string::npos; ++at) {
    ++cc_errors;
  }
  // The last progress line says how many frames the decoder produced.
  int frames_out = -1;
  size_t at = log.rfind("frame=");
  if (at != std::string::npos) frames_out = std::atoi(log.c_str() + at + 6);
  std::cout << "[result] frames sent " << frames_in << ", decoded " << frames_out
            << ", continuity errors " << cc_errors << "\n";
  EXPECT_EQ(cc_errors, 0u);
  EXPECT_EQ(frames_out, frames_in);
}

}  // namespace
}  // namespace smig::dataplane
