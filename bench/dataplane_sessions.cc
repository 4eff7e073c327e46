// smig-bench-sessions: the two data plane benchmarks of the data plane issue, in one run.
//
//  1. Concurrent sessions per core: a smig-dataplane edge pinned to one core (taskset)
//     serves N sessions, each one live UDP flow of 1316-byte datagrams at 2 Mbit/s that a
//     generator sends to the session's UDP port; a smig-dataplane vehicle (another process,
//     another core) delivers every flow over UDP to one receiver, which counts loss,
//     duplicates and reordering per session from the session id and sequence number in
//     each datagram. N ramps up (--sessions) for --window each; after the first step with
//     loss, --refine bisection steps narrow the largest lossless N. Each step reports the
//     edge's CPU use (from /proc/<pid>/stat) and where datagrams were dropped.
//  2. Ingest -> egress latency against a plain UDP relay: in every step the generator also
//     sends a 2 Mbit/s stream, interleaved with the sessions' datagrams, through a relay
//     (recv/send, a thread of this program on the edge's core) to the same receiver. Both
//     paths carry send timestamps; the receiver takes kernel receive timestamps
//     (SO_TIMESTAMPNS), so its own scheduling does not count.
//
//   sudo smig-bench-sessions --sessions=1,5,10,20,40,80,160,320 --window=10s --refine=3
//
// The network (no loopback: see Fleet): the generator, the edge and the receiver share one
// namespace with a bridge; each vehicle, and the relay, sits in a namespace of its own on
// that bridge (a veth pair each). Both paths therefore cross a veth pair twice: smig as
// SCTP to the vehicle and UDP back, the relay as UDP to it and UDP back.
// Every line on stdout is one JSON object; a table for people goes to stderr. Exit codes:
// 0 done, 1 setup or run error, 2 bad flags. Child processes are stopped and the
// namespaces deleted on every exit, including SIGINT/SIGTERM/SIGHUP and the --deadline.
//
// The parts: dataplane_sessions_fleet.* (namespaces, daemons, sessions),
// dataplane_sessions_traffic.* (generator, relay, receiver), dataplane_sessions_step.* (one
// step measured and reported), dataplane_sessions_common.* (what they share); this file
// holds the flags and the ramp.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/dataplane_sessions_common.h"
#include "bench/dataplane_sessions_fleet.h"
#include "bench/dataplane_sessions_step.h"
#include "common/flags.h"
#include "common/status_macros.h"
#include "tests/integration/testbed.h"

ABSL_FLAG(std::vector<std::string>, sessions,
          std::vector<std::string>({"1", "5", "10", "20", "40", "80", "160", "320", "640"}),
          "Session counts to ramp through, ascending; the ramp stops at the first with loss");
ABSL_FLAG(int, refine, 3, "Bisection steps between the last lossless and the first lossy count");
ABSL_FLAG(absl::Duration, window, absl::Seconds(10), "How long each step sends");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(1),
          "After a step, how long the receiver must be quiet before counting (at most 10x)");
ABSL_FLAG(std::string, sctp_stack, "userland", "The data planes' SCTP stack");
ABSL_FLAG(int, edge_cpu, 1, "The core the edge (and the relay) is pinned to");
ABSL_FLAG(int, other_cpu, 0, "The core of the vehicle, the generator and the receiver");
ABSL_FLAG(int, bitrate, 2000000, "Bits per second of each session (and of the relay stream)");
ABSL_FLAG(int, datagram, 1316, "Datagram size in bytes (7 TS packets)");
ABSL_FLAG(absl::Duration, deadline, absl::Minutes(20), "Abort the whole run after this long");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory (configs, logs) after a clean run");

