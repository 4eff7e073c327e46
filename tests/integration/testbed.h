// A testbed for tests and benchmarks that cross a real network: two hosts in network
// namespaces joined by two veth pairs on separate subnets (so each SCTP path is a real,
// separately breakable link), child processes inside them, and their JSON-line output.
//
//   absl::StatusOr<std::unique_ptr<TwoHostNet>> net = TwoHostNet::Create();
//   auto rx = Process::Start((*net)->InB({kSctpcat, "--listen", ...}), "/tmp/rx.json");
//   (*net)->SetLink(2, false);          // cut path 2
//   std::vector<CatRecord> recs = ReadRecords("/tmp/rx.json");
//
// Only this process's own namespaces and their private subnets are touched; the
// destructor removes the namespaces (and with them every veth and nft rule).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "smig/transport/v1/sctpcat.pb.h"

namespace smig::testbed {

// Runs `command` with /bin/sh; returns its output, or an error with the output if it failed.
absl::StatusOr<std::string> Sh(const std::string& command);

// True when this process may create network namespaces (root).
bool CanCreateNamespaces();

class TwoHostNet {
 public:
  // Host A ("client", e.g. a vehicle) has 10.77.<path>.2, host B ("server") 10.77.<path>.1,
  // for path 1 and 2, on interfaces a<path>/b<path>.
  static absl::StatusOr<std::unique_ptr<TwoHostNet>> Create();
  ~TwoHostNet();

  const std::string& ns_a() const { return ns_a_; }
  const std::string& ns_b() const { return ns_b_; }
  static std::string AddrA(int path) { return "10.77." + std::to_string(path) + ".2"; }
  static std::string AddrB(int path) { return "10.77." + std::to_string(path) + ".1"; }

  // argv prefixed to run inside a namespace.
  std::vector<std::string> InA(std::vector<std::string> argv) const;
  std::vector<std::string> InB(std::vector<std::string> argv) const;

  // Link down/up on A's side of a path.
  absl::Status SetLink(int path, bool up);
  // nftables drop of everything in and out of B's side of a path.
  absl::Status SetDrop(int path, bool drop);
  // The same on A's side of a path: a radio of A going dark. B's packets still leave B and
  // vanish, whereas SetDrop makes B's own sends on that path fail locally (EPERM), which
  // a stack sees as an error rather than as silence.
  absl::Status SetDropAtA(int path, bool drop);
  // Packets A sent on a path (the interface counter: ground truth for per-path traffic),
  // read from /proc/<pid_in_a>/net/dev so that no process is started (slow in the VM).
  static absl::StatusOr<uint64_t> TxPackets(pid_t pid_in_a, int path);

 private:
  TwoHostNet(std::string a, std::string b) : ns_a_(std::move(a)), ns_b_(std::move(b)) {}
  std::string ns_a_, ns_b_;
};

// A child process; killed (SIGKILL) by the destructor if still running.
class Process {
 public:
  // stdout goes to `stdout_path`, stderr to `stdout_path + ".err"`.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const std::vector<std::string>& argv,
                                                         const std::string& stdout_path);
  ~Process();

  pid_t pid() const { return pid_; }
  absl::Time started() const { return started_; }
  // The exit code; DEADLINE_EXCEEDED (after SIGKILL) if it does not exit in time.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  void Kill(int signal);
  std::string Stderr() const;

 private:
  Process(pid_t pid, std::string path) : pid_(pid), path_(std::move(path)) {}
  pid_t pid_;
  std::string path_;
  absl::Time started_ = absl::Now();
  bool reaped_ = false;
};

// Parses smig-sctpcat's JSON lines; lines that are not records are skipped.
std::vector<transport::v1::CatRecord> ReadRecords(const std::string& path);
// Waits until a smig-sctpcat has printed its first record (its endpoint is open): process
// start-up is slow under the VM's software emulation, so no fixed sleep fits.
void AwaitFirstRecord(const std::string& path, absl::Duration timeout = absl::Seconds(15));
// The last summary record, if any.
std::optional<transport::v1::CatSummary> LastSummary(
    const std::vector<transport::v1::CatRecord>& records);

// GET http://127.0.0.1:port/path over HTTP/1.0; the whole response (headers and body), or
// "" if nothing answers.
std::string HttpGet(int port, const std::string& path);

// Receives UDP datagrams on 127.0.0.1:port inside a namespace, as a player would, and keeps
// each one's payload and arrival time (an independent view of what the vehicle egresses).
// Arrival times are the kernel's stamps, taken on loopback when the sender hands the
// datagram over; the loopback can still deliver two out of that order (per-CPU backlogs,
// seen in the project's VM (scripts/vm)). Stop() puts them back in stamp order, the sender's, and
// reordered() counts how many the loopback moved (see scripts/lib/udp_recorder.py).
class UdpRecorder {
 public:
  struct Datagram {
    absl::Time at;
    size_t size;
  };
  static absl::StatusOr<std::unique_ptr<UdpRecorder>> Start(const std::string& netns,
                                                            uint16_t port);
  ~UdpRecorder();
  // Stops receiving; the results below are final afterwards.
  void Stop();
  const std::vector<Datagram>& datagrams() const { return datagrams_; }
  const std::string& bytes() const { return bytes_; }
  size_t reordered() const { return reordered_; }

 private:
  UdpRecorder() = default;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<Datagram> datagrams_;
  std::vector<std::string> payloads_;  // while recording; bytes_ after Stop()
  std::string bytes_;
  size_t reordered_ = 0;
};

// A scratch directory unique to this process, under $TMPDIR or /tmp.
std::string ScratchDir();
// Removes `dir` (a ScratchDir or a directory in one) and the ScratchDir if it is then empty.
// Tests call it when they passed; a failed test's files stay for a look.
void RemoveScratch(const std::string& dir);

}  // namespace smig::testbed
