// Role: what a data plane is (an edge server, a vehicle, ...), seen from the node's loop
// and from the agent API. DataplaneNode (node.h) owns one role, made by name from the
// registry (role_registry.h), and calls it only from its loop thread:
//
//   // in the loop
//   std::vector<pollfd> fds;  role->AddWakeFds(fds);        // besides the endpoint's
//   in = ...wait up to std::min(role->NextWait(now), 5 ms), then receive...;
//   role->Handle(in, now);
//   role->Pump(now);
//   // from the agent API, posted to the loop
//   absl::StatusOr<v1::Session> s = role->ImportState(state, absl::Now());
//
// The agent calls a role does not serve keep their defaults here, which answer
// FAILED_PRECONDITION ("this data plane is a vehicle, not an edge").
//
// Ownership: a role owns its engine and whatever it reads besides the node's endpoint
// (live feeds, sinks, a probe endpoint). RoleEnv's references (the node's config and
// endpoint) outlive it. Not thread-safe: only the node's loop calls it (or the thread
// that stopped the loop, after it has).
#pragma once

#include <poll.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/daemon/sink_set.h"
#include "dataplane/media/source.h"
#include "dataplane/transport/endpoint.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/config.pb.h"
#include "smig/dataplane/v1/session.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace prometheus {
class Registry;
}

namespace smig::dataplane {

class NodeMetrics;

// Makes the media source of one flow an edge serves (EdgeEngine::SourceFactory).
using SourceFactory = std::function<absl::StatusOr<std::unique_ptr<media::Source>>(
    const v1::FlowState& flow, absl::Time now)>;

// What a node is started from (DataplaneNode::Deps). A role's factory takes the parts
// it uses (a probe endpoint, a source or sink factory) and leaves the rest.
struct NodeDeps {
  v1::DataplaneConfig config;
  std::unique_ptr<transport::Endpoint> endpoint;
  // Edge: where vehicles keep probe associations (may be null). Accepted and otherwise
  // ignored: SCTP's heartbeats on them are the measurement.
  std::unique_ptr<transport::Endpoint> probe_endpoint;
  SourceFactory make_source;  // edge
  SinkFactory make_sink;      // vehicle
  std::shared_ptr<prometheus::Registry> registry;  // may be null: no metrics
};

// What the node gives every role it makes.
struct RoleEnv {
  const v1::DataplaneConfig& config;  // the node's
  transport::Endpoint& endpoint;      // the node's: every role's associations live on it
  // To WatchEvents subscribers (the node stamps the time and applies their filters).
  std::function<void(v1::AgentEvent)> publish;
};

class Role {
 public:
  virtual ~Role() = default;
  // The registry's name of the role: --role's value and the metrics' "role" label.
  virtual absl::string_view name() const = 0;

  // ---- The loop ----
  // Descriptors besides the endpoint's that wake the loop (live sources, a probe
  // listener). With none, the loop waits in the endpoint's Receive itself.
  virtual void AddWakeFds(std::vector<pollfd>& /*fds*/) const {}
  // After a wait on AddWakeFds' descriptors: reads what Handle does not see.
  virtual void AfterWait() {}
  // How long the loop may wait before Pump has work (the loop caps it at a few ms).
  virtual absl::Duration NextWait(absl::Time /*now*/) const { return absl::InfiniteDuration(); }
  // What the endpoint's Receive returned (a message, an event, nothing, or an error).
  virtual void Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in,
                      absl::Time now) = 0;
  // Timed work after every Handle (sending what is due).
  virtual void Pump(absl::Time /*now*/) {}
  // True for an association that carries a session (a failover on it counts).
  virtual bool Carries(transport::AssocId assoc) const = 0;

  // ---- Metrics (only when the node exports them) ----
  // Once, before the loop starts. `metrics` is the node's and outlives the role.
  virtual void AttachMetrics(NodeMetrics& metrics) = 0;
  // Every few hundred ms: adds what the engine counted since the last call.
  virtual void ExportMetrics() = 0;

  // ---- Stopping ----
  // Stop(grace): releases every session, then waits (up to the grace) until Drained().
  virtual void ReleaseAll() {}
  virtual bool Drained() const { return true; }
  // The loop has stopped: flush and close what the role writes to.
  virtual void Close() {}

  // ---- The agent API ----
  // Edge: serves a new session (generation 1). Vehicle: accepts its edges (its key).
  virtual absl::StatusOr<v1::Session> OpenSession(const v1::OpenSessionRequest& /*request*/,
                                                  absl::Time /*now*/) {
    return NotAnEdge();
  }
  virtual absl::StatusOr<v1::Session> ImportState(const v1::SessionState& /*state*/,
                                                  absl::Time /*now*/) {
    return NotAnEdge();
  }
  virtual absl::StatusOr<v1::SessionState> ExportState(uint64_t /*session*/, absl::Time /*now*/) {
    return NotAnEdge();
  }
  virtual absl::StatusOr<v1::Session> ReleaseSession(uint64_t /*session*/) { return NotAnEdge(); }
  virtual absl::StatusOr<v1::Session> GetSession(uint64_t session) = 0;
  virtual std::vector<v1::Session> ListSessions() = 0;
  // Vehicle: how near each listed server is (see Prober). Others: an empty report.
  virtual proximity::v1::ProximityReport MeasureProximity(
      const std::vector<proximity::v1::Server>& /*servers*/, absl::Time /*now*/) {
    return {};
  }

 protected:
  absl::Status NotAnEdge() const {
    return absl::FailedPreconditionError(
        absl::StrCat("this data plane is a ", name(), ", not an edge"));
  }
};

// How the registry makes a role; an error (INVALID_ARGUMENT for a config the role
// cannot serve) stops the node from starting.
using RoleFactory = absl::StatusOr<std::unique_ptr<Role>> (*)(RoleEnv env, NodeDeps& deps);

// Opens an endpoint on the node's SCTP stack (main's transport::CreateEndpoint).
using EndpointOpener = std::function<absl::StatusOr<std::unique_ptr<transport::Endpoint>>(
    const transport::EndpointOptions& options)>;
// How main opens a role's endpoints besides the node's (the edge's probe endpoint) into
// `deps`, before the node starts. `node_endpoint` is the options of the node's endpoint
// (addresses, encapsulation, failover profile) to start from; `open` opens on its stack.
using EndpointsOpener = absl::Status (*)(const v1::DataplaneConfig& config,
                                         const transport::EndpointOptions& node_endpoint,
                                         const EndpointOpener& open, NodeDeps& deps);

}  // namespace smig::dataplane
