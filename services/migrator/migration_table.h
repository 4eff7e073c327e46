// MigrationTable: the serving SMM's memory of its sessions and migrations: everything,
// without a store; with one, the journal's contents as the leading term loaded and has
// written them since (reads elsewhere go to the store). Each change names the term it is
// made for, and a term that is over changes nothing, so a deposed term's thread cannot write
// into a later term's memory.
//
//   MigrationTable table({.max_finished = 10000});
//   table.Begin(1, std::nullopt, {});       // without a store: term 1, for good
//   auto record = std::make_shared<MigrationTable::Record>();   // session_id, from, to set
//   absl::StatusOr<MigrationTable::Reservation> r =
//       table.Reserve(*record, "edge-1", "req-1", kUnfenced, "edge-1 -> edge-2", now);
//   // ... the journal writes r->session and the PREPARING record ...
//   table.Start(record, revision);          // a thread drives it now
//   table.Apply(*record, next, session, revision);   // each later phase, once recorded
//   table.ThreadEnded(*record);
//
// Records are shared with their threads (shared_ptr); Record says which of its fields are
// fixed before the thread starts, which change under the table's lock, and which only its
// thread touches.
//
// Thread-safe. Waits: AwaitEnd on the caller's clock; WaitForChange in real time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/store/election.h"
#include "services/migrator/agent_client.h"
#include "services/migrator/migration_journal.h"
#include "services/migrator/reconciler.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace smig::migrator {

class MigrationTable {
 public:
  struct Options {
    size_t max_finished = 10000;
  };

  struct Record {
    // Fixed before its thread starts.
    std::string id;
    uint64_t session_id = 0;
    std::string from, to;
    uint64_t term = 0;
    uint64_t fencing_token = kUnfenced;
    store::Fence fence;
    // Under the table's lock.
    v1::Migration migration;  // as last written
    uint64_t version = 0;     // the store's revision of that write (or a counter)
    std::string cancel_reason;
    bool live = false;        // a thread drives it; else reconciliation ends it
    std::atomic<bool> cancel{false};
    // Touched by its thread only: its end was recorded (and counted).
    bool end_recorded = false;
  };

  // The term memory belongs to now: 0 when none serves.
  struct Term {
    uint64_t term = 0;
    std::optional<store::Leadership> leadership;  // with a store
  };

  explicit MigrationTable(Options options) : options_(options) {}

  // --- Terms (Takeover) ---
  // Makes `snapshot` the memory of `term`; CANCELLED if it ended already or the table stops.
  absl::Status Begin(uint64_t term, std::optional<store::Leadership> leadership,
                     MigrationJournal::Snapshot snapshot);
  // `term` is over: memory is dropped (if it was that term's).
  void End(uint64_t term);
  bool Over(uint64_t term) const;
  Term Current() const;
  // Waits until no migration thread runs; false if `term` ended meanwhile or the table stops.
  bool AwaitIdle(uint64_t term);
  // Shutdown: no term may begin, live migrations are asked to cancel (`why`).
  void Stop(const std::string& why);
  void AwaitNoThreads();

  // --- Sessions ---
  // Claims a new session id for CreateSession: ALREADY_EXISTS, UNAVAILABLE when stopping.
  absl::StatusOr<Term> BeginCreate(uint64_t session_id);
  void EndCreate(uint64_t term, uint64_t session_id, const std::optional<v1::Session>& created);
  std::optional<v1::Session> FindSession(uint64_t session_id) const;
  std::vector<v1::Session> Sessions() const;

