// The fixture of the smig-dataplane end-to-end suite (dataplane_test.cc,
// dataplane_live_test.cc, dataplane_bad_input_test.cc): a vehicle (two radios) and edges in
// their own network namespaces, smig-dataplane daemons driven through the agent API over
// gRPC (unix sockets, which every namespace can reach), and what the player side receives.
// The stack comes from $SMIG_TEST_STACK, as for the transport suite.
//
//   TEST_F(DataplaneTest, Something) {
//     std::string in = MakeStream(4);
//     auto vehicle = StartVehicle();
//     auto edge = StartEdge("edge-a");
//     Open("edge-a", in);
//     WaitDelivered(std::filesystem::file_size(in));
//   }
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "tests/integration/host_stall_probe.h"
#include "tests/fakes/session_keys.h"
#include "tests/integration/testbed.h"

namespace smig::dataplane::testing {

using testbed::Process;
using testbed::TwoHostNet;

// $SMIG_TEST_STACK, else "userland".
std::string StackName();
// A file's bytes ("" if it cannot be read).
std::string Slurp(const std::string& path);

class DataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A vehicle in namespace A with both radios, delivering flow 0 to a file (or, given a
  // UDP address, to a player there), and flow 1 to out1.ts.
  std::unique_ptr<Process> StartVehicle(const std::string& udp_player = "");
  // An edge in namespace B; edges sharing B need their own UDP encapsulation port.
  // `live_feed`: "name=ip:port", a standing feed it ingests.
  std::unique_ptr<Process> StartEdge(const std::string& name, int udp_port = 9899,
                                     const std::string& live_feed = "");
  std::unique_ptr<Process> Start(const std::vector<std::string>& argv, const std::string& name);
  // One channel per daemon, kept like the SMM keeps its agents' (a channel per call would
  // load the machine with connection set-ups during every migration).
  std::unique_ptr<v1::DataplaneAgent::Stub> Stub(const std::string& name);
  // /metrics of a daemon started above (`name`), read from inside its namespace.
  std::string Metrics(const std::string& name, const std::string& netns);
  // Makes `seconds` of MPEG-TS test video at about 2 Mbit/s (`pattern`: an ffmpeg test source).
  std::string MakeStream(int seconds, const std::string& name = "in",
                         const std::string& pattern = "testsrc2");
  static int DecodedFrames(const std::string& path);

  // Opens session 1 on `edge` with one flow from a file, from live UDP at "udp:ip:port",
  // or from a standing live feed "feed:name", with a redundancy policy (unset: auto).
  // The vehicle is given the session's key first (SessionKey), as its creator does; the
  // edge gets `edge_key` if given (another key: an edge the vehicle must refuse).
  void Open(const std::string& edge, const std::string& source, uint64_t session_id = 1,
            v1::RedundancyPolicy redundancy = v1::REDUNDANCY_POLICY_UNSPECIFIED,
            const std::string& edge_key = "");
  // The key of a session in these tests (32 bytes, made from its id).
  static std::string SessionKey(uint64_t session_id);
  // The vehicle's OpenSession: it accepts `session_id`'s edges, signed with `key`.
  grpc::Status Admit(uint64_t session_id, const std::string& key);
  static int ContinuityErrors(const std::string& decoder_log);
  v1::SessionState Export(const std::string& edge);
  grpc::Status Import(const std::string& edge, const v1::SessionState& state);
  grpc::Status Release(const std::string& edge);
  // Waits until `edge` serves no session any more (its graceful shutdown is complete).
  bool WaitReleased(const std::string& edge, absl::Duration timeout = absl::Seconds(10));

  // The vehicle's view of session 1 once it delivered `bytes` (or after 30 s).
  v1::Session WaitDelivered(size_t bytes);

  struct Window {
    absl::Time from, to;
  };
  // Moves session 1 `n` times, edge-a -> edge-b -> edge-a ..., through the agent API as the
  // SMM would (export, import, wait until the vehicle reports the new edge contiguous,
  // release the old one), pausing `pause` after each. Each window covers a migration, its
  // release and what was in flight at its end.
  std::vector<Window> MigrateBackAndForth(int n, absl::Duration pause);

  struct Played {
    int frames_in, frames_out, cc_errors;
  };
  // What the player got (`got`) must be `sent` byte for byte, and an ffmpeg decoder must
  // find in it every frame of the source file `in`, with no continuity error.
  Played ExpectPlayedWhole(const std::string& sent, const std::string& got, const std::string& in);

  struct Gaps {
    absl::Duration p50, p99, max;  // steady state: outside every window
    // The largest gap that began in a window, less the time the host stalled within it
    // (host_): what smig is judged on. The gap as the player saw it, and the host's share.
    absl::Duration worst_migration;
    absl::Duration worst_at_player, host_stalled;
    absl::Duration max_net;  // the steady state's largest gap less the host's stalls in it
  };
  // Gaps between consecutive datagrams at the player, by whether they began inside a
  // migration's window (one already running when a migration started was not caused by
  // it); the first second is start-up, not steady state. Prints each window's worst.
  Gaps PlayerGaps(const std::vector<testbed::UdpRecorder::Datagram>& d,
                  const std::vector<Window>& windows);
  // An absolute timing goal: `value` ≤ `limit`. Under software CPU emulation (the
  // project's VM (scripts/vm) on hosts without vmx/svm) or a sanitizer the timing measures
  // the emulator or the instrumentation: a miss there is reported as skipped with its
  // numbers, not judged. Gaps are judged net of the host's stalls
  // (Gaps::worst_migration), and the output says so.
  void JudgeLimit(const std::string& what, absl::Duration value, absl::Duration limit);
  std::string SteadyAndWorst(const Gaps& g);

  // JSON members ending in a comma, added to every daemon's config (e.g. a request limit).
  std::string agent_config_extra_;
  std::unique_ptr<TwoHostNet> net_;
  std::unique_ptr<testbed::HostStallProbe> host_;  // runs for the whole test
  std::string dir_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace smig::dataplane::testing
