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

absl::StatusOr<std::unique_ptr<Endpoint>> CreateEndpoint(StackChoice choice,
                                                         const EndpointOptions& options) {
  const bool kernel = choice == StackChoice::kKernel ||
                      (choice == StackChoice::kAuto && KernelSctpAvailable());
  if (choice == StackChoice::kAuto) {
    LOG(INFO) << (kernel ? "--sctp-stack=auto chose the kernel stack (lksctp)"
                         : "--sctp-stack=auto chose the userland stack (usrsctp over UDP): this "
                           "kernel cannot open SCTP sockets");
  }
  return kernel ? CreateKernelEndpoint(options) : CreateUserlandEndpoint(options);
}

v1::FailoverProfile FastFailoverProfile() {
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
  // SCTP-PF at the first timeout, as RFC 7829 recommends: new data moves to another path
  // while heartbeats probe this one, and comes back at its first answer. A dead radio
  // then costs one RTO (the kernel in the VM: a 61-70 ms gap where two timeouts cost
  // 219 ms; its transport test, 375-433 ms against a 300 ms goal). The userland stack
  // counts one error more (userland_endpoint.cc): usrsctp's retransmission timer expires
  // spuriously on a path whose data never drains, so one timeout there proves nothing.
  p.set_pf_threshold(0);
  // Two timeouts must fit in what a dead radio may cost (150 ms): 50 + 100 ms. A cell
  // path's RTO is its own srtt + 4 rttvar, above this.
  *p.mutable_rto_min() = ToProtoDuration(absl::Milliseconds(50));
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
