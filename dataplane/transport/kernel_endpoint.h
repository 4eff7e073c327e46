// Kernel SCTP (lksctp) endpoint: a SOCK_SEQPACKET one-to-many socket. Create it through
// CreateEndpoint(); this header is for the factory and for tests that need the stack alone.
#pragma once

#include <memory>

#include "dataplane/transport/endpoint.h"

namespace smig::transport {

absl::StatusOr<std::unique_ptr<Endpoint>> CreateKernelEndpoint(const EndpointOptions& options);

// Linux reports spinfo_srtt in jiffies (rto in ms). The tick rate comes from
// $SMIG_KERNEL_HZ, else CONFIG_HZ in /boot/config-$(uname -r), else 250 (Debian's).
int KernelHz();

}  // namespace smig::transport
