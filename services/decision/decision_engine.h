// DecisionEngine: the MDM's logic, without gRPC. It weighs latency, bandwidth and load per
// candidate server, applies a margin (hysteresis) and a dwell time per session so that a
// session never ping-pongs, explains every decision in plain words, and keeps the recent
// decisions.
//
//   DecisionEngine engine(registry.get());          // registry may be null (no metrics)
//   engine.UpdatePolicy(policy);                     // INVALID_ARGUMENT names the field
//   v1::DecisionRecord d = engine.Decide(42, "car-1", "edge-1", proximity, absl::Now());
//   if (d.outcome() == v1::OUTCOME_MIGRATE)   // request id: auto_migrator.h
//     Migrate(42, d.target_server_id(), MigrateRequestId(d));
//
// Time is always passed in (no clock inside), so tests drive dwell with a fake clock.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "smig/decision/v1/decision.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace prometheus {
class Counter;
class Registry;
}  // namespace prometheus

namespace smig::decision {

// latency 1, bandwidth 0.2, load 0.5, margin 0.2, dwell 3 s, max_load 0.9, MANUAL,
// 4 migrations in flight per server.
v1::Policy DefaultPolicy();
// OK, or INVALID_ARGUMENT naming the first offending field and its value.
absl::Status ValidatePolicy(const v1::Policy& policy);
// The policy as it would be in force: an unset dwell takes the default (3 s),
// max_migrations_per_server 0 the default (4), and MODE_UNSPECIFIED means MANUAL; then
// ValidatePolicy.
absl::StatusOr<v1::Policy> NormalizePolicy(v1::Policy policy);

// What the SMM lists about each server beyond the PMM's report, which may be older: the
// sessions served there and the migrations in flight to it (control_plane_clients.h,
// OccupancyOf). A decision counts max(PMM's sessions, serving) + arriving against a
// server's capacity, and arriving against max_migrations_per_server.
struct Occupancy {
  struct Counts {
    uint32_t serving = 0;
    uint32_t arriving = 0;
  };
  absl::flat_hash_map<std::string, Counts> servers;  // one lookup per candidate
};

struct DecideOptions {
  // Read the session's dwell state without changing it (Evaluate: the background loop owns
  // the dwell clock, and an on-demand look must not restart or consume it).
  bool peek = false;
  // Keep the decision in the history (and count it) only when its outcome, target or
  // current server differs from the session's previous one, or it is a MIGRATE. The loop
  // decides every tick; this keeps ListDecisions and the metric about changes. A record not
  // kept comes back with its outcome and target only, without reasons or candidates (a
  // MIGRATE is always kept; wording 10,000 decisions a tick that are then dropped would
  // cost more than deciding them).
  bool record_only_changes = false;
  // A standby replica's loop (services/decision/policy_store.h): keep the dwell clock
  // running exactly as the leader's does, so that Evaluate answers alike on every replica
  // and a new leader acts on a dwell that already ran out, but act as if nobody acted on a
  // MIGRATE (its dwell stays, with its start) and keep nothing (no history, no metric);
  // the record comes back without reasons or candidates.
  bool observe = false;
  // The SMM's view (must outlive the call); null: the PMM's report alone.
  const Occupancy* occupancy = nullptr;
};

class DecisionEngine {
 public:
  // `registry` (may be null) gets smig_decisions_total{outcome}; it must outlive the engine.
  explicit DecisionEngine(prometheus::Registry* registry = nullptr, size_t history = 1000);

  v1::Policy policy() const;
  // Replaces the policy (NormalizePolicy: an unset dwell takes the default (3 s) and
  // MODE_UNSPECIFIED means MANUAL; numbers are taken as given, as proto3 cannot tell 0 from
  // unset). Returns the policy now in force.
  absl::StatusOr<v1::Policy> UpdatePolicy(v1::Policy policy);

  // Decides for one session now. `proximity` is the PMM's view of the session's vehicle.
  // The record is kept for ListDecisions (see DecideOptions) and always returned.
  v1::DecisionRecord Decide(uint64_t session_id, absl::string_view vehicle_id,
                            absl::string_view current_server_id,
                            const proximity::v1::VehicleProximity& proximity, absl::Time now,
                            DecideOptions options = {});

  // Notes the migration a MIGRATE decision started (automatic mode). NOT_FOUND if the
  // decision has already left the history.
  absl::Status SetMigrationId(absl::string_view decision_id, absl::string_view migration_id);

  // Newest first; session_id 0 means every session; limit 0 means 50.
  std::vector<v1::DecisionRecord> ListDecisions(uint64_t session_id, uint32_t limit) const;

  // Drops the dwell state of sessions not in `live` (sessions that ended).
  void RetainSessions(const absl::flat_hash_set<uint64_t>& live);

 private:
  // Which candidate has been winning for a session, since when, over which current server.
  struct Dwell {
    std::string current;
    std::string candidate;
    absl::Time since;
  };
  struct Last {
    v1::Outcome outcome;
    std::string current;
    std::string target;
  };

  void Record(const v1::DecisionRecord& record, absl::string_view label)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t history_size_;
  const std::string id_prefix_;  // random per process, so decision ids never repeat
  mutable absl::Mutex mu_;
  v1::Policy policy_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Dwell> dwell_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Last> last_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::DecisionRecord> history_ ABSL_GUARDED_BY(mu_);  // newest first
  // smig_decisions_total{outcome}: the contract's six label values (deploy/metrics.txt).
  absl::flat_hash_map<std::string, prometheus::Counter*> counters_;
};

}  // namespace smig::decision
