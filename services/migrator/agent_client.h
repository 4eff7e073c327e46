// The SMM's view of the edge data planes it drives: their agent API (proto/smig/dataplane/v1)
// behind an interface, so the migration engine is tested against fakes and benchmarked
// without sockets.
//
//   std::unique_ptr<AgentDirectory> agents = MakeGrpcAgentDirectory(static_servers, pmm, opts);
//   absl::StatusOr<std::shared_ptr<Agent>> edge = agents->Find("edge-2");
//   absl::StatusOr<dv1::SessionState> state = (*edge)->ExportState(7);
//   absl::StatusOr<dv1::Session> s = (*edge)->ImportState(*state, /*fencing_token=*/57);
//
// Fencing: the calls that change what an edge serves carry the SMM leader's fencing token
// (agent.proto, "Fencing"): OpenSession in its request's fencing_token, ImportState and
// ReleaseSession as a parameter. kUnfenced (0) is a single SMM without an elected leader.
// An agent that has seen a newer leader's token refuses the call with FAILED_PRECONDITION.
// RaiseFence makes an agent refuse every older token before the caller reads it (a new
// leader's reconciliation does that first, so that a deposed leader's call still in flight
// cannot change the agent behind the reading's back).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/migrator/v1/migrator.pb.h"
#include "common/grpc_client.h"

namespace smig::migrator {

namespace dv1 = ::smig::dataplane::v1;

// Follows one session's events at an edge, from before a migration starts (subscribing
// first means the vehicle's confirmation cannot slip by unseen).
class ContiguityWatch {
 public:
  virtual ~ContiguityWatch() = default;
  // OK once the vehicle has reported `generation` (or newer) contiguous to this edge;
  // DEADLINE_EXCEEDED after `timeout`; UNAVAILABLE if the edge's event stream broke.
  virtual absl::Status Await(uint64_t generation, absl::Duration timeout) = 0;
};

// The fencing token of an SMM that is not fenced (no elected leader): agents accept it always.
inline constexpr uint64_t kUnfenced = 0;
// Session 0 is reserved: no agent ever serves it (OpenSession refuses it).
inline constexpr uint64_t kNoSession = 0;
// Whether an agent refused a call for its fencing token (a newer leader acts): the agent's
// FAILED_PRECONDITION whose message says "fenced: ..." (agent.proto, "Fencing"; the SMM's
// gRPC client prefixes the call and server). Other FAILED_PRECONDITIONs (a checkpoint that
// cannot be placed, ...) are the call's own failures.
bool IsFenced(const absl::Status& status);

// Where the SMM reads its fencing token: the elected leader's (the etcd create revision of
// its leader key), or kUnfenced.
using FencingTokenSource = std::function<uint64_t()>;

class Agent {
 public:
  virtual ~Agent() = default;
  virtual const std::string& server_id() const = 0;
  // Where its agent API is reached ("10.0.0.2:7400"), for messages that name the hop.
  virtual const std::string& address() const = 0;
  // Fenced by request.fencing_token().
  virtual absl::StatusOr<dv1::Session> OpenSession(const dv1::OpenSessionRequest& request) = 0;
  virtual absl::StatusOr<dv1::SessionState> ExportState(uint64_t session) = 0;
  virtual absl::StatusOr<dv1::Session> ImportState(const dv1::SessionState& state,
                                                   uint64_t fencing_token) = 0;
  virtual absl::StatusOr<dv1::Session> ReleaseSession(uint64_t session,
                                                      uint64_t fencing_token) = 0;
  virtual absl::StatusOr<dv1::Session> GetSession(uint64_t session) = 0;
  // Every session the agent serves.
  virtual absl::StatusOr<std::vector<dv1::Session>> ListSessions() = 0;
  // Makes the agent refuse every token older than `fencing_token` from now on, changing
  // nothing else: ReleaseSession of the reserved session 0 with the token. The agent admits
  // a token before it looks for the session (agent.proto, "Fencing"), so the call raises its
  // highest token and then fails NOT_FOUND, which is success here. FAILED_PRECONDITION if a
  // newer leader's token is already there; the agent's error (UNAVAILABLE, ...) otherwise.
  virtual absl::Status RaiseFence(uint64_t fencing_token) {
    absl::StatusOr<dv1::Session> r = ReleaseSession(kNoSession, fencing_token);
    if (r.ok() || absl::IsNotFound(r.status())) return absl::OkStatus();
    return r.status();
  }
  // A cheap call that proves the agent answers: UNAVAILABLE with the reason (gRPC's "failed
  // to connect ...", a deadline) if not. The message does not name the agent: the caller
  // says which hop it was (server_id(), address()).
  virtual absl::Status Ping() = 0;
  virtual absl::StatusOr<std::unique_ptr<ContiguityWatch>> WatchContiguity(uint64_t session) = 0;
};

class AgentDirectory {
 public:
  virtual ~AgentDirectory() = default;
  // NOT_FOUND naming the server when no registry knows it.
  virtual absl::StatusOr<std::shared_ptr<Agent>> Find(const std::string& server_id) = 0;
  // The ids of every server the directory knows now (for the SMM's reconciliation, which
  // reads them all). The registry's error when it cannot say.
  virtual absl::StatusOr<std::vector<std::string>> ListServers() = 0;
};

// Where automatic migrations go: the PMM's new target for the session's vehicle.
class TargetPicker {
 public:
  virtual ~TargetPicker() = default;
  // FAILED_PRECONDITION when no server is nearer than the current one.
  virtual absl::StatusOr<std::string> Pick(const v1::Session& session) = 0;
};

struct GrpcAgentOptions {
  absl::Duration rpc_timeout = absl::Seconds(5);
  ClientCredentials credentials;  // plaintext unless the config's client_tls says otherwise
};

// Agents reached over gRPC: the static servers first, then the PMM's registry (if
// `pmm_address` is set), refreshed when a server is not found.
std::unique_ptr<AgentDirectory> MakeGrpcAgentDirectory(std::vector<v1::StaticServer> servers,
                                                       const std::string& pmm_address,
                                                       GrpcAgentOptions options);
// Auto targets from the PMM's GetProximity (NEW_TARGET role). Null without a PMM.
std::unique_ptr<TargetPicker> MakePmmTargetPicker(const std::string& pmm_address,
                                                  const GrpcAgentOptions& options);

}  // namespace smig::migrator
