#include "dataplane/daemon/vehicle_role.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "dataplane/daemon/proximity_reporter.h"
#include "common/grpc_client.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

absl::StatusOr<std::unique_ptr<Role>> VehicleRole::Create(RoleEnv env, NodeDeps& deps) {
  if (!env.config.live_feeds().empty()) {
    return absl::InvalidArgumentError("live_feeds are for edges; this data plane is a vehicle");
  }
  return std::unique_ptr<Role>(new VehicleRole(std::move(env), std::move(deps.make_sink)));
}

absl::StatusOr<std::unique_ptr<Companion>> VehicleRole::StartCompanions(
    const v1::DataplaneConfig& config, NodeApi& node) {
  if (config.proximity().pmm_address().empty()) return std::unique_ptr<Companion>();
  if (config.proximity().vehicle_id().empty()) {
    return absl::InvalidArgumentError("proximity reporting needs proximity.vehicle_id");
  }
  if (absl::StatusOr<ClientCredentials> c =
          ClientCredentials::FromConfig(config.proximity().client_tls());
      !c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat("proximity.", c.status().message()));
  }
  return std::unique_ptr<Companion>(std::make_unique<ProximityReporter>(node, config.proximity()));
}

VehicleRole::VehicleRole(RoleEnv env, SinkFactory make_sink)
    : endpoint_(env.endpoint),
      sinks_(env.config.sinks(), std::move(make_sink), env.publish),
      prober_(env.endpoint),
      engine_(
          env.endpoint,
          VehicleEngine::Options{
              .deliver = [this](uint64_t s, uint32_t f, absl::string_view d) { Deliver(s, f, d); },
              .on_drop =
                  [publish = env.publish](transport::AssocId assoc, absl::string_view reason,
                                          bool aborted) {
                    v1::AgentEvent e;
                    e.set_error(absl::StrCat("association ", assoc, ": frame refused (", reason,
                                             ")", aborted ? "; association aborted" : ""));
                    publish(std::move(e));
                  },
              .on_contiguous =
                  [this, publish = env.publish](uint64_t session, uint64_t generation,
                                                absl::Duration stall) {
                    if (generation > 1 && exports_) {
                      exports_->metrics.migration_stall.Observe(absl::ToDoubleSeconds(stall));
                    }
                    v1::AgentEvent e;
                    e.set_session_id(session);
                    e.set_contiguous_generation(generation);
                    publish(std::move(e));
                  }}) {}

void VehicleRole::Deliver(uint64_t session, uint32_t flow, absl::string_view data) {
  if (!sinks_.Deliver(session, flow, data).ok() && exports_) exports_->sink_errors.Increment();
}

VehicleRole::Exports::Exports(NodeMetrics& m)
    : metrics(m),
      duplicates(m.duplicates),
      sink_errors(m.dropped.Add({{"reason", "sink_error"}})) {}

void VehicleRole::AttachMetrics(NodeMetrics& metrics) {
  // Every reason shows, at 0 until it happens (the engine's first, then sink_error).
  std::map<std::string, CounterFeed> dropped;
  for (const char* reason : VehicleEngine::kDropReasons) {
    dropped.emplace(reason, CounterFeed(metrics.dropped.Add({{"reason", reason}})));
  }
  exports_.emplace(metrics);
  exports_->dropped = std::move(dropped);
}

void VehicleRole::ExportMetrics() {
  if (!exports_) return;
  ExportPathMetrics();
  uint64_t bytes = 0, frames = 0, duplicates = 0;
  size_t sessions = 0;
  for (uint64_t id : engine_.Sessions()) {
    ++sessions;
    for (const auto& [fid, f] : engine_.Flows(id)) {
      bytes += f.stats.delivered_bytes;
      frames += f.stats.delivered_frames;
      duplicates += f.stats.duplicates;
    }
  }
  for (const auto& [reason, n] : engine_.counters().dropped) {
    auto it = exports_->dropped.find(reason);
    if (it == exports_->dropped.end()) {
      it = exports_->dropped
               .emplace(reason, CounterFeed(exports_->metrics.dropped.Add({{"reason", reason}})))
               .first;
    }
    it->second.Update(n);
  }
  exports_->metrics.ExportTotals(bytes, frames, sessions);
  exports_->duplicates.Update(duplicates);
}

