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
//   // Replicated (main.cc): the store and election of a ServiceStore.
//   MigratorEngine smm(*agents, picker.get(), {.store = &ss->store(),
//                      .election = &ss->election(), .replica_id = ss->replica_id()}, &registry);
//   ss->Start(smm.Listener());               // campaigns; smm takes over when it leads
//   ...
//   smm.Stop();                              // on SIGTERM: roll back what is in flight,
//   ss->election().Stop();                   // then resign
//
// Durable and replicated (Options::store and ::election; docs/architecture.md, "The SMM's
// journal, replicas and reconciliation"): sessions and migrations live in a
// MigrationJournal, and every phase that commits the migration to something is written,
// fenced by the leadership, before the migration acts on it (the terminal phases once it
// has acted). Replicas elect a leader; only the leader changes anything: a standby refuses
// CreateSession, Migrate and CancelMigration (FAILED_PRECONDITION naming the leader, or
// UNAVAILABLE while none is known or while it takes over) and answers reads from the store.
// A new leader first reconciles the journal with what every edge serves (reconciler.h),
// ending every migration an earlier leader left in flight. A migration whose journal write
// is refused (fenced), whose store stays unreachable, or whose leader is deposed stops
// acting at once, touching no agent; reconciliation ends it. Every fenced agent call
// carries the leadership's revision as its token. Without a store: one replica, memory
// only, the token from Options::fencing_token.
//
// Thread-safe. `agents`, `picker` (may be null: no automatic targets), `clock` and the
// options' store and election must outlive it; Stop() (or the destructor) cancels
// migrations in flight (rolling them back while it still leads) and joins their threads.
// Every duration of a migration (overlap timeout, health interval, the cancel's wait,
// timestamps, the store's retries, reconciliation's interval) is on `clock`, so tests
// advance a SimulatedClock; WaitForChange's timeout is the caller's poll in real time (a
// watcher waiting for another thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/store/election.h"
#include "common/store/store.h"
#include "services/migrator/agent_client.h"
#include "services/migrator/migration_journal.h"
#include "services/migrator/reconciler.h"
#include "services/migrator/migration_run.h"
#include "services/migrator/migration_table.h"
#include "services/migrator/replica_role.h"
#include "services/migrator/takeover.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace prometheus {
class Registry;
}

namespace smig::migrator {

class MigratorEngine final {
 public:
  struct Options {
    // OVERLAPPING ends in a rollback if the vehicle has not confirmed the target by then.
    absl::Duration overlap_timeout = absl::Seconds(10);
    // How often OVERLAPPING checks that the target still answers.
    absl::Duration health_interval = absl::Milliseconds(200);
    size_t max_finished = 10000;  // finished migrations kept for Get/List (in the store too)
    // The fencing token the agents check (agent_client.h) when there is no election. Read
    // once per CreateSession and once per migration (at Migrate): every call of a migration
    // carries the token of the leader that started it, so a deposed leader's migration is
    // refused as a whole. Null: kUnfenced. With an election the token is always the
    // revision of the leadership the call is made under, and this is not used.
    FencingTokenSource fencing_token;

    // Durable state and leader election: both or neither.
    store::Store* store = nullptr;
    store::Election* election = nullptr;
    std::string store_prefix = "migrator/";  // MigrationJournal's key prefix
    std::string replica_id = "smm";          // this replica, in refusals and notes
    // How long a journal write retries a store that does not answer before the migration
    // stops acting (reconciliation ends it).
    absl::Duration store_retry = absl::Seconds(1);
    // How soon the leader looks again at what reconciliation left (an edge that did not
    // answer, a copy not released, a migration that stopped acting).
    absl::Duration reconcile_interval = absl::Seconds(5);
    // How often the leader reconciles anyway, to find sessions on several edges that no
    // migration explains (an edge restored from a backup, a release that failed), settle
    // them and report what it cannot (smig_sessions_on_several_edges). Infinite: only
    // when something was left (the tests' default; smig-migrator's config: 10 s).
    absl::Duration audit_interval = absl::InfiniteDuration();
  };

