// Hostile input for a gRPC server, method by method, with no compiled stubs: every method
// of a service (from the linked-in descriptors) is called with
//   - bytes no protobuf decoder accepts (a length that runs past the end),
//   - each field of its request on the wrong wire type, and
//   - `random_messages` well-formed requests whose fields hold random values (seeded).
// Each call is a generic streaming call: one request, half-close, read what comes until
// the deadline, so unary and streaming methods are driven alike. A server-streaming method
// may answer a valid request with a stream that only the deadline ends.
//
//   auto results = testbed::ProbeEveryMethod(channel, "smig.migrator.v1.Migrator", {});
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace smig::testbed {

struct ProbeOptions {
  int random_messages = 8;
  uint64_t seed = 1;
  absl::Duration deadline = absl::Seconds(5);
  absl::Duration stream_deadline = absl::Milliseconds(500);  // server-streaming methods
  // Random integers are never below this (0 and the largest values aside): ids of the
  // sessions a test streams stay out of reach of random requests, which may be valid calls.
  uint64_t smallest_random_integer = 1000;
};

struct ProbeResult {
  std::string method;  // "/pkg.Service/Method"
  std::string input;   // "undecodable", "wrong wire types" or "random #k"
  grpc::StatusCode code;
  std::string message;
};

// Empty if `service` is not in the linked-in descriptors.
std::vector<ProbeResult> ProbeEveryMethod(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service,
                                          const ProbeOptions& options);

}  // namespace smig::testbed
