// smig-dataplane end to end: a vehicle (two radios) and edges in their own network
// namespaces, a real MPEG-TS file served as VOD, the agent API over gRPC (unix sockets,
// which every namespace can reach), and checks on what the player side receives.
// The stack comes from $SMIG_TEST_STACK, as for the transport suite.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/netns.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
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
  // UDP address, to a player there), and flow 1 to out1.ts.
  std::unique_ptr<Process> StartVehicle(const std::string& udp_player = "") {
    std::string sink = udp_player.empty() ? absl::StrCat(R"({"file":")", dir_, R"(/out.ts"})")
                                          : absl::StrCat(R"({"udp":")", udp_player, R"("})");
    sink += absl::StrCat(R"(,"1":{"file":")", dir_, R"(/out1.ts"})");
    std::ofstream(dir_ + "/vehicle.json") << absl::StrCat(
        R"({"role":"ROLE_VEHICLE","local_addresses":[")", TwoHostNet::AddrA(1), R"(",")",
        TwoHostNet::AddrA(2), R"("],"sctp_port":6000,"sctp_stack":")", StackName(),
        R"(","grpc_address":"unix:)", dir_, R"(/vehicle.sock","metrics_address":"127.0.0.1:0",)",
        R"("deployment_key_file":")", dir_, R"(/key","sinks":{"0":)", sink, "}}");
    return Start(net_->InA({SMIG_DATAPLANE, "--config=" + dir_ + "/vehicle.json"}), "vehicle");
  }
  // An edge in namespace B; edges sharing B need their own UDP encapsulation port.
  // `live_feed`: "name=ip:port", a standing feed it ingests.
  std::unique_ptr<Process> StartEdge(const std::string& name, int udp_port = 9899,
                                     const std::string& key = "key",
                                     const std::string& live_feed = "") {
    std::string encaps = StackName() == "userland"
                             ? absl::StrCat(R"("udp_encaps_port":)", udp_port, ",")
                             : "";
    if (size_t eq = live_feed.find('='); eq != std::string::npos) {
      encaps += absl::StrCat(R"("live_feeds":{")", live_feed.substr(0, eq), R"(":")",
                             live_feed.substr(eq + 1), R"("},)");
    }
    std::ofstream(dir_ + "/" + name + ".json") << absl::StrCat(
        R"({"role":"ROLE_EDGE","server_id":")", name, R"(","local_addresses":[")",
        TwoHostNet::AddrB(1), R"(",")", TwoHostNet::AddrB(2), R"("],"sctp_stack":")",
        StackName(), R"(",)", encaps, R"("grpc_address":"unix:)", dir_, "/", name,
        R"(.sock","metrics_address":"127.0.0.1:0","deployment_key_file":")", dir_, "/", key,
        R"("})");
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
    if (std::filesystem::exists(absl::StrCat(dir_, "/", name, ".sock"))) {
      channels_.erase(name);  // a restarted daemon: a new channel
      Stub(name);
      channels_[name]->WaitForConnected(absl::ToChronoTime(deadline));
    }
    return std::move(*p);
  }
  // One channel per daemon, kept like the SMM keeps its agents' (a channel per call would
  // load the machine with connection set-ups during every migration).
  std::unique_ptr<v1::DataplaneAgent::Stub> Stub(const std::string& name) {
    std::shared_ptr<grpc::Channel>& channel = channels_[name];
    if (channel == nullptr) {
      channel = grpc::CreateChannel(absl::StrCat("unix:", dir_, "/", name, ".sock"),
                                    grpc::InsecureChannelCredentials());
    }
    return v1::DataplaneAgent::NewStub(channel);
  }
  // /metrics of a daemon started above (`name`), read from inside its namespace.
  std::string Metrics(const std::string& name, const std::string& netns) {
    std::string log = Slurp(dir_ + "/" + name + ".log");
    size_t at = log.find("\"metrics_port\":");
    if (at == std::string::npos) return "";
    int port = std::atoi(log.c_str() + at + 15);
    std::string page;
    EXPECT_TRUE(RunInNetns(netns, [&] {
                  page = testbed::HttpGet(port, "/metrics");
                  return absl::OkStatus();
                }).ok());
    return page;
  }
  // Makes `seconds` of MPEG-TS test video at about 2 Mbit/s (`pattern`: an ffmpeg test source).
  std::string MakeStream(int seconds, const std::string& name = "in",
                         const std::string& pattern = "testsrc2") {
    std::string path = dir_ + "/" + name + ".ts";
    std::string cmd = absl::StrCat(
        "ffmpeg -loglevel error -y -f lavfi -i ", pattern, "=size=320x240:rate=25 -t ", seconds,
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

  // Opens session 1 on `edge` with one flow from a file, from live UDP at "udp:ip:port",
  // or from a standing live feed "feed:name".
  void Open(const std::string& edge, const std::string& source, uint64_t session_id = 1) {
    v1::OpenSessionRequest open;
    open.set_session_id(session_id);
    open.add_vehicle_addresses(TwoHostNet::AddrA(1));
    open.add_vehicle_addresses(TwoHostNet::AddrA(2));
    open.set_vehicle_port(6000);
    if (source.rfind("udp:", 0) == 0) {
      open.add_flows()->mutable_source()->set_udp_listen(source.substr(4));
    } else if (source.rfind("feed:", 0) == 0) {
      open.add_flows()->mutable_source()->set_live_feed(source.substr(5));
    } else {
      open.add_flows()->mutable_source()->set_file(source);
    }
    grpc::ClientContext ctx;
    v1::Session session;
    grpc::Status st = Stub(edge)->OpenSession(&ctx, open, &session);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  static int ContinuityErrors(const std::string& decoder_log) {
    int n = 0;
    for (size_t at = 0; (at = decoder_log.find("Continuity check failed", at)) != std::string::npos;
         ++at) {
      ++n;
    }
    return n;
  }
  v1::SessionState Export(const std::string& edge) {
    grpc::ClientContext ctx;
    v1::ExportStateRequest req;
    req.set_session_id(1);
    v1::SessionState state;
    grpc::Status st = Stub(edge)->ExportState(&ctx, req, &state);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return state;
  }
  grpc::Status Import(const std::string& edge, const v1::SessionState& state) {
    grpc::ClientContext ctx;
    v1::ImportStateRequest req;
    *req.mutable_state() = state;
    v1::Session s;
    return Stub(edge)->ImportState(&ctx, req, &s);
  }
  grpc::Status Release(const std::string& edge) {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(1);
    v1::ReleaseSessionResponse resp;
    return Stub(edge)->ReleaseSession(&ctx, req, &resp);
  }
  // Waits until `edge` serves no session any more (its graceful shutdown is complete).
  bool WaitReleased(const std::string& edge, absl::Duration timeout = absl::Seconds(10)) {
    for (absl::Time end = absl::Now() + timeout; absl::Now() < end;
         absl::SleepFor(absl::Milliseconds(50))) {
      grpc::ClientContext ctx;
      v1::ListSessionsResponse resp;
      if (Stub(edge)->ListSessions(&ctx, {}, &resp).ok() && resp.sessions().empty()) return true;
    }
    return false;
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

  struct Window {
    absl::Time from, to;
  };
  // Moves session 1 `n` times, edge-a -> edge-b -> edge-a ..., through the agent API as the
  // SMM would (export, import, wait until the vehicle reports the new edge contiguous,
  // release the old one), pausing `pause` after each. Each window covers a migration, its
  // release and what was in flight at its end.
  std::vector<Window> MigrateBackAndForth(int n, absl::Duration pause) {
    grpc::ClientContext watch_ctx;
    watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::WatchEventsRequest watch_req;
    watch_req.set_session_id(1);
    auto watch = Stub("vehicle")->WatchEvents(&watch_ctx, watch_req);
    std::vector<Window> windows;
    const std::string edges[2] = {"edge-a", "edge-b"};
    for (int i = 0; i < n; ++i) {
      const std::string& from = edges[i % 2];
      const std::string& to = edges[(i + 1) % 2];
      absl::Time start = absl::Now();
      grpc::Status st = Import(to, Export(from));
      EXPECT_TRUE(st.ok()) << "migration " << i + 1 << ": " << st.error_message();
      if (!st.ok()) break;
      bool contiguous = false;
      for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
        contiguous = e.has_contiguous_generation() &&
                     e.contiguous_generation() == static_cast<uint64_t>(i + 2);
      }
      EXPECT_TRUE(contiguous) << "migration " << i + 1 << ": " << to << " never became contiguous";
      EXPECT_TRUE(Release(from).ok());
      EXPECT_TRUE(WaitReleased(from)) << from << " did not finish releasing";
      if (!contiguous) break;
      windows.push_back({start, absl::Now() + absl::Milliseconds(100)});
      std::cout << "[migration " << i + 1 << "] " << from << " -> " << to << " in "
                << absl::FormatDuration(windows.back().to - start - absl::Milliseconds(100)) << "\n";
      absl::SleepFor(pause);
    }
    watch_ctx.TryCancel();
    return windows;
  }

  struct Played {
    int frames_in, frames_out, cc_errors;
  };
  // What the player got (`got`) must be `sent` byte for byte, and an ffmpeg decoder must
  // find in it every frame of the source file `in`, with no continuity error.
  Played ExpectPlayedWhole(const std::string& sent, const std::string& got, const std::string& in) {
    EXPECT_EQ(got.size(), sent.size()) << "bytes lost (or repeated) at the player";
    EXPECT_TRUE(got == sent) << "the player's stream differs from what was sent";
    std::ofstream(dir_ + "/played.ts", std::ios::binary) << got;
    absl::StatusOr<std::string> decoded = testbed::Sh(
        "ffmpeg -nostdin -loglevel level+debug -i " + dir_ + "/played.ts -f null - 2>&1");
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    Played p{DecodedFrames(in), DecodedFrames(dir_ + "/played.ts"),
             decoded.ok() ? ContinuityErrors(*decoded) : -1};
    EXPECT_EQ(p.cc_errors, 0);
    EXPECT_EQ(p.frames_out, p.frames_in);
    return p;
  }

  struct Gaps {
    absl::Duration p50, p99, max;  // steady state: outside every window
    absl::Duration worst_migration;
  };
  // Gaps between consecutive datagrams at the player, by whether they began inside a
  // migration's window (one already running when a migration started was not caused by
  // it); the first second is start-up, not steady state. Prints each window's worst.
  static Gaps PlayerGaps(const std::vector<testbed::UdpRecorder::Datagram>& d,
                         const std::vector<Window>& windows) {
    std::vector<absl::Duration> steady;
    Gaps g{.worst_migration = absl::ZeroDuration()};
    std::vector<std::pair<absl::Duration, absl::Duration>> per_window(windows.size());
    for (size_t k = 1; k < d.size(); ++k) {
      absl::Duration gap = d[k].at - d[k - 1].at;
      auto w = std::find_if(windows.begin(), windows.end(), [&](const Window& win) {
        return d[k - 1].at >= win.from && d[k - 1].at <= win.to;
      });
      if (w != windows.end()) {
        g.worst_migration = std::max(g.worst_migration, gap);
        auto& [worst, when] = per_window[w - windows.begin()];
        if (gap > worst) {
          worst = gap;
          when = d[k].at - w->from;
        }
      } else if (d[k].at - d.front().at > absl::Seconds(1)) {
        steady.push_back(gap);
      }
    }
    EXPECT_GT(steady.size(), 500u);
    if (steady.empty()) return g;
    for (size_t i = 0; i < per_window.size(); ++i) {
      std::cout << "[migration " << i + 1 << "] largest player gap "
                << absl::FormatDuration(per_window[i].first) << ", ending "
                << absl::FormatDuration(per_window[i].second) << " after the migration began\n";
    }
    std::sort(steady.begin(), steady.end());
    g.p50 = steady[steady.size() / 2];
    g.p99 = steady[steady.size() * 99 / 100];
    g.max = steady.back();
    return g;
  }
  // The goal: nothing during a migration beyond the steady state's p99 + 5 ms (`what`:
  // the measure, e.g. the gap between datagrams). Under software CPU emulation (the
  // kvm-sctp VM on hosts without vmx/svm) the timing measures the emulator; a miss there
  // is reported as skipped with its numbers, not judged.
  void JudgeGoal(const std::string& what, absl::Duration worst, absl::Duration p99) {
    if (worst > p99 + absl::Milliseconds(5) && std::getenv("SMIG_EMULATED_CPU") && !HasFailure()) {
      GTEST_SKIP() << what << " goal not judged under software CPU emulation: largest during a "
                   << "migration " << absl::FormatDuration(worst) << " vs steady p99 "
                   << absl::FormatDuration(p99) << " + 5 ms (everything else passed)";
    }
    EXPECT_LE(worst, p99 + absl::Milliseconds(5)) << what;
  }
  std::string SteadyAndWorst(const Gaps& g) {
    return absl::StrCat("steady-state gap p50 ", absl::FormatDuration(g.p50), " p99 ",
                        absl::FormatDuration(g.p99), " max ", absl::FormatDuration(g.max),
                        "; largest gap during a migration ",
                        absl::FormatDuration(g.worst_migration));
  }

  std::unique_ptr<TwoHostNet> net_;
  std::string dir_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
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

// Two flows of one session, each on its own SCTP stream, through a migration: both files
// arrive byte-identical.
TEST_F(DataplaneTest, TwoFlowsOfOneSessionEachArriveWhole) {
  std::string in0 = MakeStream(6, "in0");
  std::string in1 = MakeStream(6, "in1", "smptebars");
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  ASSERT_TRUE(vehicle && a && b);
  v1::OpenSessionRequest open;
  open.set_session_id(1);
  open.add_vehicle_addresses(TwoHostNet::AddrA(1));
  open.add_vehicle_addresses(TwoHostNet::AddrA(2));
  open.set_vehicle_port(6000);
  v1::FlowState* f0 = open.add_flows();
  f0->set_flow_id(0);
  f0->mutable_source()->set_file(in0);
  v1::FlowState* f1 = open.add_flows();
  f1->set_flow_id(1);
  f1->mutable_source()->set_file(in1);
  {
    grpc::ClientContext ctx;
    v1::Session session;
    grpc::Status st = Stub("edge-a")->OpenSession(&ctx, open, &session);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  absl::SleepFor(absl::Seconds(2));
  grpc::Status imported = Import("edge-b", Export("edge-a"));
  ASSERT_TRUE(imported.ok()) << imported.error_message();
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(Release("edge-a").ok());
  size_t total = std::filesystem::file_size(in0) + std::filesystem::file_size(in1);
  for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
    grpc::ClientContext c;
    v1::GetSessionRequest req;
    req.set_session_id(1);
    v1::Session s;
    if (Stub("vehicle")->GetSession(&c, req, &s).ok() && s.flows_size() == 2 &&
        s.flows(0).bytes() + s.flows(1).bytes() >= total) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in0)) << "flow 0 differs from its source";
  EXPECT_TRUE(Slurp(dir_ + "/out1.ts") == Slurp(in1)) << "flow 1 differs from its source";
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
  grpc::Status imported = Import("edge-b", Export("edge-a"));
  ASSERT_TRUE(imported.ok()) << imported.error_message();
  bool contiguous = false;
  for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
    contiguous = e.has_contiguous_generation() && e.contiguous_generation() == 2;
  }
  ASSERT_TRUE(contiguous) << "the vehicle never saw edge-b's stream contiguous";
  watch_ctx.TryCancel();
  ASSERT_TRUE(Release("edge-a").ok());
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
  absl::Duration gap = FromProto(seen.flows(0).max_delivery_gap());
  std::cout << "[result] largest delivery gap with a radio down: " << absl::FormatDuration(gap)
            << "\n";
  EXPECT_LE(gap, absl::Milliseconds(300));
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in)) << "the player's file differs from the source";
}

