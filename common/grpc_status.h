// Maps absl::Status to grpc::Status code by code (both follow google.rpc.Code), keeping
// the message, for the thin gRPC adapters of every smig server (and back, for clients).
//
//   grpc::Status Get(...) override { return ToGrpcStatus(engine_.Get(...)); }
//   // A client: the server's code, and a message that says which call failed.
//   return FromGrpcStatus(stub->ListSessions(&ctx, req, &resp), "SMM ListSessions");
//   // Did the server answer, or did gRPC make the status up on our side?
//   if (AnsweredBy(ctx).empty()) ...   // "cannot reach the SMM at ..."
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <string>

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

// Every smig server (GrpcServer) puts this key in the trailing metadata of every call it
// finishes, OK or not, with the gRPC service that answered as its value
// ("smig.migrator.v1.Migrator"). A status without it was made by gRPC on the client's
// side (no connection, the client's own deadline) or by something in between (a proxy
// whose upstream is down), never by a smig server.
inline constexpr char kAnsweredByKey[] = "smig-answered-by";
// The service of the smig server that answered the call made with `ctx`, from its trailing
// metadata; "" when no smig server did. Call once the call has finished.
std::string AnsweredBy(const grpc::ClientContext& ctx);

// A unary handler's reply: the value into `response`, or the error as a gRPC status.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace smig
