// An idle session migrates (smig-dataplane end to end, real SCTP between namespaces): a VOD
// whose file has been sent whole, and a live feed that has paused. The new edge has no
// frame to send; its HELLO says where it goes on from, and the vehicle confirms it on
// that. The confirmation must reach the agent API within 2 RTT + 20 ms of ImportState
// (the goal of the "idle session cannot migrate" issue). The stack comes from
// $SMIG_TEST_STACK, as for the other suites; the fixture is dataplane_fixture.h's.
#include <signal.h>

#include <filesystem>
#include <iostream>

#include "tests/integration/dataplane_fixture.h"

namespace smig::dataplane::testing {
namespace {

class IdleMigrationTest : public DataplaneTest {
 protected:
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

    v1::SessionState state = Export("edge-a");
    const absl::Duration rtt = Rtt();
    const absl::Time start = absl::Now();
    grpc::Status imported = Import("edge-b", state);
    EXPECT_TRUE(imported.ok()) << imported.error_message();
    bool contiguous = false;
    for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
      contiguous = e.has_contiguous_generation() && e.contiguous_generation() == 2;
    }
    const absl::Duration took = absl::Now() - start;
    watch_ctx.TryCancel();
    EXPECT_TRUE(contiguous) << what << ": the vehicle never confirmed edge-b";
    std::cout << "[result] " << what << ": confirmed " << absl::FormatDuration(took)
              << " after ImportState (link srtt " << absl::FormatDuration(rtt) << ")\n";
    JudgeLimit(what + ": confirmation after ImportState vs 2 RTT + 20 ms", took,
               2 * rtt + absl::Milliseconds(20));
    // Without a frame from edge-b: it had nothing to send.
    absl::StatusOr<v1::Session> b = Get("edge-b");
    EXPECT_TRUE(b.ok() && b->flows_size() == 1 && b->flows(0).frames() == 0) << what;
    EXPECT_TRUE(Release("edge-a").ok());
    return took;
  }

};

TEST_F(IdleMigrationTest, AFinishedVodMigratesWithinTwoRttPlus20ms) {
  std::string in = MakeStream(2);
  auto vehicle = StartVehicle();
  auto a = StartEdge("edge-a", 9899);
  auto b = StartEdge("edge-b", 9900);
  ASSERT_TRUE(vehicle && a && b);
  Open("edge-a", in);
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
  Open("edge-a", "feed:channel-1");
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
}  // namespace smig::dataplane::testing