  MigratorEngine(AgentDirectory& agents, TargetPicker* picker, Options options,
                 prometheus::Registry* registry, Clock& clock = Clock::Real());
  // Stop().
  ~MigratorEngine();

  // With an election: what it must call, installed before it starts campaigning
  // (ServiceStore::Start(engine.Listener()), or election.SetListener in tests).
  store::Election::Listener Listener();
  // Rolls back the migrations in flight (while this replica still leads) and waits for
  // their threads; afterwards changes are refused (UNAVAILABLE) and reads go on. Resign
  // after this, so that a standby takes over at once. Idempotent.
  void Stop();

  // Opens the session on its edge. ALREADY_EXISTS, INVALID_ARGUMENT (no id, vehicle or
  // flows), NOT_FOUND (unknown server), or the edge's error.
  absl::StatusOr<v1::Session> CreateSession(const v1::CreateSessionRequest& request);
  // On a standby (or while taking over), from the store: its error if it cannot be read.
  absl::StatusOr<std::vector<v1::Session>> ListSessions() const;

  // Validates and starts a migration; see migrator.proto for the status codes.
  absl::StatusOr<v1::Migration> Migrate(const v1::MigrateRequest& request);
  absl::StatusOr<v1::Migration> GetMigration(const std::string& id) const;
  absl::StatusOr<std::vector<v1::Migration>> ListMigrations(uint64_t session) const;
  // Rolls back a migration before CUT_OVER and waits (up to 10 s on the clock) for it to end.
  absl::StatusOr<v1::Migration> CancelMigration(const std::string& id, const std::string& reason);
  // Waits until the migration's version passes `seen` (then updates `seen`) or `timeout`;
  // nullopt on timeout or once the migration ended and its last state was returned. With a
  // store the version is the store's revision of the migration's last write, the same on
  // every replica.
  absl::StatusOr<std::optional<v1::Migration>> WaitForChange(const std::string& id,
                                                             uint64_t& seen,
                                                             absl::Duration timeout) const;

  // Whether this replica takes changes now: it leads and has reconciled (always, without a
  // store). AwaitServing waits for that in real time; false on timeout.
  bool Serving() const;
  bool AwaitServing(absl::Duration timeout) const;

 private:
  using Record = MigrationTable::Record;
  struct Metrics;
  class RunOwner;

  // A migration's thread: MigrationRun with a RunOwner.
  void Run(std::shared_ptr<Record> record);
  // The migration's next state, in the journal (fenced) and then in memory; `session` too
  // when it changes, `evict`ed finished migrations deleted. An error: stop acting.
  absl::Status Commit(Record& r, const v1::Migration& next,
                      const std::optional<v1::Session>& session = std::nullopt,
                      const std::vector<std::string>& evict = {});
  absl::Status Enter(Record& r, v1::Phase phase, const std::string& note,
                     std::optional<uint64_t> generation);
  absl::Status Finish(Record& r, v1::Phase phase, const std::string& rollback_reason);
  // Whether `r`'s term still leads: checked before every agent call and journal write.
  bool Acting(const Record& r) const;
  absl::Status CheckMutable() const;
  // Whether reads come from memory (no store, or the serving leader) or the store.
  bool FromMemory() const;
  uint64_t FencingToken() const {
    return options_.fencing_token ? options_.fencing_token() : kUnfenced;
  }

  AgentDirectory& agents_;
  TargetPicker* picker_;
  Options options_;
  Clock& clock_;
  std::unique_ptr<Metrics> metrics_;
  MigrationTable table_;
  std::unique_ptr<MigrationJournal> journal_;  // these four: only with a store
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<Takeover> takeover_;
  std::unique_ptr<ReplicaRole> role_;
  // Orders the journal writes that number new migrations (next_id), so the counter only grows.
  absl::Mutex create_mu_;
};

}  // namespace smig::migrator
