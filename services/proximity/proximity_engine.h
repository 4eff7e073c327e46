// ProximityEngine: the PMM's logic, without gRPC. It keeps the registry of edge servers
// (static from the config, registered with heartbeats, discovered in Kubernetes), each
// vehicle's last proximity report, and from both the seed paper's four server roles per
// vehicle; it publishes a vehicle's proximity to watchers whenever it changes noticeably.
//
//   absl::StatusOr<std::unique_ptr<ProximityEngine>> engine =
//       ProximityEngine::Create({.static_servers = config_servers, .registry = registry});
//   (*engine)->Report(report);                         // a vehicle's data plane, every ~100 ms
//   std::shared_ptr<ProximityWatch> w = (*engine)->Watch("car-1");
//   std::optional<v1::VehicleProximity> p = w->Pop(absl::Milliseconds(200));
//   (*engine)->Sweep();                                // every second: expiry without traffic
//
// Thread-safe. Time comes only from the engine's clock (a SimulatedClock in tests, which
// drive expiry by hand); it must outlive the engine. A watcher's Pop waits in real time:
// it waits for another thread's Report, not for a duration of the engine's.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace smig::proximity {

// One watcher's queue of VehicleProximity snapshots. Bounded: each entry is a vehicle's
// whole state, so a newer snapshot replaces a queued one of the same vehicle (nothing is
// lost), and only when `limit` different vehicles are queued is the oldest dropped.
// Dropping the last shared_ptr unsubscribes (the engine holds a weak_ptr), so a watcher
// that goes away mid-call needs no explicit cleanup.
class ProximityWatch {
 public:
  ProximityWatch(std::string vehicle_filter, size_t limit)
      : filter_(std::move(vehicle_filter)), limit_(limit) {}

  // Waits up to `timeout`; nullopt on timeout or once closed and drained.
  std::optional<v1::VehicleProximity> Pop(absl::Duration timeout);
  bool closed();
  uint64_t dropped();

  // For the engine.
  const std::string& filter() const { return filter_; }
  void Push(const v1::VehicleProximity& p);
  void Close();

 private:
  const std::string filter_;  // "" = every vehicle
  const size_t limit_;
  absl::Mutex mu_;
  // Vehicles in the order their snapshots were first queued, and each one's newest: a push
  // and a pop cost the same with 10,000 vehicles queued as with one.
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, v1::VehicleProximity> latest_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

class ProximityEngine {
 public:
  struct Options {
    std::vector<v1::Server> static_servers;  // never expire
    absl::Duration report_ttl = absl::Seconds(5);
    absl::Duration default_server_ttl = absl::Seconds(10);
    // A vehicle silent this long is forgotten (Get: NOT_FOUND), so that cars that drove
    // away do not pile up; before that its servers are merely IDLE.
    absl::Duration forget_vehicle_after = absl::Minutes(5);
    // Vehicles one watcher may have queued (one snapshot each) before the oldest is dropped:
    // a watcher of every vehicle (the MDM) needs room for the whole fleet.
    size_t watch_queue_limit = 65536;
    std::shared_ptr<prometheus::Registry> registry;  // may be null: no metrics
  };

  // INVALID_ARGUMENT for a static server without id or agent_address, or a duplicate id.
  static absl::StatusOr<std::unique_ptr<ProximityEngine>> Create(Options options,
                                                                 Clock& clock = Clock::Real());
  ~ProximityEngine();  // closes every watch

  // Adds or refreshes a registered server (a heartbeat); ttl <= 0 means the default. A
  // server known from the config or from Kubernetes keeps its source and addresses (a
  // registration may only refresh its load): FAILED_PRECONDITION if agent_address differs.
  absl::StatusOr<v1::Server> Register(const v1::Server& server, absl::Duration ttl);
  // Every live server, by id.
  std::vector<v1::Server> ListServers();
  // The Kubernetes discovery's whole current view: replaces every discovered server.
  // Static servers win over discovered ones of the same id; discovered ones over
  // registered ones (the cluster is authoritative). Load from heartbeats is kept.
  void ReplaceDiscovered(const std::vector<v1::Server>& servers);

  // Takes a vehicle's report. INVALID_ARGUMENT for an empty vehicle_id or a negative srtt.
  // Measurements of unknown servers are kept but play no role until that server exists
  // (it may register a moment later); only a report whose every measurement names an
  // unknown server is rejected, NOT_FOUND naming one, since that is a misconfiguration
  // (the vehicle probes a different fleet), not a race.
  absl::Status Report(const v1::ProximityReport& report);
  // NOT_FOUND naming the vehicle if it never reported (or was forgotten).
  absl::StatusOr<v1::VehicleProximity> Get(const std::string& vehicle_id);
  // Subscribes to one vehicle ("" = all): its current state first (if known), then every
  // noticeable change (see Changed() in the .cc).
  std::shared_ptr<ProximityWatch> Watch(const std::string& vehicle_id);
  // Applies expiry (servers without heartbeats, stale reports, forgotten vehicles) and
  // publishes what that changed. Reads are always exact without it; watchers hear of an
  // expiry only when this (or another change) runs, so main calls it every second.
  void Sweep();
  // Ends every watch (server shutdown); later Watch() calls get a closed watch.
  void CloseWatches();

 private:
  struct Vehicle {
    v1::ProximityReport report;
    absl::Time received_at;
    std::optional<v1::VehicleProximity> published;  // what watchers last got
  };

  ProximityEngine(Options options, Clock& clock);
  bool Live(const v1::Server& s, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::VehicleProximity Compute(const std::string& id, const Vehicle& v, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ComputeInto(const std::string& id, const Vehicle& v, absl::Time now,
                   v1::VehicleProximity& out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recomputes `id` (or every vehicle, if null) and pushes noticeable changes.
  void PublishLocked(const std::string* id, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateGaugeLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock& clock_;
  prometheus::Gauge* servers_gauge_ = nullptr;
  prometheus::Counter* reports_counter_ = nullptr;

  absl::Mutex mu_;
  std::map<std::string, v1::Server, std::less<>> servers_ ABSL_GUARDED_BY(mu_);
  absl::node_hash_map<std::string, Vehicle> vehicles_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<ProximityWatch>> watches_ ABSL_GUARDED_BY(mu_);
  v1::VehicleProximity scratch_ ABSL_GUARDED_BY(mu_);  // PublishLocked's, reused
  bool watches_closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace smig::proximity
