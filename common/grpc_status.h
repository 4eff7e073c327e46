// Maps absl::Status to grpc::Status code by code (both follow google.rpc.Code), keeping
// the message, for the thin gRPC adapters of every smig server (and back, for clients).
//
//   grpc::Status Get(...) override { return ToGrpcStatus(engine_.Get(...)); }
//   // A client: the server's code, and a message that says which call failed.
//   return FromGrpcStatus(stub->ListSessions(&ctx, req, &resp), "SMM ListSessions");
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace smig {

grpc::Status ToGrpcStatus(const absl::Status& status);
// The reverse, for clients that hand a server's answer on as an absl::Status.
absl::Status FromGrpcStatus(const grpc::Status& status);
// The same, with the message "<context>: <server's message>" (OK stays OK), so that an
// error handed on names the call that failed: "SMM ListSessions: failed to connect".
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view context);

// A unary handler's reply: the value into `response`, or the error as a gRPC status.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace smig