namespace smig::bench::sessions {
namespace {

absl::Status Run(std::vector<StepResult>& results) {
  std::vector<size_t> ramp;
  for (const std::string& v : absl::GetFlag(FLAGS_sessions)) {
    size_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n == 0 || (!ramp.empty() && n <= ramp.back())) {
      return absl::InvalidArgumentError("--sessions must be ascending positive counts");
    }
    ramp.push_back(n);
  }
  if (!testbed::CanCreateNamespaces()) {
    return absl::PermissionDeniedError("needs root (network namespaces)");
  }
  // This process's threads (generator, receiver) stay off the edge's core; the relay
  // thread pins itself to the edge's core, like the edge it stands in for.
  const Options options{.sctp_stack = absl::GetFlag(FLAGS_sctp_stack),
                        .edge_cpu = absl::GetFlag(FLAGS_edge_cpu),
                        .other_cpu = absl::GetFlag(FLAGS_other_cpu),
                        .bitrate = absl::GetFlag(FLAGS_bitrate),
                        .datagram = absl::GetFlag(FLAGS_datagram),
                        .window = absl::GetFlag(FLAGS_window),
                        .drain = absl::GetFlag(FLAGS_drain)};
  SMIG_RETURN_IF_ERROR(PinThisThread(options.other_cpu));
  SMIG_ASSIGN_OR_RETURN(std::unique_ptr<Setup> setup, Build(options));
  Setup& s = *setup;

  uint16_t step = 0;
  auto run = [&](size_t n) -> absl::StatusOr<bool> {
    SMIG_ASSIGN_OR_RETURN(StepResult r, RunStep(s, n, step++));
    std::cout << r.json << std::endl;
    std::cerr << Row(r) << std::endl;
    results.push_back(r);
    return r.lost == 0;
  };
  std::cerr << RowHeading() << "\n";
  size_t good = 0, bad = 0;
  for (size_t n : ramp) {
    absl::StatusOr<bool> ok = run(n);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      bad = n;
      break;
    }
    good = n;
  }
  for (int i = 0; bad != 0 && i < absl::GetFlag(FLAGS_refine); ++i) {
    const size_t mid = (good + bad) / 2;
    if (mid <= good || mid >= bad) break;
    absl::StatusOr<bool> ok = run(mid);
    if (!ok.ok()) return ok.status();
    (*ok ? good : bad) = mid;
  }
  const StepResult& first = results.front();
  std::cout << absl::StrCat(
                   R"({"bench":"sessions_summary","stack":")",
                   options.sctp_stack, R"(","max_lossless_sessions":)", good,
                   R"(,"first_lossy_sessions":)", bad == 0 ? "null" : std::to_string(bad),
                   R"(,"latency_at_sessions":)", first.sessions, R"(,"smig_latency_ms":)",
                   Json(first.smig), R"(,"relay_latency_ms":)", Json(first.relay),
                   absl::StrFormat(R"(,"ratio_p50":%.2f,"ratio_p99":%.2f})",
                                   first.relay.p50 > 0 ? first.smig.p50 / first.relay.p50 : 0,
                                   first.relay.p99 > 0 ? first.smig.p99 / first.relay.p99 : 0))
            << std::endl;
  std::cerr << "largest lossless session count: " << good
            << (bad ? absl::StrCat(" (loss at ", bad, ")") : " (no loss up to the last step)")
            << "\n";
  if (!absl::GetFlag(FLAGS_keep)) {
    std::error_code ec;
    std::filesystem::remove_all(s.dir, ec);
  } else {
    std::cerr << "configs and logs: " << s.dir << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

int Main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "concurrent 2 Mbit/s sessions on one edge core, and ingest->egress latency "
                   "against a plain UDP relay (needs root)");
  // Termination signals and the deadline stop the run through the normal return path, so
  // every child process is stopped and every namespace deleted.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    std::cerr << "smig-bench-sessions: " << strsignal(sig) << ": stopping\n";
    g_stop.store(true);
  }).detach();
  alarm(static_cast<unsigned>(absl::ToInt64Seconds(absl::GetFlag(FLAGS_deadline))));
  std::vector<StepResult> results;
  absl::Status st = Run(results);
  if (!st.ok()) {
    smig::Fail(st);
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace smig::bench::sessions

int main(int argc, char** argv) { return smig::bench::sessions::Main(argc, argv); }
