// AutoMigrator: the MDM's background loop. It follows the PMM's WatchProximity (every
// vehicle; reconnecting with backoff while the PMM is down) and decides for every session of
// a vehicle whenever that vehicle's proximity changes, and for every session on a regular
// tick so that a dwell time can run out without new updates. In MODE_AUTOMATIC a MIGRATE
// goes to the SMM (trigger auto, request_id = MigrateRequestId(decision)); in MODE_MANUAL
// decisions are only recorded. It runs in both modes, so it alone advances the sessions'
// dwell clocks.
//
//   AutoMigrator loop(engine, clients, {});   // engine and clients must outlive it
//   loop.Start();
//   ...
//   loop.Stop();                               // also on destruction
//
//   // One of several replicas (services/decision/policy_store.h): only the leader acts.
//   AutoMigrator loop(engine, clients, {}, clock, [&policy] { return policy.MayAct(); });
//
// Replicas. With `may_act`, every replica runs the loop, but a pass in which may_act() is
// false only observes (DecideOptions::observe): its dwell clocks run as the leader's do, and
// it records and migrates nothing. may_act() is asked again before every Migrate call
// (retries included), so a replica that stops leading sends no further Migrate: the
// election's belief ends before another replica can lead. When a replica starts acting it
// lists the SMM's sessions afresh before deciding. A Migrate in flight when leadership ends
// is not recalled; the request id makes the new leader's Migrate for the same dwell the
// same migration at the SMM.
//
// All its time is the clock's (decisions, ticks, the sessions cache, backoff, retries), so
// tests advance a SimulatedClock; the clock must outlive the loop.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "services/decision/control_plane_clients.h"
#include "services/decision/decision_engine.h"

namespace smig::decision {

// The SMM request id of a MIGRATE decision: "mdm/<session>/<from>/<to>/<dwell start, unix
// seconds>". Not the decision's own id (random per process): every replica that watched the
// same dwell builds the same one, so the SMM starts one migration however many replicas
// (a leader, then its successor) send it. A later move of the session, or a retry after a
// rollback, has a dwell of its own and so a new id (unless a dwell under 1 s started in the
// same second: then the SMM answers with the earlier migration, and the next dwell retries).
std::string MigrateRequestId(const v1::DecisionRecord& decision);

class AutoMigrator {
 public:
  struct Options {
    absl::Duration tick = absl::Milliseconds(500);
    // ListSessions is cached this long (a Migrate it started is noted in the cache; one that
    // failed drops the cache at once).
    absl::Duration sessions_ttl = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(250);
    absl::Duration max_backoff = absl::Seconds(10);
  };

  // Whether this replica may act now; null: always (a single replica).
  using MayAct = std::function<bool()>;

  AutoMigrator(DecisionEngine& engine, ControlPlaneClients& clients, Options options,
               Clock& clock = Clock::Real(), MayAct may_act = nullptr);
  ~AutoMigrator();
  AutoMigrator(const AutoMigrator&) = delete;
  AutoMigrator& operator=(const AutoMigrator&) = delete;

  void Start();
  // Cancels the watch and joins both threads; a Migrate in flight finishes first.
  void Stop();

  // Decisions taken (one per session of a vehicle decided for) and passes made so far.
  uint64_t decided() const { return decided_.load(std::memory_order_relaxed); }
  uint64_t passes() const { return passes_.load(std::memory_order_relaxed); }

 private:
  void WatchLoop();
  void DecideLoop();
  using Snapshot = std::shared_ptr<const proximity::v1::VehicleProximity>;
  void DecideFor(const std::vector<Snapshot>& vehicles);
  // The migration's id if the SMM started it (or already had it).
  std::optional<std::string> MigrateOne(const migrator::v1::Session& session,
                                        const v1::DecisionRecord& decision);
  bool Acting() const { return may_act_ == nullptr || may_act_(); }
  bool Wake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !dirty_.empty(); }
  // Whether `line` is news for `topic`, i.e. not the line noted for it last time (then
  // noted): a PMM or SMM that stays down is logged once, not twice a second. An empty line
  // notes that all is well again.
  bool News(const std::string& topic, const std::string& line);

  DecisionEngine& engine_;
  ControlPlaneClients& clients_;
  const Options options_;
  Clock& clock_;
  const MayAct may_act_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Shared, not copied: a pass takes every vehicle's snapshot (10,000 every tick at scale).
  absl::flat_hash_map<std::string, Snapshot> latest_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_ ABSL_GUARDED_BY(mu_);  // vehicles with news

  // The decide thread's own state.
  std::vector<migrator::v1::Session> sessions_;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_vehicle_;  // indexes in sessions_
  Occupancy occupancy_;  // of sessions_
  absl::Time sessions_at_ = absl::InfinitePast();
  bool acting_ = false;  // whether the previous pass acted

  absl::Mutex log_mu_;
  absl::flat_hash_map<std::string, std::string> last_log_ ABSL_GUARDED_BY(log_mu_);

  std::atomic<uint64_t> decided_ = 0;
  std::atomic<uint64_t> passes_ = 0;

  std::thread watch_thread_;
  std::thread decide_thread_;
};

}  // namespace smig::decision
