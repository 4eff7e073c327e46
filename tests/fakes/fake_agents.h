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
//
// Fencing is a real agent's (dataplane/daemon/fencing.h): OpenSession, ImportState and
// ReleaseSession with a token older than the highest seen fail FAILED_PRECONDITION and
// change nothing. A hook sees every call first, so a test can hold a migration in a phase:
//
//   absl::Notification go;
//   cluster.agent("edge-2").set_hook([&](const std::string& method, uint64_t, uint64_t token) {
//     if (method == "ImportState" && token == 5) go.WaitForNotification();  // TRANSFERRING
//   });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "dataplane/daemon/fencing.h"
#include "services/migrator/agent_client.h"

namespace smig::migrator::testing {

class FakeCluster;

class FakeAgent : public Agent {
 public:
  FakeAgent(FakeCluster& cluster, std::string id)
      : cluster_(cluster), id_(std::move(id)), address_("fake:" + id_) {}

  // Called first by every call (outside the agent's lock, so it may block): the method's
  // name ("OpenSession", "ExportState", "ImportState", "ReleaseSession", "GetSession",
  // "ListSessions", "WatchContiguity"), the session (0 for ListSessions) and the fencing
  // token (0 for unfenced methods).
  using Hook = std::function<void(const std::string& method, uint64_t session, uint64_t token)>;
  void set_hook(Hook hook);

  void set_confirm_after(absl::Duration d);
  void set_never_confirm(bool never);
  void set_import_error(absl::Status s);
  // ReleaseSession of a session (not RaiseFence) fails with `s` until set back to OK.
  void set_release_error(absl::Status s);
  // Every call fails with UNAVAILABLE until Revive(); the sessions stay (a partition, not a
  // crash).
  void Kill();
  void Revive();
  // Serves `session` at `generation` as if it had been opened or imported (by a tool, or a
  // leader the store never heard of).
  void Place(uint64_t session, uint64_t generation);
  bool Serves(uint64_t session) const;
  // The generation it serves `session` at; 0 if it does not.
  uint64_t generation(uint64_t session) const;
  uint64_t highest_token() const { return gate_.highest(); }
  int releases() const;
  // The redundancy policy the last OpenSession of `session` asked for.
  dv1::RedundancyPolicy opened_redundancy(uint64_t session) const;
  // The session key OpenSession brought ("" if none was opened).
  std::string opened_key(uint64_t session) const;
  // The fencing tokens the fenced calls carried, in order: "OpenSession 57", "ImportState 57",
  // "ReleaseSession 57" (refused ones too).
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
  absl::StatusOr<std::vector<dv1::Session>> ListSessions() override;
  absl::Status Ping() override;
  absl::StatusOr<std::unique_ptr<ContiguityWatch>> WatchContiguity(uint64_t session) override;

 private:
  friend class FakeCluster;
  absl::Status CheckAlive() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RunHook(const std::string& method, uint64_t session, uint64_t token) const;
  FakeCluster& cluster_;
  const std::string id_;
  const std::string address_;
  dataplane::FencingGate gate_;
  mutable absl::Mutex mu_;
  Hook hook_ ABSL_GUARDED_BY(mu_);
  bool alive_ ABSL_GUARDED_BY(mu_) = true;
  bool never_confirm_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration confirm_after_ ABSL_GUARDED_BY(mu_) = absl::Milliseconds(5);
  absl::Status import_error_ ABSL_GUARDED_BY(mu_);
  absl::Status release_error_ ABSL_GUARDED_BY(mu_);
  int releases_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, uint64_t> sessions_ ABSL_GUARDED_BY(mu_);  // session -> generation
  std::map<uint64_t, dv1::RedundancyPolicy> opened_redundancy_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> opened_key_ ABSL_GUARDED_BY(mu_);
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
  absl::StatusOr<std::vector<std::string>> ListServers() override;
  // True once some live agent's import of `generation` has been confirmed by now.
  bool Confirmed(uint64_t session, uint64_t generation) const;

 private:
  Clock& clock_;
  std::map<std::string, std::shared_ptr<FakeAgent>> agents_;
};

}  // namespace smig::migrator::testing
