// Reconciler: how an SMM leader makes its journal (migration_journal.h) and what the edges
// really serve agree: at takeover, before it accepts any change, and afterwards for what it
// could not settle then (an edge that did not answer, a migration whose thread stopped).
//
//   Reconciler reconciler(agents, registry);
//   Reconciler::Term term{.token = 57, .fence = leadership.fence(), .leader = "smm-1 (term 57)"};
//   Reconciler::AgentView view = reconciler.Read(servers, term.token);
//   Reconciler::Plan plan = Reconciler::Decide(7, record, in_flight, view, term.leader, now);
//   absl::Status s = reconciler.Execute(plan, term, acting, commit);   // commit: the journal
//
// The rules (docs/architecture.md, "The SMM's journal, replicas and reconciliation"):
//   - Read raises every agent's fence to the new leader's token first (Agent::RaiseFence),
//     then lists its sessions: a deposed leader's call still in flight is refused from then
//     on, so what is read stays true.
//   - The edge the journal names for a session: the target of a migration recorded at
//     CUT_OVER (the vehicle had confirmed it); the source of one recorded before CUT_OVER
//     (the source never stopped sending, so rolling back loses nothing); else the session's
//     own server.
//   - If the named edge serves the session, it keeps it and every other copy is released;
//     a migration in flight ends DONE (named = target) or ROLLED_BACK (named = source).
//   - If it answers but does not serve the session, the copy with the highest generation
//     is kept (and recorded); a session no journal knows is adopted that way.
//   - If it does not answer, nothing is released: the migration in flight ends by its
//     phase (CUT_OVER: DONE, the session recorded at the target; before: ROLLED_BACK), and
//     the session is looked at again when the edge answers.
//   - If no edge serves it and every edge answered, its record is dropped.
//   - A copy is released only after the edge that keeps the session has confirmed it
//     (GetSession) just before, and after the journal has recorded the outcome. Every
//     migration ended here gets a note naming the leader that reconciled it.
//
// Metrics: smig_reconcile_actions_total{action} (adopted, moved, dropped, rolled_back,
// finished, released, deferred), smig_reconcile_duration_seconds (one pass) and
// smig_sessions_on_several_edges (what the last pass left on more than one edge).
//
// Thread-safe; `agents` must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/store/store.h"
#include "services/migrator/agent_client.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace prometheus {
class Registry;
}

namespace smig::migrator {

class Reconciler {
 public:
  // The leadership a pass acts for.
  struct Term {
    uint64_t token = kUnfenced;  // for the agents
    store::Fence fence;          // for the journal
    std::string leader;          // who reconciles, for notes and logs: "smm-1 (term 57)"
  };

  // What the edges serve, read at one moment (after raising their fences).
  struct AgentView {
    // Every edge that answered: session -> generation.
    std::map<std::string, std::map<uint64_t, uint64_t>> serving;
    // Edges that did not answer (or that no registry finds), and why.
    std::map<std::string, std::string> unreachable;
    // Set when an agent refused the token: a newer leader acts; the pass must stop.
    std::optional<absl::Status> fenced;

    bool complete() const { return unreachable.empty(); }
    std::set<uint64_t> Sessions() const;
  };

  // What to do about one session.
  struct Plan {
    uint64_t session_id = 0;
    std::string keeper;                // the edge that keeps it ("" = none is confirmed)
    uint64_t keeper_generation = 0;
    std::vector<std::string> release;  // the other edges that serve it
    std::optional<v1::Session> record; // the session's record to write
    bool drop = false;                 // delete the session's record
    std::vector<v1::Migration> ended;  // its migrations in flight, ended
    bool deferred = false;             // an edge that matters did not answer
    std::vector<std::string> actions;  // counted once carried out (release: per copy)
    std::string summary;               // one line for the log

    // Whether anything is to be written or released.
    bool changes() const { return record.has_value() || drop || !ended.empty() || !release.empty(); }
  };

  Reconciler(AgentDirectory& agents, prometheus::Registry* registry);
  ~Reconciler();

  // Raises each server's fence to `token` (unless kUnfenced), then lists its sessions; all
  // servers at once, each on its own thread.
  AgentView Read(const std::vector<std::string>& servers, uint64_t token);

  // The plan for `session` given its record (if the journal has one), its migrations that
  // have not ended (the journal's phases) and the view. Pure.
  static Plan Decide(uint64_t session, const std::optional<v1::Session>& record,
                     std::vector<v1::Migration> in_flight, const AgentView& view,
                     const std::string& leader, absl::Time now);

  // Carries `plan` out: confirms the keeper when a copy is to be released, `commit`s the
  // journal's records (fenced), then releases the other copies with term.token. `acting`
  // is asked before every agent call and the commit. Returns OK when done (plan.deferred
  // says whether something is left for later); FAILED_PRECONDITION when the pass must stop
  // (no longer leading, fenced by the store or an agent); another error when this session
  // is left for later (nothing or only the journal's part was done).
  absl::Status Execute(Plan& plan, const Term& term, const std::function<bool()>& acting,
                       const std::function<absl::StatusOr<int64_t>(const Plan&)>& commit);

  // A pass's duration, for smig_reconcile_duration_seconds.
  void ObservePass(absl::Duration d);
  // Sessions the last pass found on several edges and left so (smig_sessions_on_several_edges).
  void SetSessionsOnSeveralEdges(size_t n);

 private:
  struct Metrics;
  void Count(const std::string& action);

  AgentDirectory& agents_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace smig::migrator