// A tunnel: both radios are dead for 4 s. SCTP gives the association up; the edge
// connects again once a radio is back, and sends again from where the player is (what
// went out on the dead association never arrived). The player's file is still whole.
TEST_F(DataplaneTest, BothRadiosDeadForSecondsThenTheStreamResumesWhole) {
  std::string in = MakeStream(12);
  auto vehicle = StartVehicle();
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);
  Open("edge-a", in);
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(net_->SetLink(1, false).ok());
  ASSERT_TRUE(net_->SetLink(2, false).ok());
  absl::SleepFor(absl::Seconds(4));
  ASSERT_TRUE(net_->SetLink(1, true).ok());
  ASSERT_TRUE(net_->SetLink(2, true).ok());
  WaitDelivered(std::filesystem::file_size(in));
  std::string edge_metrics = Metrics("edge-a", net_->ns_b());
  edge->Kill(SIGTERM);
  vehicle->Kill(SIGTERM);
  EXPECT_EQ(edge->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(vehicle->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(in)) << "the player's file differs from the source";
  EXPECT_THAT(edge_metrics, ::testing::ContainsRegex("smig_frames_resent_total [1-9]"));
  size_t at = edge_metrics.find("\nsmig_frames_resent_total ");
  std::cout << "[result] " << Slurp(dir_ + "/out.ts").size() << " of " << Slurp(in).size()
            << " bytes after a 4 s outage of both radios; "
            << (at == std::string::npos ? ""
                                        : edge_metrics.substr(at + 1, edge_metrics.find('\n', at + 1) - at - 1))
            << "\n";
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
  int cc_errors = ContinuityErrors(log);
  // The last progress line says how many frames the decoder produced.
  int frames_out = -1;
  size_t at = log.rfind("frame=");
  if (at != std::string::npos) frames_out = std::atoi(log.c_str() + at + 6);
  std::cout << "[result] frames sent " << frames_in << ", decoded " << frames_out
            << ", continuity errors " << cc_errors << "\n";
  EXPECT_EQ(cc_errors, 0);
  EXPECT_EQ(frames_out, frames_in);
}

