// EdgeRole: the data plane of an edge server. An EdgeEngine serves sessions to vehicles
// (OpenSession/ImportState, ExportState, ReleaseSession); the role also binds the
// config's standing live feeds, and drains the probe endpoint vehicles measure it over.
//
//   absl::StatusOr<std::unique_ptr<Role>> edge = EdgeRole::Create(std::move(env), deps);
//   (*edge)->ImportState(state, absl::Now());          // from the node's loop
//
// Made by the role registry for ROLE_EDGE (role_registry.cc), which has main open the
// probe endpoint with OpenEndpoints; see Role for the calls.
// Ownership: owns its engine, its live feeds and deps.probe_endpoint (taken from deps).
// The node's config and endpoint (RoleEnv) outlive it. Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/daemon/node_metrics.h"
#include "dataplane/daemon/role.h"
#include "dataplane/edge/edge_engine.h"

namespace smig::dataplane {

class EdgeRole final : public Role {
 public:
  static constexpr absl::string_view kName = "edge";

  // INVALID_ARGUMENT without a server_id or for a live feed without a name; a feed's
  // address error (prefixed with live_feeds["name"]) when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<Role>> Create(RoleEnv env, NodeDeps& deps);
  // EndpointsOpener (role.h): with a probe_port, opens the probe endpoint vehicles
  // measure this server over (listening, on the node's addresses) into deps.probe_endpoint.
  // INVALID_ARGUMENT for a probe_port above 65535.
  static absl::Status OpenEndpoints(const v1::DataplaneConfig& config,
                                    const transport::EndpointOptions& node_endpoint,
                                    const EndpointOpener& open, NodeDeps& deps);

  absl::string_view name() const override { return kName; }

  void AddWakeFds(std::vector<pollfd>& fds) const override;
  void AfterWait() override;
  absl::Duration NextWait(absl::Time now) const override { return engine_.NextWait(now); }
  void Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in,
              absl::Time now) override {
    engine_.Handle(in, now);
  }
  void Pump(absl::Time now) override { engine_.Pump(now); }
  bool Carries(transport::AssocId assoc) const override { return engine_.Carries(assoc); }

  void AttachMetrics(NodeMetrics& metrics) override;
  void ExportMetrics() override;

  void ReleaseAll() override;
  bool Drained() const override { return engine_.Sessions().empty(); }

  absl::StatusOr<v1::Session> OpenSession(const v1::OpenSessionRequest& request,
                                          absl::Time now) override;
  absl::StatusOr<v1::Session> ImportState(const v1::SessionState& state, absl::Time now) override;
  absl::StatusOr<v1::SessionState> ExportState(uint64_t session, absl::Time now) override {
    return engine_.Export(session, now);
  }
  absl::StatusOr<v1::Session> ReleaseSession(uint64_t session) override;
  absl::StatusOr<v1::Session> GetSession(uint64_t session) override {
    return engine_.Describe(session);
  }
  std::vector<v1::Session> ListSessions() override;

 private:
  // What the engine counts only at an edge, as series (made by AttachMetrics).
  struct Exports {
    explicit Exports(NodeMetrics& m);
    NodeMetrics& metrics;
    CounterFeed send_errors, send_deferrals, skipped, resent, queued_dropped, redundant_bytes;
    std::map<std::string, CounterFeed> live_feeds;  // by feed name
  };

  EdgeRole(RoleEnv env, std::unique_ptr<transport::Endpoint> probe_endpoint,
           EdgeEngine::Options options);

  std::unique_ptr<transport::Endpoint> probe_endpoint_;  // may be null
  EdgeEngine engine_;
  std::optional<Exports> exports_;
};

}  // namespace smig::dataplane