void VehicleRole::ExportPathMetrics() {
  std::set<std::pair<std::string, std::string>> seen;
  auto& paths = exports_->paths;
  for (const auto& [assoc, server] : engine_.Servers()) {
    absl::StatusOr<tv1::AssociationInfo> info = endpoint_.GetAssociation(assoc);
    if (!info.ok()) continue;
    for (const tv1::PathInfo& p : info->paths()) {
      // The peer's IP only: its port changes with every association (bounded labels).
      std::string peer = p.address().substr(0, p.address().rfind(':'));
      auto key = std::make_pair(server, peer);
      if (!seen.insert(key).second) continue;  // an old and a new association to one server
      auto [it, added] = paths.try_emplace(key);
      if (added) {
        std::map<std::string, std::string> labels{{"server", server}, {"peer", peer}};
        it->second = {&exports_->metrics.path_srtt.Add(labels),
                      &exports_->metrics.path_up.Add(labels)};
      }
      it->second.first->Set(p.srtt_ms() / 1000.0);
      it->second.second->Set(p.state() == tv1::PATH_STATE_ACTIVE ? 1 : 0);
    }
  }
  for (auto it = paths.begin(); it != paths.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    exports_->metrics.path_srtt.Remove(it->second.first);
    exports_->metrics.path_up.Remove(it->second.second);
    it = paths.erase(it);
  }
}

v1::Session VehicleRole::Describe(uint64_t session) const {
  v1::Session out;
  out.set_session_id(session);
  out.set_role(v1::ROLE_VEHICLE);
  std::vector<uint64_t> gens = engine_.Generations(session);
  out.set_phase(gens.empty() ? v1::SESSION_PHASE_CONNECTING : v1::SESSION_PHASE_SERVING);
  if (!gens.empty()) out.set_generation(gens.back());
  for (const auto& [fid, f] : engine_.Flows(session)) {
    v1::FlowStatus* fl = out.add_flows();
    fl->set_flow_id(fid);
    fl->set_next_sequence(f.next_sequence);
    fl->set_frames(f.stats.delivered_frames);
    fl->set_bytes(f.stats.delivered_bytes);
    fl->set_duplicates_dropped(f.stats.duplicates);
    fl->set_buffered_frames(f.buffered_frames);
    *fl->mutable_max_delivery_gap() = ToProtoDuration(f.stats.max_delivery_gap);
    fl->set_stalls(f.stats.stalls);
  }
  for (transport::AssocId a : endpoint_.Associations()) {
    if (absl::StatusOr<tv1::AssociationInfo> info = endpoint_.GetAssociation(a); info.ok()) {
      *out.add_associations() = *info;
    }
  }
  return out;
}

absl::StatusOr<v1::Session> VehicleRole::OpenSession(const v1::OpenSessionRequest& r,
                                                     absl::Time) {
  if (!r.vehicle_addresses().empty() || r.vehicle_port() != 0 || !r.flows().empty()) {
    return absl::InvalidArgumentError(
        "a vehicle's OpenSession takes session_id and session_key only: its edges bring the "
        "flows (open the session at an edge, or through the SMM's CreateSession)");
  }
  SMIG_RETURN_IF_ERROR(engine_.AdmitSession(r.session_id(), r.session_key()));
  return Describe(r.session_id());
}

absl::StatusOr<v1::Session> VehicleRole::GetSession(uint64_t session) {
  std::vector<uint64_t> ids = engine_.Sessions();
  if (std::find(ids.begin(), ids.end(), session) == ids.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session, " is unknown to this vehicle"));
  }
  return Describe(session);
}

std::vector<v1::Session> VehicleRole::ListSessions() {
  std::vector<v1::Session> out;
  for (uint64_t id : engine_.Sessions()) out.push_back(Describe(id));
  return out;
}

proximity::v1::ProximityReport VehicleRole::MeasureProximity(
    const std::vector<proximity::v1::Server>& servers, absl::Time now) {
  proximity::v1::ProximityReport report = prober_.Measure(servers, now);
  report.set_serving_server_id(engine_.ServingServer());
  return report;
}

}  // namespace smig::dataplane
