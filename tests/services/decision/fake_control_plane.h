// A ControlPlaneClients fake: sessions and proximity the test sets, Migrate calls recorded
// (and, by default, done at once: the session moves to the target; or left in flight), and a WatchProximity
// that sends every vehicle's proximity, then each SetProximity, and can fail on purpose.
// ReplicaClients: one replica's share of a FakeControlPlane when several replicas run.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/decision/control_plane_clients.h"

namespace smig::decision::testing {

// Polls `done` for up to `timeout` of real time (the loop runs on its own threads).
inline bool Eventually(const std::function<bool()>& done,
                       absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

struct MigrateCall {
  uint64_t session_id;
  std::string target, reason, request_id;
  // In flight mode, after the call: the sessions the SMM lists on the target plus those in
  // flight to it, and those in flight alone.
  uint32_t target_taken = 0, target_arriving = 0;
};

class FakeControlPlane final : public ControlPlaneClients {
 public:
  void SetSession(migrator::v1::Session s) {
    absl::MutexLock lock(&mu_);
    sessions_[s.session_id()] = std::move(s);
  }
  void SetProximity(const proximity::v1::VehicleProximity& p) {
    absl::MutexLock lock(&mu_);
    proximity_[p.vehicle_id()] = p;
    if (watching_) pending_.push_back(p);
  }
  // The next `n` WatchProximity calls fail with UNAVAILABLE (a PMM that is down).
  void FailWatches(int n) {
    absl::MutexLock lock(&mu_);
    failing_watches_ = n;
  }
  void set_move_on_migrate(bool move) {
    absl::MutexLock lock(&mu_);
    move_on_migrate_ = move;
  }
  // Migrate leaves the session in flight (migration_id, migration_to_server_id) as the
  // SMM does while it works, until CompleteMigrations moves every one in flight.
  void set_migrations_in_flight(bool in_flight) {
    absl::MutexLock lock(&mu_);
    in_flight_ = in_flight;
  }
  int CompleteMigrations() {
    absl::MutexLock lock(&mu_);
    int done = 0;
    for (auto& [id, s] : sessions_) {
      if (s.migration_to_server_id().empty()) continue;
      s.set_server_id(s.migration_to_server_id());
      s.clear_migration_to_server_id();
      s.clear_migration_id();
      ++done;
    }
    return done;
  }
  std::vector<MigrateCall> migrate_calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int watch_calls() {
    absl::MutexLock lock(&mu_);
    return watch_calls_;
  }
  int list_calls() {
    absl::MutexLock lock(&mu_);
    return list_calls_;
  }

  absl::StatusOr<std::vector<migrator::v1::Session>> ListSessions() override {
    absl::MutexLock lock(&mu_);
    ++list_calls_;
    std::vector<migrator::v1::Session> out;
    for (const auto& [id, s] : sessions_) out.push_back(s);
    return out;
  }
  absl::StatusOr<proximity::v1::VehicleProximity> GetProximity(const std::string& v) override {
    absl::MutexLock lock(&mu_);
    auto it = proximity_.find(v);
    if (it == proximity_.end()) return absl::NotFoundError(absl::StrCat("vehicle ", v));
    return it->second;
  }
  absl::StatusOr<std::string> Migrate(uint64_t session_id, const std::string& target,
                                      const std::string& reason,
                                      const std::string& request_id) override {
    absl::MutexLock lock(&mu_);
    MigrateCall& call = calls_.emplace_back(MigrateCall{session_id, target, reason, request_id});
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return absl::NotFoundError("no such session");
    const std::string id = absl::StrCat("m-", calls_.size());
    if (in_flight_) {
      it->second.set_migration_id(id);
      it->second.set_migration_to_server_id(target);
      for (const auto& [other, s] : sessions_) {
        const bool arriving = s.migration_to_server_id() == target;
        call.target_arriving += arriving;
        call.target_taken += arriving || s.server_id() == target;
      }
    } else if (move_on_migrate_) {
      it->second.set_server_id(target);
    }
    return id;
  }
  absl::Status WatchProximity(
      const std::function<void(const proximity::v1::VehicleProximity&)>& on_update) override {
    {
      absl::MutexLock lock(&mu_);
      ++watch_calls_;
      if (cancelled_) return absl::CancelledError("cancelled");
      if (failing_watches_ > 0) {
        --failing_watches_;
        return absl::UnavailableError("PMM down (fake)");
      }
      watching_ = true;
      pending_.clear();
      for (const auto& [v, p] : proximity_) pending_.push_back(p);
    }
    while (true) {
      proximity::v1::VehicleProximity next;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &FakeControlPlane::HasWork));
        if (cancelled_) {
          watching_ = false;
          return absl::CancelledError("cancelled");
        }
        next = pending_.front();
        pending_.pop_front();
      }
      on_update(next);
    }
  }
  void CancelWatch() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cancelled_ || !pending_.empty();
  }

  absl::Mutex mu_;
  std::map<uint64_t, migrator::v1::Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, proximity::v1::VehicleProximity> proximity_ ABSL_GUARDED_BY(mu_);
  std::deque<proximity::v1::VehicleProximity> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<MigrateCall> calls_ ABSL_GUARDED_BY(mu_);
  bool watching_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool move_on_migrate_ ABSL_GUARDED_BY(mu_) = true;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int failing_watches_ ABSL_GUARDED_BY(mu_) = 0;
  int watch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int list_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// One MDM replica's control plane when several run: a PMM watch of its own (a
// FakeControlPlane serves one watcher) and an SMM that all replicas share, with this
// replica's ListSessions and Migrate calls counted (and the Migrates' real times).
class ReplicaClients final : public ControlPlaneClients {
 public:
  explicit ReplicaClients(FakeControlPlane& smm) : smm_(smm) {}
  FakeControlPlane& pmm() { return pmm_; }
  int lists() const { return lists_; }
  std::vector<MigrateCall> migrate_calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<absl::Time> migrate_times() {
    absl::MutexLock lock(&mu_);
    return times_;
  }

  absl::StatusOr<std::vector<migrator::v1::Session>> ListSessions() override {
    ++lists_;
    return smm_.ListSessions();
  }
  absl::StatusOr<proximity::v1::VehicleProximity> GetProximity(const std::string& v) override {
    return pmm_.GetProximity(v);
  }
  absl::StatusOr<std::string> Migrate(uint64_t session_id, const std::string& target,
                                      const std::string& reason,
                                      const std::string& request_id) override {
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back({session_id, target, reason, request_id});
      times_.push_back(absl::Now());
    }
    return smm_.Migrate(session_id, target, reason, request_id);
  }
  absl::Status WatchProximity(
      const std::function<void(const proximity::v1::VehicleProximity&)>& on_update) override {
    return pmm_.WatchProximity(on_update);
  }
  void CancelWatch() override { pmm_.CancelWatch(); }

 private:
  FakeControlPlane& smm_;
  FakeControlPlane pmm_;
  std::atomic<int> lists_ = 0;
  absl::Mutex mu_;
  std::vector<MigrateCall> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
};

}  // namespace smig::decision::testing
