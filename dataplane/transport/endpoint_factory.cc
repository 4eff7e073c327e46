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
  switch (choice) {
    case StackChoice::kKernel:
      return CreateKernelEndpoint(options);
    case StackChoice::kUserland:
      return CreateUserlandEndpoint(options);
    case StackChoice::kAuto:
      break;
  }
  if (KernelSctpAvailable()) {
    LOG(INFO) << "--sctp-stack=auto chose the kernel stack (lksctp)";
    return CreateKernelEndpoint(options);
  }
  LOG(INFO) << "--sctp-stack=auto chose the userland stack (usrsctp over UDP): this kernel "
               "cannot open SCTP sockets";
  return CreateUserlandEndpoint(options);
}

v1::FailoverProfile FastFailoverProfile() {
  v1::FailoverProfile p;
  // RTO.min must stay above the slowest radio's round trip (cell: about 50 ms): at 50 ms
  // the edge demo's cell path timed out spuriously and its cwnd never grew past ~8 KB
  // (1.5 Mbit/s); immediate SACKs keep the RTT estimate free of the delayed-SACK wait.
  *p.mutable_rto_initial() = ToProtoDuration(absl::Milliseconds(200));
  *p.mutable_rto_min() = ToProtoDuration(absl::Milliseconds(100));
  *p.mutable_rto_max() = ToProtoDuration(absl::Milliseconds(300));
  *p.mutable_heartbeat_interval() = ToProtoDuration(absl::Milliseconds(100));
  p.set_path_max_retrans(2);
  p.set_pf_threshold(0);
  *p.mutable_sack_delay() = ToProtoDuration(absl::Milliseconds(0));
  p.set_assoc_max_retrans(4);
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
