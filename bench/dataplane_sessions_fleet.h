// The fleet of smig-bench-sessions: its network namespaces, the smig-dataplane daemons
// (one edge, one vehicle per session) and the sessions the edge serves.
//
//   absl::StatusOr<std::unique_ptr<Setup>> s = Build(options);  // edge, receiver, relay
//   SMIG_RETURN_IF_ERROR(SetSessions(**s, 40));  // 40 sessions served, past their HELLO
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/dataplane_sessions_common.h"
#include "bench/dataplane_sessions_traffic.h"
#include "common/unique_fd.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "tests/integration/testbed.h"

namespace smig::bench::sessions {

// A smig-dataplane process and its gRPC stub.
struct Daemon {
  std::unique_ptr<testbed::Process> process;
  std::string ns;
  int metrics_port = 0;
  std::unique_ptr<dataplane::v1::DataplaneAgent::Stub> stub;

  // Its /metrics page, read inside its namespace ("" if that fails).
  std::string Metrics() const;
};

// Stops a daemon the way an operator would (SIGTERM), then for sure.
void StopDaemon(Daemon& d);

// The network: namespace E holds the edge, the generator and the receiver, and a bridge
// (10.78.0.1/16); every vehicle has a namespace of its own joined to the bridge by a veth
// pair (one radio each), and so has the relay. A vehicle needs a namespace of its own
// because an edge reaches every vehicle on one UDP encapsulation port (9899) and usrsctp
// takes that port for the whole process; and one vehicle process serves one session
// because an edge has one association per vehicle endpoint.
class Fleet {
 public:
  static absl::StatusOr<std::unique_ptr<Fleet>> Create();
  ~Fleet();  // deletes the namespaces
  const std::string& edge_ns() const { return edge_ns_; }
  // Slot k's namespace (made on first use) and address; the relay takes kRelaySlot.
  absl::StatusOr<std::string> Slot(size_t k);
  static std::string Address(size_t k);

 private:
  explicit Fleet(std::string tag) : tag_(std::move(tag)) {}
  absl::Status AddNs(const std::string& ns);
  std::string tag_, edge_ns_;
  std::vector<std::string> namespaces_;
};

constexpr size_t kRelaySlot = 49999;  // 10.78.250.201

struct Vehicle {
  Daemon daemon;
  uint64_t session = 0;  // 0: none
};

// Everything a run holds; the destructor stops the threads and daemons and deletes the
// namespaces.
struct Setup {
  Options opt;
  std::unique_ptr<Fleet> fleet;
  std::string dir;
  Daemon edge;
  std::vector<Vehicle> vehicles;  // slot k serves the k-th open session
  std::unique_ptr<Receiver> receiver;
  std::unique_ptr<Relay> relay;
  UniqueFd gen;
  std::vector<uint64_t> open;  // session ids served by the edge, ascending, one per slot
  uint64_t next_id = 1;

  ~Setup();
};

// The fleet with its edge (pinned to options.edge_cpu), the receiver, the relay and the
// generator's socket; no sessions yet.
absl::StatusOr<std::unique_ptr<Setup>> Build(const Options& options);

// Opens or releases sessions until the edge serves `n`, all of them past their HELLO; the
// vehicle of a released session is stopped, so idle vehicles cost nothing.
absl::Status SetSessions(Setup& s, size_t n);

}  // namespace smig::bench::sessions
