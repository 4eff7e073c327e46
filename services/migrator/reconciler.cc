#include "services/migrator/reconciler.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace smig::migrator {
namespace {

constexpr const char* kActions[] = {"adopted",  "moved",    "dropped", "rolled_back",
                                    "finished", "released", "deferred"};

// Ends `m` in `phase` now, with `note` (also its rollback reason when rolled back).
v1::Migration End(v1::Migration m, v1::Phase phase, const std::string& note, absl::Time now) {
  m.set_phase(phase);
  v1::PhaseChange* c = m.add_history();
  c->set_phase(phase);
  *c->mutable_at() = ToProtoTimestamp(now);
  c->set_note(note);
  if (phase == v1::PHASE_ROLLED_BACK) m.set_rollback_reason(note);
  *m.mutable_finished_at() = ToProtoTimestamp(now);
  *m.mutable_duration() = ToProtoDuration(now - FromProto(m.started_at()));
  return m;
}

std::string Unreachable(const Reconciler::AgentView& view) {
  std::vector<std::string> parts;
  for (const auto& [server, why] : view.unreachable) parts.push_back(absl::StrCat(server, " (", why, ")"));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

struct Reconciler::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : actions(prometheus::BuildCounter()
                    .Name("smig_reconcile_actions_total")
                    .Help("What the SMM leader's reconciliation did: adopted (a session the "
                          "journal did not know), moved (recorded where it is served), dropped "
                          "(no edge serves it), rolled_back / finished (a migration left in "
                          "flight by an earlier leader), released (a second copy), deferred (an "
                          "edge that matters did not answer; looked at again later).")
                    .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("smig_reconcile_duration_seconds")
                     .Help("One reconciliation pass: reading every agent and settling every "
                           "session.")
                     .Register(r)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        several_edges(prometheus::BuildGauge()
                          .Name("smig_sessions_on_several_edges")
                          .Help("Sessions that the SMM leader's last reconciliation pass found "
                                "served by more than one edge and could not bring to one (a "
                                "migration's own overlap not counted); 0 on a standby.")
                          .Register(r)
                          .Add({})) {}
  prometheus::Family<prometheus::Counter>& actions;
  prometheus::Histogram& duration;
  prometheus::Gauge& several_edges;
};

Reconciler::Reconciler(AgentDirectory& agents, prometheus::Registry* registry) : agents_(agents) {
  if (registry) {
    metrics_ = std::make_unique<Metrics>(*registry);
    for (const char* a : kActions) metrics_->actions.Add({{"action", a}});
  }
}

Reconciler::~Reconciler() = default;

void Reconciler::Count(const std::string& action) {
  if (metrics_) metrics_->actions.Add({{"action", action}}).Increment();
}

void Reconciler::ObservePass(absl::Duration d) {
  if (metrics_) metrics_->duration.Observe(absl::ToDoubleSeconds(d));
}

void Reconciler::SetSessionsOnSeveralEdges(size_t n) {
  if (metrics_) metrics_->several_edges.Set(static_cast<double>(n));
}

std::set<uint64_t> Reconciler::AgentView::Sessions() const {
  std::set<uint64_t> out;
  for (const auto& [server, sessions] : serving) {
    for (const auto& [session, generation] : sessions) out.insert(session);
  }
  return out;
}

Reconciler::AgentView Reconciler::Read(const std::vector<std::string>& servers, uint64_t token) {
  absl::Mutex mu;
  AgentView view;
  std::vector<std::thread> readers;
  for (const std::string& server : servers) {
    readers.emplace_back([&, server] {
      absl::StatusOr<std::shared_ptr<Agent>> agent = agents_.Find(server);
      absl::Status fence = agent.status();
      if (agent.ok() && token != kUnfenced) fence = (*agent)->RaiseFence(token);
      absl::StatusOr<std::vector<dv1::Session>> sessions =
          fence.ok() ? (*agent)->ListSessions() : fence;
      absl::MutexLock lock(&mu);
      if (IsFenced(fence)) {
        view.fenced = absl::FailedPreconditionError(
            absl::StrCat("agent ", server, " refused token ", token, ": ", fence.message()));
        return;
      }
      if (!sessions.ok()) {
        view.unreachable[server] = std::string(sessions.status().message());
        return;
      }
      std::map<uint64_t, uint64_t>& serves = view.serving[server];
      for (const dv1::Session& s : *sessions) serves[s.session_id()] = s.generation();
    });
  }
  for (std::thread& t : readers) t.join();
  return view;
}

Reconciler::Plan Reconciler::Decide(uint64_t session, const std::optional<v1::Session>& record,
                                    std::vector<v1::Migration> in_flight, const AgentView& view,
                                    const std::string& leader, absl::Time now) {
  Plan plan;
  plan.session_id = session;

  // The migration that counts is the one the record names (else the latest); any other
  // in flight is a leftover, ended without touching an edge.
  std::optional<v1::Migration> migration;
  for (auto it = in_flight.begin(); it != in_flight.end();) {
    if (record && it->id() == record->migration_id()) {
      migration = *it;
      it = in_flight.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(in_flight.begin(), in_flight.end(), [](const v1::Migration& a, const v1::Migration& b) {
    return FromProto(a.started_at()) < FromProto(b.started_at());
  });
  if (!migration && !in_flight.empty()) {
    migration = in_flight.back();
    in_flight.pop_back();
  }
  for (const v1::Migration& m : in_flight) {
    plan.ended.push_back(End(m, v1::PHASE_ROLLED_BACK,
                             absl::StrCat("reconciled by ", leader,
                                          ": not the migration its session records"),
                             now));
  }
  const bool cut_over = migration && migration->phase() == v1::PHASE_CUT_OVER;
  const std::string named = migration ? (cut_over ? migration->to_server_id()
                                                  : migration->from_server_id())
                                      : record ? record->server_id() : "";

  // Who serves it, among the edges that answered.
  std::map<std::string, uint64_t> copies;
  for (const auto& [server, sessions] : view.serving) {
    if (auto it = sessions.find(session); it != sessions.end()) copies[server] = it->second;
  }
  const bool named_unknown = !named.empty() && !view.serving.contains(named);

  if (!named_unknown && copies.contains(named)) {
    plan.keeper = named;
  } else if (!named_unknown && !copies.empty()) {
    // The highest generation is the latest import; ties go to the first server by id.
    plan.keeper = copies.begin()->first;
    for (const auto& [server, generation] : copies) {
      if (generation > copies.at(plan.keeper)) plan.keeper = server;
    }
  }

  v1::Session next = record.value_or(v1::Session());
  next.set_session_id(session);
  std::string outcome;
  if (!plan.keeper.empty()) {
    plan.keeper_generation = copies.at(plan.keeper);
    for (const auto& [server, generation] : copies) {
      if (server != plan.keeper) plan.release.push_back(server);
    }
    next.set_server_id(plan.keeper);
    next.set_generation(plan.keeper_generation);
    next.clear_migration_id();
    next.clear_migration_to_server_id();
    if (!record) {
      next.set_note(absl::StrCat("adopted by ", leader, ": served by ", plan.keeper,
                                 " but unknown to the journal"));
      plan.actions.push_back("adopted");
    } else if (!migration && record->server_id() != plan.keeper) {
      plan.actions.push_back("moved");
    }
    if (migration) {
      std::string why = plan.keeper == named
                            ? absl::StrCat(cut_over ? "CUT_OVER was recorded" : "ended before CUT_OVER",
                                           "; ", plan.keeper, " serves the session (generation ",
                                           plan.keeper_generation, ")")
                            : absl::StrCat(named, " no longer serves the session; ", plan.keeper,
                                           " does (generation ", plan.keeper_generation, ")");
      if (!plan.release.empty()) absl::StrAppend(&why, "; released the copy at ", absl::StrJoin(plan.release, ", "));
      const bool done = plan.keeper == migration->to_server_id();
      if (done) migration->set_generation(plan.keeper_generation);
      plan.ended.push_back(End(*migration, done ? v1::PHASE_DONE : v1::PHASE_ROLLED_BACK,
                               absl::StrCat("reconciled by ", leader, ": ", why), now));
      plan.actions.push_back(done ? "finished" : "rolled_back");
    }
    outcome = absl::StrCat("kept at ", plan.keeper, " (generation ", plan.keeper_generation, ")");
    if (!plan.release.empty()) absl::StrAppend(&outcome, ", releasing ", absl::StrJoin(plan.release, ", "));
    // Nothing changes for a session that already is as recorded.
    const bool same = record && !migration && record->server_id() == plan.keeper &&
                      record->generation() == plan.keeper_generation &&
                      record->migration_id().empty();
    if (!same) plan.record = next;
  } else if (named_unknown || !view.complete()) {
    // An edge that may serve it did not answer: release nothing; end its migration by the
    // phase the journal has, and look again when the edges answer.
    plan.deferred = true;
    plan.actions.push_back("deferred");
    const std::string silent = Unreachable(view);
    if (migration) {
      const std::string why =
          absl::StrCat("reconciled by ", leader, ": ",
                       cut_over ? "CUT_OVER was recorded; the session stays recorded at "
                                : "ended before CUT_OVER; the session stays recorded at ",
                       named, "; not confirmed, as ", silent,
                       " did not answer: other copies are settled once they do");
      if (cut_over) {
        next.set_server_id(migration->to_server_id());
        next.set_generation(migration->generation());
      }
      next.clear_migration_id();
      next.clear_migration_to_server_id();
      plan.record = next;
      plan.ended.push_back(End(*migration, cut_over ? v1::PHASE_DONE : v1::PHASE_ROLLED_BACK,
                               why, now));
      plan.actions.push_back(cut_over ? "finished" : "rolled_back");
    }
    outcome = absl::StrCat("left as recorded at ", named.empty() ? "(none)" : named, ": ",
                           silent, " did not answer");
  } else if (record || migration) {
    // Every edge answered and none serves it: the session is gone (an edge restarted).
    plan.drop = true;
    plan.actions.push_back("dropped");
    if (migration) {
      plan.ended.push_back(End(*migration, v1::PHASE_ROLLED_BACK,
                               absl::StrCat("reconciled by ", leader,
                                            ": no edge serves the session any more; forgotten"),
                               now));
    }
    outcome = "dropped: no edge serves it";
  }
  plan.summary = absl::StrCat("session ", session, ": ", outcome,
                              migration ? absl::StrCat("; ", migration->id(), " ended ",
                                                       v1::Phase_Name(plan.ended.back().phase()))
                                        : "");
  return plan;
}

absl::Status Reconciler::Execute(Plan& plan, const Term& term, const std::function<bool()>& acting,
                                 const std::function<absl::StatusOr<int64_t>(const Plan&)>& commit) {
  if (!plan.changes()) return absl::OkStatus();
  auto stop = [&] {
    return absl::FailedPreconditionError(absl::StrCat(term.leader, " no longer leads"));
  };
  if (!plan.release.empty()) {
    // Never leave a session on no edge: the keeper confirms, now, before anything goes.
    if (!acting()) return stop();
    absl::StatusOr<std::shared_ptr<Agent>> keeper = agents_.Find(plan.keeper);
    absl::StatusOr<dv1::Session> confirmed =
        keeper.ok() ? (*keeper)->GetSession(plan.session_id) : keeper.status();
    if (!confirmed.ok()) {
      plan.deferred = true;
      Count("deferred");
      return absl::UnavailableError(absl::StrCat("session ", plan.session_id, ": ", plan.keeper,
                                                 " did not confirm it: ",
                                                 confirmed.status().message()));
    }
  }
  if (!acting()) return stop();
  absl::StatusOr<int64_t> written = commit(plan);
  if (!written.ok()) return written.status();
  for (const std::string& action : plan.actions) Count(action);
  for (const std::string& server : plan.release) {
    if (!acting()) return stop();
    absl::StatusOr<std::shared_ptr<Agent>> agent = agents_.Find(server);
    absl::StatusOr<dv1::Session> released =
        agent.ok() ? (*agent)->ReleaseSession(plan.session_id, term.token) : agent.status();
    if (released.ok() || absl::IsNotFound(released.status())) {
      Count("released");
      continue;
    }
    if (IsFenced(released.status())) return released.status();
    LOG(WARNING) << "reconcile: session " << plan.session_id << ": the copy at " << server
                 << " stays for now: " << released.status();
    plan.deferred = true;
    Count("deferred");
  }
  LOG(INFO) << "reconcile (" << term.leader << "): " << plan.summary;
  return absl::OkStatus();
}

}  // namespace smig::migrator
