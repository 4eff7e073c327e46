// In-memory edge agents for the SMM's tests and benchmark: a FakeCluster of FakeAgents
// that keep sessions and generations like real data planes, where the "vehicle" confirms
// an imported generation `confirm_after` after its ImportState (unless the target died).
//
//   SimulatedClock clock;
//   FakeCluster cluster(clock);
//   cluster.Add("edge-1");
//   cluster.Add("edge-2").set_confirm_after(absl::Milliseconds(20));
//   MigratorEngine smm(cluster, nullptr, {}, nullptr, clock);
//   cluster.agent("edge-2").Kill();   // every call now fails with UNAVAILABLE
//
// Confirmations fall due on the cluster's clock, and a contiguity watch waits on it (in
// steps of at most 1 ms), so with a SimulatedClock nothing is confirmed until the test
// advances it. Thread-safe; the cluster owns the agents and must outlive what uses them, the
// clock must outlive the cluster.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "services/migrator/agent_client.h"

namespace smig::migrator::testing {

class FakeCluster;

class FakeAgent : public Agent {
 public:
  FakeAgent(FakeCluster& cluster, std::string id)
      : cluster_(cluster), id_(std::move(id)), address_("fake:" + id_) {}

  void set_confirm_after(absl::Duration d);
  void set_never_confirm(bool never);
  void set_import_error(absl::Status s);
  void Kill();
  bool Serves(uint64_t session) const;
  int releases() const;
  // The redundancy policy the last OpenSession of `session` asked for.
  dv1::RedundancyPolicy opened_redundancy(uint64_t session) const;
  // The fencing tokens the fenced calls carried, in order: "OpenSession 57", "ImportState 57",
  // "ReleaseSession 57". The fake does not fence (set_import_error refuses an import).
  std::vector<std::string> fenced_calls() const;

  const std::string& server_id() const override { return id_; }
  // "fake:<id>".
  const std::string& address() const override { return address_; }
  absl::StatusOr<dv1::Session> OpenSession(const dv1::OpenSessionRequest& request) override;
  absl::StatusOr<dv1::SessionState> ExportState(uint64_t session) override;
  absl::StatusOr<dv1::Session> ImportState(const dv1::SessionState& state,
                                           uint64_t fencing_token) override;
  absl::StatusOr<dv1::Session> ReleaseSession(uint64_t session, uint64_t fencing_token) override;
  absl::StatusOr<dv1::Session> GetSession(uint64_t session) override;
  absl::Status Ping() override;
  absl::StatusOr<std::unique_ptr<ContiguityWatch>> WatchContiguity(uint64_t session) override;

 private:
  friend class FakeCluster;
  absl::Status CheckAlive() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  FakeCluster& cluster_;
  const std::string id_;
  const std::string address_;
  mutable absl::Mutex mu_;
  bool alive_ ABSL_GUARDED_BY(mu_) = true;
  bool never_confirm_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration confirm_after_ ABSL_GUARDED_BY(mu_) = absl::Milliseconds(5);
  absl::Status import_error_ ABSL_GUARDED_BY(mu_);
  int releases_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, uint64_t> sessions_ ABSL_GUARDED_BY(mu_);  // session -> generation
  std::map<uint64_t, dv1::RedundancyPolicy> opened_redundancy_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> fenced_calls_ ABSL_GUARDED_BY(mu_);
  // When the vehicle will have confirmed each imported (session, generation).
  std::map<std::pair<uint64_t, uint64_t>, absl::Time> confirms_ ABSL_GUARDED_BY(mu_);
};

class FakeCluster : public AgentDirectory {
 public:
  explicit FakeCluster(Clock& clock = Clock::Real()) : clock_(clock) {}
  Clock& clock() const { return clock_; }

  FakeAgent& Add(const std::string& id);
  FakeAgent& agent(const std::string& id) { return *agents_.at(id); }
  absl::StatusOr<std::shared_ptr<Agent>> Find(const std::string& server_id) override;
  // True once some live agent's import of `generation` has been confirmed by now.
  bool Confirmed(uint64_t session, uint64_t generation) const;

 private:
  Clock& clock_;
  std::map<std::string, std::shared_ptr<FakeAgent>> agents_;
};

}  // namespace smig::migrator::testing
