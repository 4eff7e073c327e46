// MigratorEngine: the SMM's logic, without gRPC. It tracks sessions (which edge serves
// each) and runs each migration on its own thread through the state machine
//   PREPARING -> TRANSFERRING -> OVERLAPPING -> CUT_OVER -> DONE, or ROLLED_BACK,
// make-before-break: the source keeps serving until the vehicle has confirmed the target's
// stream contiguous, so any failure before that (target down, import refused, timeout,
// cancel) rolls back with the source untouched and nothing lost.
//
//   MigratorEngine smm(*agents, picker.get(), {.overlap_timeout = absl::Seconds(10)}, &registry);
//   smm.CreateSession(create);                         // opens it on an edge
//   absl::StatusOr<v1::Migration> m = smm.Migrate(request);   // returns in PREPARING
//   for (uint64_t v = 0; auto next = smm.WaitForChange(m->id(), v, absl::Seconds(1));) ...
//
// Thread-safe. `agents`, `picker` (may be null: no automatic targets) and `clock` must
// outlive it; the destructor cancels migrations in flight and joins their threads. Every
// duration of a migration (overlap timeout, health interval, the cancel's wait, timestamps)
// is on `clock`, so tests advance a SimulatedClock; WaitForChange's timeout is the caller's
// poll in real time (a watcher waiting for another thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "services/migrator/agent_client.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace prometheus {
class Registry;
}

namespace smig::migrator {

class MigratorEngine {
 public:
  struct Options {
    // OVERLAPPING ends in a rollback if the vehicle has not confirmed the target by then.
    absl::Duration overlap_timeout = absl::Seconds(10);
    // How often OVERLAPPING checks that the target still answers.
    absl::Duration health_interval = absl::Milliseconds(200);
    size_t max_finished = 10000;  // finished migrations kept for Get/List
    // The fencing token the agents check (agent_client.h). Read once per CreateSession
    // and once per migration (at Migrate): every call of a migration carries the token of
    // the leader that started it, so a deposed leader's migration is refused as a whole.
    // Null: kUnfenced.
    FencingTokenSource fencing_token;
  };

  MigratorEngine(AgentDirectory& agents, TargetPicker* picker, Options options,
                 prometheus::Registry* registry, Clock& clock = Clock::Real());
  ~MigratorEngine();

  // Opens the session on its edge. ALREADY_EXISTS, INVALID_ARGUMENT (no id, vehicle or
  // flows), NOT_FOUND (unknown server), or the edge's error.
  absl::StatusOr<v1::Session> CreateSession(const v1::CreateSessionRequest& request);
  std::vector<v1::Session> ListSessions() const;

  // Validates and starts a migration; see migrator.proto for the status codes.
  absl::StatusOr<v1::Migration> Migrate(const v1::MigrateRequest& request);
  absl::StatusOr<v1::Migration> GetMigration(const std::string& id) const;
  std::vector<v1::Migration> ListMigrations(uint64_t session) const;
  // Rolls back a migration before CUT_OVER and waits (up to 10 s on the clock) for it to end.
  absl::StatusOr<v1::Migration> CancelMigration(const std::string& id, const std::string& reason);
  // Waits until the migration's version passes `seen` (then updates `seen`) or `timeout`;
  // nullopt on timeout or once the migration ended and its last state was returned.
  absl::StatusOr<std::optional<v1::Migration>> WaitForChange(const std::string& id,
                                                             uint64_t& seen,
                                                             absl::Duration timeout) const;

 private:
  struct Record {
    v1::Migration migration;
    uint64_t version = 0;
    std::atomic<bool> cancel{false};
    std::string cancel_reason;
    uint64_t fencing_token = kUnfenced;  // set before the migration's thread starts
  };
  struct Metrics;

  void Run(std::shared_ptr<Record> record);
  // Moves to `phase` (and records why); bumps the version for watchers.
  void Enter(Record& r, v1::Phase phase, const std::string& note);
  void Finish(Record& r, v1::Phase phase, const std::string& rollback_reason);
  uint64_t FencingToken() const {
    return options_.fencing_token ? options_.fencing_token() : kUnfenced;
  }
  bool Terminal(const v1::Migration& m) const {
    return m.phase() == v1::PHASE_DONE || m.phase() == v1::PHASE_ROLLED_BACK;
  }

  AgentDirectory& agents_;
  TargetPicker* picker_;
  Options options_;
  Clock& clock_;
  std::unique_ptr<Metrics> metrics_;

  mutable absl::Mutex mu_;
  std::map<uint64_t, v1::Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Record>> migrations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> finished_order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_ ABSL_GUARDED_BY(mu_);  // request_id -> id
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Migration threads are detached; the destructor waits for this to reach zero.
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace smig::migrator
