// What a gRPC address says about where it leads, for the TLS rules: servers serve plaintext
// on local addresses only (common/grpc_server.h), and a client dialing an IP address
// verifies the name configured for it (common/grpc_client.h).
//
//   GrpcHost("dns:///smig-migrator-replicas:7300") == "smig-migrator-replicas"
//   IsLocalAddress("unix:/run/smig/pmm.sock") && IsLocalAddress("127.0.0.1:0")
//   !IsLocalAddress("0.0.0.0:7100") && IsIpLiteral("10.0.0.7")
#pragma once

#include <string>
#include "absl/strings/string_view.h"

namespace smig {

// The host of "host:port", "[v6]:port", "dns:[//authority/]host:port", "ipv4:a.b.c.d:port"
// or "ipv6:[v6]:port" (the first address of a list). Empty for a unix socket.
std::string GrpcHost(absl::string_view address);
bool IsUnixSocket(absl::string_view address);
bool IsIpLiteral(absl::string_view host);
// A unix socket, "localhost", 127.0.0.0/8 or ::1: reachable from this host only.
bool IsLocalAddress(absl::string_view address);

}  // namespace smig