// Ten make-before-break migrations in a row, A -> B -> A ..., while a VOD stream plays to a
// UDP player. The player side is recorded independently (arrival time of every datagram):
// it must get the source byte for byte, a decoder must find every frame and no continuity
// error, and no gap during a migration may exceed the steady-state p99 gap + 5 ms.
TEST_F(DataplaneTest, TenMigrationsInARowLoseNothingAndDoNotStall) {
  std::string in = MakeStream(30);
  absl::StatusOr<std::unique_ptr<testbed::UdpRecorder>> player =
      testbed::UdpRecorder::Start(net_->ns_a(), 5004);
  ASSERT_TRUE(player.ok()) << player.status();
  auto vehicle = StartVehicle("127.0.0.1:5004");
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  ASSERT_TRUE(vehicle && a && b);

  Open("edge-a", in);
  absl::SleepFor(absl::Seconds(3));
  std::vector<Window> windows = MigrateBackAndForth(10, absl::Milliseconds(800));
  ASSERT_EQ(windows.size(), 10u);
  WaitDelivered(std::filesystem::file_size(in));
  absl::SleepFor(absl::Milliseconds(200));
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);
  (*player)->Stop();

  std::string sent = Slurp(in);
  const std::string& got = (*player)->bytes();
  Played played = ExpectPlayedWhole(sent, got, in);

  ASSERT_GT((*player)->datagrams().size(), 1000u);
  Gaps g = PlayerGaps((*player)->datagrams(), windows);
  std::cout << "[result] " << got.size() << " of " << sent.size() << " bytes, frames "
            << played.frames_in << " -> " << played.frames_out << ", continuity errors "
            << played.cc_errors << "; " << SteadyAndWorst(g)
            << "; reordered by loopback (put back) " << (*player)->reordered() << "\n";
  JudgeGoal("gap", g.worst_migration, g.p99);
}

