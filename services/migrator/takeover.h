// Takeover: what an SMM replica does as leader besides running migrations (ReplicaRole's
// Duties): when a term begins, load the journal into memory and reconcile it with every
// edge before any change is accepted; later, passes over what was left (an edge that did
// not answer, a migration that stopped acting, a copy not released).
//
//   Takeover takeover(table, journal, reconciler, agents, election, "smm-0", clock);
//   ReplicaRole role(election, {.replica_id = "smm-0"}, takeover, clock, registry);
//
// A takeover: wait until an earlier term's migration threads (this replica led before) have
// stopped, load the journal (retrying while the term lasts), make it the table's memory
// (trimming finished migrations to max_finished), then a pass.
//
// A pass: read what memory names (sessions and the edges of migrations in flight), list
// every server (AgentDirectory::ListServers, plus those), read them all (Reconciler::Read
// raises their fences first), then for each session that no migration thread or
// CreateSession owns and that did not change since memory was read: claim it, decide
// (Reconciler::Decide), carry it out (the journal, the table, then the agents),
// release the claim. A pass stops at once when the term is over or a write is fenced.
// Each pass logs one line (sessions, edges, changes, time) and is timed in
// smig_reconcile_duration_seconds; the sessions it found on several edges and could not
// bring to one go to smig_sessions_on_several_edges (the alert SmigSessionOnSeveralEdges).
//
// Thread-safe (it runs on ReplicaRole's chores thread); everything it is given must outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/store/election.h"
#include "services/migrator/agent_client.h"
#include "services/migrator/migration_journal.h"
#include "services/migrator/migration_table.h"
#include "services/migrator/reconciler.h"
#include "services/migrator/replica_role.h"

namespace smig::migrator {

class Takeover final : public ReplicaRole::Duties {
 public:
  Takeover(MigrationTable& table, MigrationJournal& journal, Reconciler& reconciler,
           AgentDirectory& agents, store::Election& election, std::string replica_id,
           Clock& clock);

  absl::StatusOr<bool> TakeOver(uint64_t term, const store::Leadership& leadership) override;
  // A standby reports no sessions on several edges: only the leader's passes look.
  void StepDown(uint64_t term) override {
    table_.End(term);
    reconciler_.SetSessionsOnSeveralEdges(0);
  }
  bool Revisit(uint64_t term, const store::Leadership& leadership) override;

 private:
  // One pass; returns whether something is left for a later one. FAILED_PRECONDITION or
  // CANCELLED when the term is over.
  absl::StatusOr<bool> Pass(uint64_t term, const store::Leadership& leadership);
  // The plan's records (session, ended migrations, and finished ones past max_finished
  // deleted) in the journal, fenced, then in memory.
  absl::Status Settle(uint64_t term, const store::Fence& fence, const Reconciler::Plan& plan);

  MigrationTable& table_;
  MigrationJournal& journal_;
  Reconciler& reconciler_;
  AgentDirectory& agents_;
  store::Election& election_;
  const std::string replica_id_;
  Clock& clock_;
};

}  // namespace smig::migrator
