#include "services/migrator/takeover.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace smig::migrator {

Takeover::Takeover(MigrationTable& table, MigrationJournal& journal, Reconciler& reconciler,
                   AgentDirectory& agents, store::Election& election, std::string replica_id,
                   Clock& clock)
    : table_(table),
      journal_(journal),
      reconciler_(reconciler),
      agents_(agents),
      election_(election),
      replica_id_(std::move(replica_id)),
      clock_(clock) {}

absl::StatusOr<bool> Takeover::TakeOver(uint64_t term, const store::Leadership& leadership) {
  const absl::Status over = absl::CancelledError("the term ended during the takeover");
  // This replica may have led before: that term's threads must have stopped (one may still
  // be inside an agent call).
  if (!table_.AwaitIdle(term)) return over;
  absl::StatusOr<MigrationJournal::Snapshot> snapshot;
  for (absl::Duration pause = absl::Milliseconds(100);;
       pause = std::min(pause * 2, absl::Seconds(1))) {
    if (table_.Over(term)) return over;
    snapshot = journal_.Load();
    if (snapshot.ok()) break;
    LOG(WARNING) << "takeover: cannot read the journal, retrying in " << pause << ": "
                 << snapshot.status();
    clock_.SleepFor(pause);
  }
  LOG(INFO) << "takeover: the journal holds " << snapshot->sessions.size() << " sessions and "
            << snapshot->migrations.size() << " migrations; reconciling with the edges";
  SMIG_RETURN_IF_ERROR(table_.Begin(term, leadership, *std::move(snapshot)));
  // max_finished may be smaller than when the journal was written: trim it in batches (if
  // the store refuses, the next takeover trims).
  for (std::vector<std::string> excess; !(excess = table_.Evictions(0)).empty();) {
    MigrationJournal::Batch batch;
    for (const std::string& id : excess) batch.DeleteMigration(id);
    if (!journal_.Commit(batch, leadership.fence()).ok()) break;
    table_.Forget(term, excess);
  }
  return Pass(term, leadership);
}

bool Takeover::Revisit(uint64_t term, const store::Leadership& leadership) {
  absl::StatusOr<bool> more = Pass(term, leadership);
  if (!more.ok()) LOG(WARNING) << "reconcile: pass stopped: " << more.status();
  return more.ok() && *more;
}

absl::Status Takeover::Settle(uint64_t term, const store::Fence& fence,
                              const Reconciler::Plan& plan) {
  MigrationJournal::Batch batch;
  if (plan.record) batch.PutSession(*plan.record);
  if (plan.drop) batch.DeleteSession(plan.session_id);
  for (const v1::Migration& m : plan.ended) batch.PutMigration(m);
  const std::vector<std::string> evict = table_.Evictions(plan.ended.size());
  for (const std::string& id : evict) batch.DeleteMigration(id);
  if (batch.empty()) return absl::OkStatus();  // only copies to release
  SMIG_ASSIGN_OR_RETURN(int64_t revision, journal_.Commit(batch, fence));
  table_.Settle(term, plan, evict, revision);
  return absl::OkStatus();
}

absl::StatusOr<bool> Takeover::Pass(uint64_t term, const store::Leadership& leadership) {
  const absl::Time start = clock_.Now();
  const Reconciler::Term t{
      .token = static_cast<uint64_t>(leadership.revision),
      .fence = leadership.fence(),
      .leader = absl::StrCat(replica_id_, " (fencing token ", leadership.revision, ")")};
  // Memory before the edges are read: a session that changes meanwhile (a migration ended,
  // a session was created) is its owner's to settle, not this pass's.
  std::optional<MigrationTable::Contents> before = table_.Look(term);
  if (!before) return absl::CancelledError("the term ended");
  std::set<std::string> servers = before->servers;
  if (absl::StatusOr<std::vector<std::string>> known = agents_.ListServers(); known.ok()) {
    servers.insert(known->begin(), known->end());
  } else {
    LOG(WARNING) << "reconcile: the server registry cannot be read: " << known.status();
  }
  servers.erase("");
  const Reconciler::AgentView view = reconciler_.Read({servers.begin(), servers.end()}, t.token);
  if (view.fenced) return *view.fenced;

  std::set<uint64_t> sessions = view.Sessions();
  for (const auto& [id, s] : before->sessions) sessions.insert(id);
  sessions.insert(before->in_flight.begin(), before->in_flight.end());
  auto acting = [&] {
    if (table_.Over(term)) return false;
    std::optional<store::Leadership> now = election_.current();
    return now.has_value() && now->revision == leadership.revision;
  };
  auto settle = [&](const Reconciler::Plan& p) -> absl::StatusOr<int64_t> {
    SMIG_RETURN_IF_ERROR(Settle(term, t.fence, p));
    return 0;
  };
  bool more = !view.complete();
  int changed = 0;
  size_t several = 0;  // sessions found on more than one edge and left so
  for (uint64_t id : sessions) {
    auto was = before->sessions.find(id);
    SMIG_ASSIGN_OR_RETURN(
        std::optional<MigrationTable::Claimed> claimed,
        table_.Claim(term, id,
                      was == before->sessions.end() ? std::nullopt
                                                    : std::optional<v1::Session>(was->second)));
    if (!claimed) continue;  // a migration (or CreateSession) owns it: its overlap is meant
    size_t copies = 0;
    for (const auto& [server, served] : view.serving) copies += served.contains(id);
    Reconciler::Plan plan = Reconciler::Decide(id, claimed->record, std::move(claimed->in_flight),
                                               view, t.leader, clock_.Now());
    absl::Status s = reconciler_.Execute(plan, t, acting, settle);
    table_.Unclaim(id);
    if (absl::IsFailedPrecondition(s)) return s;
    if (!s.ok()) LOG(WARNING) << "reconcile: session " << id << " left for later: " << s;
    more = more || !s.ok() || plan.deferred;
    if (s.ok() && plan.changes()) ++changed;
    if (copies > 1 && (!s.ok() || plan.deferred || plan.release.size() + 1 < copies)) ++several;
  }
  reconciler_.SetSessionsOnSeveralEdges(several);
  const absl::Duration took = clock_.Now() - start;
  reconciler_.ObservePass(took);
  LOG(INFO) << "reconcile (" << t.leader << "): " << sessions.size() << " sessions on "
            << servers.size() << " edges, " << changed << " settled, in "
            << absl::FormatDuration(took)
            << (view.complete() ? "" : absl::StrCat("; did not answer: ", view.unreachable.size(), " edges"))
            << (several == 0 ? "" : absl::StrCat("; left on several edges: ", several, " sessions"))
            << (more ? "; looking again later" : "");
  return more;
}

}  // namespace smig::migrator