// A live channel that reaches both edges (ffmpeg's tee muxer sends the same datagrams to
// each edge's standing feed, and to a reference recorder): the session moves back and
// forth between the edges while ffmpeg streams, and the player must get exactly what
// the encoder sent, decodable with no continuity error and no stall beyond the goal.
TEST_F(DataplaneTest, LiveStreamMigratesBetweenEdgesIngestingTheSameFeed) {
  std::string in = MakeStream(20);
  absl::StatusOr<std::unique_ptr<testbed::UdpRecorder>> player =
      testbed::UdpRecorder::Start(net_->ns_a(), 5004);
  ASSERT_TRUE(player.ok()) << player.status();
  absl::StatusOr<std::unique_ptr<testbed::UdpRecorder>> reference =
      testbed::UdpRecorder::Start(net_->ns_b(), 5009);
  ASSERT_TRUE(reference.ok()) << reference.status();
  auto vehicle = StartVehicle("127.0.0.1:5004");
  auto a = StartEdge("edge-a", 9899, "key", "channel-1=127.0.0.1:5000");
  auto b = StartEdge("edge-b", 9900, "key", "channel-1=127.0.0.1:5001");
  ASSERT_TRUE(vehicle && a && b);
  Open("edge-a", "feed:channel-1");

  std::string outputs;
  for (int port : {5000, 5001, 5009}) {
    absl::StrAppend(&outputs, outputs.empty() ? "" : "|", "[f=mpegts]udp://127.0.0.1:", port,
                    "?pkt_size=1316&bitrate=2000000");
  }
  auto encoder = Process::Start(net_->InB({"ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i",
                                           in, "-c", "copy", "-map", "0", "-f", "tee", outputs}),
                                dir_ + "/encoder.log");
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  absl::SleepFor(absl::Seconds(3));
  std::vector<Window> windows = MigrateBackAndForth(6, absl::Milliseconds(1500));
  EXPECT_EQ(windows.size(), 6u);
  ASSERT_EQ((*encoder)->Wait(absl::Seconds(60)).value_or(-1), 0) << (*encoder)->Stderr();
  absl::SleepFor(absl::Seconds(1));  // the tail in flight
  for (auto* p : {&a, &b, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);
  (*player)->Stop();
  (*reference)->Stop();

  const std::string& sent = (*reference)->bytes();
  const std::string& got = (*player)->bytes();
  ASSERT_GT(sent.size(), std::filesystem::file_size(in) / 2) << "the encoder's reference output is short";
  Played played = ExpectPlayedWhole(sent, got, in);

  // The encoder paces in bursts, so gaps at the player mostly measure ffmpeg. What smig
  // adds is each datagram's delay from the reference recorder (the encoder's third
  // output) to the player, on the same clock: during a migration it must stay within the
  // steady state's p99 + 5 ms.
  Gaps g = PlayerGaps((*player)->datagrams(), windows);
  const auto& pd = (*player)->datagrams();
  const auto& rd = (*reference)->datagrams();
  ASSERT_EQ(pd.size(), rd.size());
  std::vector<absl::Duration> steady;
  absl::Duration worst = absl::ZeroDuration();
  for (size_t k = 0; k < pd.size(); ++k) {
    ASSERT_EQ(pd[k].size, rd[k].size) << "datagram " << k;
    absl::Duration delay = pd[k].at - rd[k].at;
    bool in_migration = std::any_of(windows.begin(), windows.end(), [&](const Window& w) {
      return rd[k].at >= w.from && rd[k].at <= w.to;
    });
    if (in_migration) {
      worst = std::max(worst, delay);
    } else if (rd[k].at - rd.front().at > absl::Seconds(1)) {
      steady.push_back(delay);
    }
  }
  ASSERT_GT(steady.size(), 500u);
  std::sort(steady.begin(), steady.end());
  absl::Duration p99 = steady[steady.size() * 99 / 100];
  std::cout << "[result] live: " << got.size() << " of " << sent.size() << " bytes, frames "
            << played.frames_in << " -> " << played.frames_out << ", continuity errors "
            << played.cc_errors << "; encoder-to-player delay p50 "
            << absl::FormatDuration(steady[steady.size() / 2]) << " p99 "
            << absl::FormatDuration(p99) << " max " << absl::FormatDuration(steady.back())
            << ", largest during a migration " << absl::FormatDuration(worst) << "; player "
            << SteadyAndWorst(g) << "; reordered by loopback (put back) "
            << (*player)->reordered() << "\n";
  JudgeGoal("encoder-to-player delay", worst, p99);
}

// Everything a hostile or broken peer can send: it is refused with a precise error and a
// counter, nothing crashes, and nothing of it reaches the player.
TEST_F(DataplaneTest, BadInputIsRefusedCountedAndNeverReachesThePlayer) {
  std::string good = MakeStream(6, "good");
  std::string other = MakeStream(6, "other", "smptebars");
  std::ofstream(dir_ + "/evil-key") << "not-the-deployment-key-at-all";
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  auto evil = StartEdge("edge-evil", 9901, "evil-key");
  ASSERT_TRUE(vehicle && a && b && evil);
  grpc::ClientContext watch_ctx;
  auto watch = Stub("vehicle")->WatchEvents(&watch_ctx, v1::WatchEventsRequest());
  std::vector<std::string> errors;  // the vehicle's error events, read meanwhile
  std::thread reader([&] {
    for (v1::AgentEvent e; watch->Read(&e);) {
      if (e.has_error()) errors.push_back(e.error());
    }
  });

  // 1. Garbage: a plain SCTP peer sends messages that are not smig frames.
  std::vector<std::string> cat = {SMIG_SCTPCAT, "--local=" + TwoHostNet::AddrB(1),
                                  "--peer=" + TwoHostNet::AddrA(1), "--peer-port=6000",
                                  "--send=numbered", "--rate=100", "--count=20",
                                  "--sctp-stack=" + StackName()};
  if (StackName() == "userland") cat.push_back("--udp-port=9902");
  auto garbage = Process::Start(net_->InB(cat), dir_ + "/garbage.log");
  ASSERT_TRUE(garbage.ok()) << garbage.status();
  (void)(*garbage)->Wait(absl::Seconds(15));
  // 2. A HELLO signed with the wrong key.
  Open("edge-evil", other, 7);
  // 3. The real session, then a second edge claiming the same session and generation.
  Open("edge-a", good);
  absl::SleepFor(absl::Seconds(1));
  Open("edge-b", other);
  // 4. Unknown sessions.
  {
    grpc::ClientContext ctx;
    v1::ExportStateRequest req;
    req.set_session_id(999);
    v1::SessionState st;
    grpc::Status s = Stub("edge-a")->ExportState(&ctx, req, &st);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("session 999"));
    grpc::ClientContext ctx2;
    v1::GetSessionRequest get;
    get.set_session_id(999);
    v1::Session session;
    s = Stub("vehicle")->GetSession(&ctx2, get, &session);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("session 999"));
  }
  // 5. ImportState with a state of another format version, and one that makes no sense.
  v1::SessionState state = Export("edge-a");
  v1::SessionState future = state;
  future.set_format_version(9);
  future.set_session_id(11);
  grpc::Status s = Import("edge-b", future);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("format version 9"));
  v1::SessionState corrupt = state;
  corrupt.set_session_id(12);
  corrupt.mutable_flows(0)->mutable_source()->set_file(dir_ + "/no-such-file.ts");
  s = Import("edge-b", corrupt);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_THAT(s.error_message(), ::testing::HasSubstr("no-such-file.ts"));
  corrupt = state;
  corrupt.set_session_id(13);
  corrupt.clear_vehicle_addresses();
  s = Import("edge-b", corrupt);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  {  // bytes that are no SessionState at all
    grpc::GenericStub generic(grpc::CreateChannel(absl::StrCat("unix:", dir_, "/edge-b.sock"),
                                                  grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    std::string junk = "\x0a\xff\xff\xff\xff\x0fgarbage";
    grpc::Slice slice(junk);
    grpc::ByteBuffer request(&slice, 1), response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status junk_status;
    generic.UnaryCall(&ctx, "/smig.dataplane.v1.DataplaneAgent/ImportState", {}, &request,
                      &response, [&](grpc::Status st) {
                        std::lock_guard<std::mutex> lock(mu);
                        junk_status = st;
                        done = true;
                        cv.notify_one();
                      });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    EXPECT_FALSE(junk_status.ok());
    std::cout << "[result] undecodable ImportState: " << junk_status.error_code() << " "
              << junk_status.error_message() << "\n";
  }

  WaitDelivered(std::filesystem::file_size(good));
  std::string vehicle_metrics = Metrics("vehicle", net_->ns_a());
  std::string edge_metrics = Metrics("edge-b", net_->ns_b());
  watch_ctx.TryCancel();
  reader.join();
  for (auto* p : {&a, &b, &evil, &vehicle}) (*p)->Kill(SIGTERM);
  for (auto* p : {&a, &b, &evil, &vehicle}) EXPECT_EQ((*p)->Wait(absl::Seconds(10)).value_or(-1), 0);

  EXPECT_TRUE(Slurp(dir_ + "/out.ts") == Slurp(good)) << "the player got something else";
  // The numbered messages are not smig frames; which check refuses them first depends on
  // their bytes.
  for (const char* reason :
       {"(too_short|bad_magic|bad_version|bad_kind|bad_length)", "bad_hello", "conflicting_claim"}) {
    EXPECT_THAT(vehicle_metrics, ::testing::ContainsRegex(absl::StrCat(
                                     "smig_frames_dropped_total\\{reason=\"", reason,
                                     "\"\\} [1-9]")));
    EXPECT_THAT(errors, ::testing::Contains(::testing::ContainsRegex(reason)));
  }
  EXPECT_THAT(edge_metrics, ::testing::HasSubstr(
                                "smig_grpc_requests_total{code=\"FAILED_PRECONDITION\",method="
                                "\"/smig.dataplane.v1.DataplaneAgent/ImportState\"} 1"));
  EXPECT_THAT(edge_metrics, ::testing::HasSubstr(
                                "smig_grpc_requests_total{code=\"INVALID_ARGUMENT\",method="
                                "\"/smig.dataplane.v1.DataplaneAgent/ImportState\"} 1"));
  std::cout << "[result] vehicle refused: " << errors.size() << " events, e.g. "
            << (errors.empty() ? "" : errors.front()) << "\n";
}

}  // namespace
}  // namespace smig::dataplane
