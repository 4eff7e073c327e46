#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "dataplane/transport/endpoint.h"
#include "dataplane/transport/kernel_endpoint.h"
#include "dataplane/transport/userland_endpoint.h"

namespace smig::transport {

absl::StatusOr<StackChoice> ParseStackChoice(absl::string_view text) {
  if (text == "auto") return StackChoice::kAuto;
  if (text == "kernel") return StackChoice::kKernel;
  if (text == "userland") return StackChoice::kUserland;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown SCTP stack \"", text, "\": use auto, kernel or userland"));
}

absl::string_view StackName(v1::StackKind kind) {
  switch (kind) {
    case v1::STACK_KIND_KERNEL: return "kernel";
    case v1::STACK_KIND_USERLAND: return "userland";
    default: return "unspecified";
  }
}

bool KernelSctpAvailable() {
  int fd = socket(AF_INET, SOCK_SEQPACKET | SOCK_CLOEXEC, IPPROTO_SCTP);
  if (fd < 0) return false;
  close(fd);
  return true;
}

v1::StackKind ResolveStack(StackChoice choice) {
  switch (choice) {
    case StackChoice::kKernel: return v1::STACK_KIND_KERNEL;
    case StackChoice::kUserland: return v1::STACK_KIND_USERLAND;
    case StackChoice::kAuto: break;
  }
  return KernelSctpAvailable() ? v1::STACK_KIND_KERNEL : v1::STACK_KIND_USERLAND;
}

absl::StatusOr<std::unique_ptr<Endpoint>> CreateEndpoint(StackChoice choice,
                                                         const EndpointOptions& options) {
  const bool kernel = ResolveStack(choice) == v1::STACK_KIND_KERNEL;
  if (choice == StackChoice::kAuto) {
    LOG(INFO) << (kernel ? "--sctp-stack=auto chose the kernel stack (lksctp)"
                         : "--sctp-stack=auto chose the userland stack (usrsctp over UDP): this "
                           "kernel cannot open SCTP sockets");
  }
  return kernel ? CreateKernelEndpoint(options) : CreateUserlandEndpoint(options);
}

v1::FailoverProfile FastFailoverProfile(v1::StackKind stack) {
  v1::FailoverProfile p;
  *p.mutable_rto_initial() = ToProtoDuration(absl::Milliseconds(200));
  *p.mutable_rto_max() = ToProtoDuration(absl::Milliseconds(300));
  *p.mutable_heartbeat_interval() = ToProtoDuration(absl::Milliseconds(100));
  p.set_path_max_retrans(2);
  // A SACK for every packet: the RTT estimate carries no delayed-SACK wait. (usrsctp
  // ignores a zero delay, but its SACK frequency of 1 acknowledges every packet anyway.)
  *p.mutable_sack_delay() = ToProtoDuration(absl::Milliseconds(0));
  p.set_assoc_max_retrans(4);
  // Both stacks limit a burst to 4 packets beyond what is in flight; usrsctp does it by
  // cutting cwnd to flight + 4 MTUs whenever the window is not full, so a paced stream's
  // window never opens and it arrives in one burst per round trip (on a 60 ms cell path:
  // a 30-57 ms gap every 63 ms).
  p.set_max_burst(0);
  if (stack == v1::STACK_KIND_USERLAND) {
    // usrsctp does not restart a path's T3-rtx timer when a SACK acknowledges new data
    // (its fast SACK path only starts a timer that is not running, against RFC 4960
    // 6.3.2 R3). While a stream keeps data in flight, which it does whenever the round
    // trip exceeds the ~5 ms between frames, the timer expires one RTO after it started
    // however well the path works: about 5 spurious timeouts a second on a 60 ms cell
    // path. Each counts an error against the path. At a PF threshold of 0 it becomes
    // potentially failed, and usrsctp puts no new data on a PF path that is not its
    // alternate, so the stream stops until the next SACK: a 30-60 ms gap every 200 ms.
    // (Declared unreachable instead, the path lost its data to a dead radio and ended
    // the association.) A threshold of 1 needs two timeouts with no SACK between them,
    // which only a dead path gives: the next SACK clears the error count.
    p.set_pf_threshold(1);
    // Two timeouts are needed, so they must be short for a dead radio to cost < 150 ms:
    // 50 + 100 ms. A cell path's RTO is its own srtt + 4 rttvar, above this.
    *p.mutable_rto_min() = ToProtoDuration(absl::Milliseconds(50));
  } else {
    // Linux restarts the timer as the RFC says: its timeouts are real, and the first one
    // moves new data (RFC 7829 PF). RTO.min stays above a 50 ms cell round trip.
    p.set_pf_threshold(0);
    *p.mutable_rto_min() = ToProtoDuration(absl::Milliseconds(100));
  }
  return p;
}

v1::FailoverProfile DefaultFailoverProfile() {
  v1::FailoverProfile p;
  *p.mutable_rto_initial() = ToProtoDuration(absl::Milliseconds(3000));
  *p.mutable_rto_min() = ToProtoDuration(absl::Milliseconds(1000));
  *p.mutable_rto_max() = ToProtoDuration(absl::Milliseconds(60000));
  *p.mutable_heartbeat_interval() = ToProtoDuration(absl::Milliseconds(30000));
  p.set_path_max_retrans(5);
  *p.mutable_sack_delay() = ToProtoDuration(absl::Milliseconds(200));
  p.set_assoc_max_retrans(10);
  return p;
}

}  // namespace smig::transport
