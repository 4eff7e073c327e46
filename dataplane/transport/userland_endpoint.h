// Userland SCTP (usrsctp) endpoint: SCTP over UDP encapsulation (RFC 6951), for hosts
// without the kernel module. Create it through CreateEndpoint(); this header is for the
// factory and for tests that need the stack alone.
//
// usrsctp is one stack per process with one UDP port: the first endpoint fixes the port
// (EndpointOptions::udp_encaps_port, 0 = 9899) and later ones must use the same.
#pragma once

#include <memory>

#include "dataplane/transport/endpoint.h"
#include "dataplane/transport/stack_counters.h"

namespace smig::transport {

absl::StatusOr<std::unique_ptr<Endpoint>> CreateUserlandEndpoint(const EndpointOptions& options);

// Starts the process's usrsctp stack on `udp_port` if it is not running. Fails with
// ALREADY_EXISTS when another socket holds the port (usrsctp itself would start anyway
// and lose every packet), and FAILED_PRECONDITION when the stack runs on another port.
absl::Status StartUsrsctp(uint16_t udp_port);

// The process's usrsctp statistics (all its associations); zeros before the stack starts.
StackCounters UserlandStackCounters();

}  // namespace smig::transport
