// VehicleRole: the data plane of a vehicle. A VehicleEngine takes every edge's
// associations, merges their frames and hands each payload once, in order, to the
// flow's sink (SinkSet); a Prober measures how near each edge server is. A vehicle serves
// GetSession, ListSessions and MeasureProximity; the edge-only agent calls answer
// FAILED_PRECONDITION ("this data plane is a vehicle, not an edge").
//
//   absl::StatusOr<std::unique_ptr<Role>> car = VehicleRole::Create(std::move(env), deps);
//   proximity::v1::ProximityReport r = (*car)->MeasureProximity(servers, absl::Now());
//
// Made by the role registry for ROLE_VEHICLE (role_registry.cc), which has main make its
// endpoint listen (edges connect to it) and start its companions with StartCompanions;
// see Role for the calls.
// Ownership: owns its engine, sinks and probes. The node's config and endpoint (RoleEnv)
// outlive it. Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/daemon/companion.h"
#include "dataplane/daemon/node_metrics.h"
#include "dataplane/daemon/prober.h"
#include "dataplane/daemon/role.h"
#include "dataplane/daemon/sink_set.h"
#include "dataplane/vehicle/vehicle_engine.h"

namespace smig::dataplane {

class VehicleRole final : public Role {
 public:
  static constexpr absl::string_view kName = "vehicle";

  // INVALID_ARGUMENT for a config with live feeds (they are an edge's).
  static absl::StatusOr<std::unique_ptr<Role>> Create(RoleEnv env, NodeDeps& deps);
  // CompanionStarter (companion.h): with a proximity.pmm_address, a ProximityReporter that
  // streams this vehicle's measurements to the PMM. INVALID_ARGUMENT without a
  // proximity.vehicle_id.
  static absl::StatusOr<std::unique_ptr<Companion>> StartCompanions(
      const v1::DataplaneConfig& config, NodeApi& node);

  absl::string_view name() const override { return kName; }

  void Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in,
              absl::Time now) override {
    engine_.Handle(in, now);
  }
  bool Carries(transport::AssocId assoc) const override { return engine_.Carries(assoc); }

  void AttachMetrics(NodeMetrics& metrics) override;
  void ExportMetrics() override;
  void Close() override { sinks_.CloseAll(); }

  // Admits the session: its key, nothing else (INVALID_ARGUMENT for anything an edge
  // would need; ALREADY_EXISTS for the session with another key).
  absl::StatusOr<v1::Session> OpenSession(const v1::OpenSessionRequest& request,
                                          absl::Time now) override;
  absl::StatusOr<v1::Session> GetSession(uint64_t session) override;
  std::vector<v1::Session> ListSessions() override;
  proximity::v1::ProximityReport MeasureProximity(
      const std::vector<proximity::v1::Server>& servers, absl::Time now) override;

 private:
  // What the engine counts only at a vehicle, as series (made by AttachMetrics).
  struct Exports {
    explicit Exports(NodeMetrics& m);
    NodeMetrics& metrics;
    CounterFeed duplicates;
    prometheus::Counter& sink_errors;                 // smig_frames_dropped_total{sink_error}
    std::map<std::string, CounterFeed> dropped;       // by the engine's reason
    // The per-path gauges exported last time, by (server, peer IP): removed when their
    // path or association goes.
    std::map<std::pair<std::string, std::string>, std::pair<prometheus::Gauge*, prometheus::Gauge*>>
        paths;
  };

  VehicleRole(RoleEnv env, SinkFactory make_sink);
  void Deliver(uint64_t session, uint32_t flow, absl::string_view data);
  void ExportPathMetrics();
  v1::Session Describe(uint64_t session) const;

  transport::Endpoint& endpoint_;
  SinkSet sinks_;
  Prober prober_;
  std::optional<Exports> exports_;
  VehicleEngine engine_;  // last: its callbacks use the members above
};

}  // namespace smig::dataplane
