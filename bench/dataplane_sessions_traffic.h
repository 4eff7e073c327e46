// The traffic of smig-bench-sessions: the generator that sends every session's datagrams
// and the relay stream, the plain UDP relay (path B), and the receiver that counts what
// arrives by session and path.
//
//   auto rx = *Receiver::Start(edge_ns, cpu);
//   rx->SetStep(step);
//   GenResult sent = Generate(fd, targets, step, bitrate, 1316, absl::Seconds(10));
//   StepRx got = rx->Drain(absl::Seconds(1));
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/dataplane_sessions_common.h"
#include "common/unique_fd.h"
#include "dataplane/transport/address.h"

namespace smig::bench::sessions {

// ---- what the receiver counts

struct SessionRx {
  uint64_t unique = 0, duplicates = 0, reordered = 0;
  uint64_t highest = 0;
  bool any = false;
  std::vector<bool> seen;
};

struct StepRx {
  std::map<uint32_t, SessionRx> sessions;  // path smig
  SessionRx relay;
  std::vector<int64_t> latency_ns[2];      // by path
  uint64_t foreign = 0;                    // not ours, or of another step
  absl::Time last_arrival = absl::InfinitePast();
};

// One UDP socket for every flow (the vehicle's sinks and the relay send here); datagrams
// are told apart by the header. Its thread, pinned to `cpu`, counts until destruction.
class Receiver {
 public:
  static absl::StatusOr<std::unique_ptr<Receiver>> Start(const std::string& ns, int cpu);
  ~Receiver();
  // Starts counting `step` afresh; datagrams of other steps count as foreign.
  void SetStep(uint16_t step);
  // The counts of the current step once nothing arrived for `quiet` (at most 10x quiet).
  StepRx Drain(absl::Duration quiet);

 private:
  explicit Receiver(UniqueFd fd) : fd_(std::move(fd)) {}
  void Run();

  UniqueFd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  uint16_t step_ = 0xffff;
  StepRx rx_;
};

// ---- the plain UDP relay (path B)

// Receives on ip:kRelayPort in namespace `ns` and sends every datagram on to `to`, from a
// thread pinned to `cpu`, until destruction.
class Relay {
 public:
  static absl::StatusOr<std::unique_ptr<Relay>> Start(const std::string& ns,
                                                      const std::string& ip,
                                                      transport::SocketAddress to, int cpu);
  ~Relay();

 private:
  Relay(UniqueFd in, UniqueFd out, transport::SocketAddress to)
      : in_(std::move(in)), out_(std::move(out)), to_(to) {}
  void Run();

  UniqueFd in_, out_;
  transport::SocketAddress to_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// ---- the generator

struct Target {
  transport::SocketAddress to;
  uint16_t path;
  uint32_t session;
};

struct GenResult {
  std::vector<uint64_t> sent;  // per target
  absl::Duration max_lag;      // how late the worst send was against its schedule
  absl::Time start, end;
};

// Sends to every target at --bitrate for `window`, round robin, evenly spaced: target k of
// K gets datagrams at start + (j*K + k) * period/K.
GenResult Generate(int fd, const std::vector<Target>& targets, uint16_t step, int bitrate,
                   size_t size, absl::Duration window);

}  // namespace smig::bench::sessions
