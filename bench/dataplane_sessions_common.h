// What the parts of smig-bench-sessions share (bench/dataplane_sessions.cc has the
// overview): the run's options, the header of every datagram (the generator writes it, the
// receiver reads it), the stop flag every wait checks, and small socket and file helpers.
//
//   absl::StatusOr<UniqueFd> rx = UdpSocket(ns, "0.0.0.0", kReceiverPort, 64 << 20);
//   if (!Sleep(absl::Seconds(1))) return Stopped();  // a signal or the --deadline
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "dataplane/transport/address.h"

namespace smig::bench::sessions {

// The flags the parts need; main reads them once.
struct Options {
  std::string sctp_stack;  // the data planes' SCTP stack
  int edge_cpu = 1;        // the core of the edge (and of the relay)
  int other_cpu = 0;       // the core of the vehicles, the generator and the receiver
  int bitrate = 2000000;   // bits per second of each session (and of the relay stream)
  int datagram = 1316;     // datagram size in bytes
  absl::Duration window;   // how long each step sends
  absl::Duration drain;    // after a step, how long the receiver must be quiet
};

constexpr uint32_t kMagic = 0x534d4742;  // "SMGB"
constexpr uint16_t kPathSmig = 0, kPathRelay = 1;
constexpr uint16_t kReceiverPort = 19000, kRelayPort = 19999, kIngestBase = 20000;
constexpr uint16_t kVehicleSctpPort = 6000;

// The first bytes of every datagram; the rest is padding up to --datagram.
struct Header {
  uint32_t magic;
  uint16_t path;
  uint16_t step;
  uint32_t session;
  uint32_t reserved;
  uint64_t seq;
  int64_t send_unix_ns;
};

// Set by a termination signal or the --deadline. Every wait checks it, so the run stops
// through its normal return path: every child process is stopped, every namespace deleted.
extern std::atomic<bool> g_stop;

// Sleeps, waking early when the run is being stopped; false if it was.
bool Sleep(absl::Duration d);
absl::Status Stopped();

absl::Status PinThisThread(int cpu);

// An address of the bench's own plan, an IPv4 literal.
transport::SocketAddress Ipv4(const std::string& ip, uint16_t port);

// A UDP socket made in network namespace `ns` ("" = this one), with receive buffer `rcvbuf`
// when it is positive, bound to bind_ip:port unless bind_ip is empty. Sockets keep the
// namespace they were created in, so the program reaches every namespace without helper
// processes.
absl::StatusOr<UniqueFd> UdpSocket(const std::string& ns, const std::string& bind_ip,
                                   uint16_t port, int rcvbuf);

// A file's contents ("" if it cannot be read).
std::string Slurp(const std::string& path);

}  // namespace smig::bench::sessions