  // --- Migrations ---
  struct Reservation {
    std::optional<v1::Migration> existing;  // the request_id's migration: nothing reserved
    v1::Session session;                     // with migration_id set
    uint64_t next_id = 0;                    // the counter after this one
  };
  std::optional<v1::Migration> FindRequest(const std::string& request_id) const;
  // Numbers `record` (id, PREPARING at `now`, its term) and marks its session as migrating
  // from `from`; FAILED_PRECONDITION when the session migrates already, UNAVAILABLE while it
  // is being reconciled or the table stops, ABORTED if it moved or went. `record`'s token
  // is the term's leadership revision, else `unfenced_token`.
  absl::StatusOr<Reservation> Reserve(Record& record, const std::string& from,
                                      const std::string& request_id, uint64_t unfenced_token,
                                      const std::string& note, absl::Time now);
  void Unreserve(const Record& record);
  // Registers the reserved migration as driven by a thread; false if its term is over.
  bool Start(const std::shared_ptr<Record>& record, uint64_t version);
  void ThreadEnded(Record& record);
  bool Current(const Record& record) const;
  std::optional<std::string> CancelReason(const Record& record) const;
  v1::Migration State(const Record& record) const;
  // Memory after the journal took `next` (and `session`): FAILED_PRECONDITION if the
  // record's term is over. `version` 0: the next counter value (without a store).
  absl::Status Apply(Record& record, const v1::Migration& next,
                     const std::optional<v1::Session>& session, uint64_t version);
  // The record's migration and session as they are, and the finished migrations that must
  // go when it ends; FAILED_PRECONDITION if its term is over.
  struct Ending {
    v1::Migration migration;
    v1::Session session;
    std::vector<std::string> evict;
  };
  absl::StatusOr<Ending> PrepareEnd(const Record& record) const;
  void Ended(const Record& record, const std::vector<std::string>& evict);

  absl::StatusOr<v1::Migration> Get(const std::string& id) const;
  std::vector<v1::Migration> List(uint64_t session) const;  // sorted by started_at
  // Rolls back a migration before CUT_OVER: its record, once asked.
  absl::StatusOr<std::shared_ptr<Record>> Cancel(const std::string& id, const std::string& reason);
  v1::Migration AwaitEnd(const std::shared_ptr<Record>& record, Clock& clock, absl::Time deadline);
  absl::StatusOr<std::optional<v1::Migration>> WaitForChange(const std::string& id,
                                                             uint64_t& seen,
                                                             absl::Duration timeout) const;

  // --- Reconciliation (Takeover) ---
  struct Contents {
    std::map<uint64_t, v1::Session> sessions;
    std::set<std::string> servers;  // the sessions' and in-flight migrations' edges
    std::set<uint64_t> in_flight;   // sessions with a migration that has not ended
  };
  std::optional<Contents> Look(uint64_t term) const;
  struct Claimed {
    std::optional<v1::Session> record;
    std::vector<v1::Migration> in_flight;
  };
  // Claims `session` for reconciliation: nullopt when a migration thread or a CreateSession
  // owns it, or its record is no longer `before`; CANCELLED once the term is over.
  absl::StatusOr<std::optional<Claimed>> Claim(uint64_t term, uint64_t session,
                                               const std::optional<v1::Session>& before);
  void Unclaim(uint64_t session);
  // The finished migrations (oldest first, at most 64) that must go for `adding` more.
  std::vector<std::string> Evictions(size_t adding) const;
  void Forget(uint64_t term, const std::vector<std::string>& ids);
  // Memory after the journal took `plan` (with `evict` deleted) at `revision`.
  void Settle(uint64_t term, const Reconciler::Plan& plan, const std::vector<std::string>& evict,
              int64_t revision);

  static bool Terminal(const v1::Migration& m) {
    return m.phase() == v1::PHASE_DONE || m.phase() == v1::PHASE_ROLLED_BACK;
  }

 private:
  std::vector<std::string> EvictionsLocked(size_t adding) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::vector<std::string>& ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, v1::Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Record>> migrations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> finished_order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> by_request_ ABSL_GUARDED_BY(mu_);  // request_id -> id
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;  // versions without a store
  // Sessions being created or reconciled: no migration may start on them meanwhile.
  std::set<uint64_t> busy_ ABSL_GUARDED_BY(mu_);
  uint64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<store::Leadership> leadership_ ABSL_GUARDED_BY(mu_);
  uint64_t ended_ ABSL_GUARDED_BY(mu_) = 0;  // the latest term that ended
  int running_ ABSL_GUARDED_BY(mu_) = 0;     // migration threads
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace smig::migrator
