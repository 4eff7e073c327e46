#include "services/migrator/migrator_engine.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::migrator {
namespace {

const char* PhaseLabel(v1::Phase p) {
  switch (p) {
    case v1::PHASE_PREPARING: return "preparing";
    case v1::PHASE_TRANSFERRING: return "transferring";
    case v1::PHASE_OVERLAPPING: return "overlapping";
    case v1::PHASE_CUT_OVER: return "cut_over";
    case v1::PHASE_DONE: return "done";
    case v1::PHASE_ROLLED_BACK: return "rolled_back";
    default: return "unspecified";
  }
}

}  // namespace

struct MigratorEngine::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : total(prometheus::BuildCounter()
                  .Name("smig_migrations_total")
                  .Help("Migrations that ended, by trigger (manual, auto) and result (done, "
                        "rolled_back, cancelled).")
                  .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("smig_migration_duration_seconds")
                     .Help("From Migrate to DONE or ROLLED_BACK.")
                     .Register(r)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        active(prometheus::BuildGauge()
                   .Name("smig_migrations_active")
                   .Help("Migrations in flight.")
                   .Register(r)
                   .Add({})),
        phases(prometheus::BuildCounter()
                   .Name("smig_migration_phase_total")
                   .Help("Entries into each phase of the migration state machine.")
                   .Register(r)) {}
  prometheus::Family<prometheus::Counter>& total;
  prometheus::Histogram& duration;
  prometheus::Gauge& active;
  prometheus::Family<prometheus::Counter>& phases;
};

MigratorEngine::MigratorEngine(AgentDirectory& agents, TargetPicker* picker, Options options,
                               prometheus::Registry* registry, Clock& clock)
    : agents_(agents), picker_(picker), options_(options), clock_(clock) {
  if (registry) {
    metrics_ = std::make_unique<Metrics>(*registry);
    // Every label set exists from the start (at 0), so dashboards and alerts see a series.
    for (const char* trigger : {"manual", "auto"}) {
      for (const char* result : {"done", "rolled_back", "cancelled"}) {
        metrics_->total.Add({{"trigger", trigger}, {"result", result}});
      }
    }
    for (v1::Phase p : {v1::PHASE_PREPARING, v1::PHASE_TRANSFERRING, v1::PHASE_OVERLAPPING,
                        v1::PHASE_CUT_OVER, v1::PHASE_DONE, v1::PHASE_ROLLED_BACK}) {
      metrics_->phases.Add({{"phase", PhaseLabel(p)}});
    }
  }
}

MigratorEngine::~MigratorEngine() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [id, r] : migrations_) {
    if (!Terminal(r->migration)) {
      r->cancel_reason = "the migrator is shutting down";
      r->cancel.store(true);
    }
  }
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

absl::StatusOr<v1::Session> MigratorEngine::CreateSession(const v1::CreateSessionRequest& req) {
  if (req.session_id() == 0) return absl::InvalidArgumentError("session_id 0 is reserved");
  if (req.vehicle_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("session ", req.session_id(), " needs a vehicle_id"));
  }
  if (req.flows().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("session ", req.session_id(), " has no flows"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (sessions_.contains(req.session_id())) {
      return absl::AlreadyExistsError(absl::StrCat("session ", req.session_id(), " exists"));
    }
  }
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<Agent> edge, agents_.Find(req.server_id()));
  dv1::OpenSessionRequest open;
  open.set_session_id(req.session_id());
  *open.mutable_vehicle_addresses() = req.vehicle_addresses();
  open.set_vehicle_port(req.vehicle_port());
  *open.mutable_flows() = req.flows();
  const dv1::RedundancyPolicy redundancy = req.redundancy() == dv1::REDUNDANCY_POLICY_UNSPECIFIED
                                               ? dv1::REDUNDANCY_POLICY_AUTO
                                               : req.redundancy();
  open.set_redundancy(redundancy);
  open.set_fencing_token(FencingToken());
  SMIG_ASSIGN_OR_RETURN(dv1::Session opened, edge->OpenSession(open));
  v1::Session s;
  s.set_session_id(req.session_id());
  s.set_vehicle_id(req.vehicle_id());
  s.set_server_id(req.server_id());
  s.set_generation(opened.generation());
  *s.mutable_vehicle_addresses() = req.vehicle_addresses();
  s.set_vehicle_port(req.vehicle_port());
  s.set_redundancy(redundancy);
  absl::MutexLock lock(&mu_);
  sessions_[s.session_id()] = s;
  return s;
}

std::vector<v1::Session> MigratorEngine::ListSessions() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Session> out;
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

absl::StatusOr<v1::Migration> MigratorEngine::Migrate(const v1::MigrateRequest& req) {
  v1::Session session;
  {
    absl::MutexLock lock(&mu_);
    if (!req.request_id().empty()) {
      if (auto it = by_request_.find(req.request_id()); it != by_request_.end()) {
        return migrations_.at(it->second)->migration;  // the same request, the same migration
      }
    }
    auto it = sessions_.find(req.session_id());
    if (it == sessions_.end()) {
      return absl::NotFoundError(absl::StrCat("session ", req.session_id(), " is unknown"));
    }
    session = it->second;
  }
  std::string target;
  switch (req.target_case()) {
    case v1::MigrateRequest::kTargetServerId:
      target = req.target_server_id();
      if (target.empty()) return absl::InvalidArgumentError("target_server_id is empty");
      break;
    case v1::MigrateRequest::kAuto: {
      if (picker_ == nullptr) {
        return absl::FailedPreconditionError("automatic targets need the PMM (proximity_address)");
      }
      SMIG_ASSIGN_OR_RETURN(target, picker_->Pick(session));
      break;
    }
    default:
      return absl::InvalidArgumentError("a target is required: target_server_id or auto");
  }
  if (target == session.server_id()) {
    return absl::InvalidArgumentError(absl::StrCat("target ", target, " already serves session ",
                                                   session.session_id()));
  }
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<Agent> to, agents_.Find(target));
  if (absl::Status up = to->Ping(); !up.ok()) {
    // The SMM answers; the hop that did not is the target's agent: name it, and why.
    return absl::UnavailableError(absl::StrCat("target ", target, " (agent ", to->address(),
                                               ") is unreachable: ", up.message()));
  }

  auto record = std::make_shared<Record>();
  record->fencing_token = FencingToken();
  v1::Migration& m = record->migration;
  m.set_session_id(session.session_id());
  m.set_from_server_id(session.server_id());
  m.set_to_server_id(target);
  m.set_trigger(req.trigger() == v1::TRIGGER_AUTO ? v1::TRIGGER_AUTO : v1::TRIGGER_MANUAL);
  m.set_reason(req.reason());
  m.set_request_id(req.request_id());
  *m.mutable_started_at() = ToProtoTimestamp(clock_.Now());
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the migrator is shutting down");
    // Checked again under the lock: another Migrate may have raced us here.
    if (!req.request_id().empty()) {
      if (auto it = by_request_.find(req.request_id()); it != by_request_.end()) {
        return migrations_.at(it->second)->migration;
      }
    }
    v1::Session& s = sessions_.at(session.session_id());
    if (!s.migration_id().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", s.session_id(), " is already migrating (", s.migration_id(), ")"));
    }
    if (s.server_id() != session.server_id()) {
      return absl::AbortedError(absl::StrCat("session ", s.session_id(), " moved meanwhile"));
    }
    m.set_id(absl::StrCat("mig-", next_id_++));
    s.set_migration_id(m.id());
    migrations_[m.id()] = record;
    if (!req.request_id().empty()) by_request_[req.request_id()] = m.id();
    ++running_;
    Enter(*record, v1::PHASE_PREPARING,
          absl::StrCat(session.server_id(), " -> ", target, m.reason().empty() ? "" : ": ",
                       m.reason()));
  }
  if (metrics_) metrics_->active.Increment();
  v1::Migration started = m;  // copied before the thread may change it
  std::thread([this, record] { Run(record); }).detach();
  return started;
}

void MigratorEngine::Enter(Record& r, v1::Phase phase, const std::string& note) {
  r.migration.set_phase(phase);
  v1::PhaseChange* c = r.migration.add_history();
  c->set_phase(phase);
  *c->mutable_at() = ToProtoTimestamp(clock_.Now());
  c->set_note(note);
  ++r.version;
  if (metrics_) metrics_->phases.Add({{"phase", PhaseLabel(phase)}}).Increment();
}

void MigratorEngine::Finish(Record& r, v1::Phase phase, const std::string& rollback_reason) {
  absl::MutexLock lock(&mu_);
  v1::Migration& m = r.migration;
  m.set_rollback_reason(rollback_reason);
  const absl::Time finished = clock_.Now();
  *m.mutable_finished_at() = ToProtoTimestamp(finished);
  *m.mutable_duration() = ToProtoDuration(finished - FromProto(m.started_at()));
  v1::Session& s = sessions_.at(m.session_id());
  s.clear_migration_id();
  if (phase == v1::PHASE_DONE) {
    s.set_server_id(m.to_server_id());
    s.set_generation(m.generation());
  }
  Enter(r, phase, phase == v1::PHASE_DONE ? "" : rollback_reason);
  if (metrics_) {
    const char* result = phase == v1::PHASE_DONE ? "done" : r.cancel.load() ? "cancelled"
                                                                              : "rolled_back";
    metrics_->total
        .Add({{"trigger", m.trigger() == v1::TRIGGER_AUTO ? "auto" : "manual"}, {"result", result}})
        .Increment();
    metrics_->duration.Observe(absl::ToDoubleSeconds(FromProto(m.duration())));
    metrics_->active.Decrement();
  }
  finished_order_.push_back(m.id());
  while (finished_order_.size() > options_.max_finished) {
    const std::string& old = finished_order_.front();
    if (auto it = migrations_.find(old); it != migrations_.end()) {
      by_request_.erase(it->second->migration.request_id());
      migrations_.erase(it);
    }
    finished_order_.erase(finished_order_.begin());
  }
  --running_;
}

void MigratorEngine::Run(std::shared_ptr<Record> record) {
  Record& r = *record;
  uint64_t session;
  std::string from_id, to_id;
  {
    absl::MutexLock lock(&mu_);
    session = r.migration.session_id();
    from_id = r.migration.from_server_id();
    to_id = r.migration.to_server_id();
  }
  auto cancelled = [&]() -> std::optional<std::string> {
    if (!r.cancel.load()) return std::nullopt;
    absl::MutexLock lock(&mu_);
    return absl::StrCat("cancelled: ", r.cancel_reason);
  };
  // Before CUT_OVER, every failure ends here: the target lets go, the source never stopped.
  const uint64_t token = r.fencing_token;
  auto roll_back = [&](const std::string& why, Agent* target_to_release) {
    if (target_to_release != nullptr) (void)target_to_release->ReleaseSession(session, token);
    Finish(r, v1::PHASE_ROLLED_BACK, why);
  };

  absl::StatusOr<std::shared_ptr<Agent>> from = agents_.Find(from_id);
  absl::StatusOr<std::shared_ptr<Agent>> to = agents_.Find(to_id);
  if (!from.ok() || !to.ok()) {
    return roll_back((from.ok() ? to : from).status().ToString(), nullptr);
  }
  // Follow the source's events before anything starts, so the confirmation is not missed.
  absl::StatusOr<std::unique_ptr<ContiguityWatch>> watch = (*from)->WatchContiguity(session);
  if (!watch.ok()) return roll_back(std::string(watch.status().message()), nullptr);
  if (auto c = cancelled()) return roll_back(*c, nullptr);

  {
    absl::MutexLock lock(&mu_);
    Enter(r, v1::PHASE_TRANSFERRING, absl::StrCat("ExportState at ", from_id));
  }
  absl::StatusOr<dv1::SessionState> state = (*from)->ExportState(session);
  if (!state.ok()) return roll_back(std::string(state.status().message()), nullptr);
  absl::StatusOr<dv1::Session> imported = (*to)->ImportState(*state, token);
  if (!imported.ok()) {
    // ALREADY_EXISTS means the target serves it from an earlier attempt: not ours to release.
    bool ours = !absl::IsAlreadyExists(imported.status());
    return roll_back(std::string(imported.status().message()), ours ? to->get() : nullptr);
  }
  {
    absl::MutexLock lock(&mu_);
    r.migration.set_generation(state->generation());
    Enter(r, v1::PHASE_OVERLAPPING,
          absl::StrCat("both edges send; waiting for the vehicle to confirm generation ",
                       state->generation()));
  }

  const absl::Time deadline = clock_.Now() + options_.overlap_timeout;
  while (true) {
    if (auto c = cancelled()) return roll_back(*c, to->get());
    absl::Status seen = (*watch)->Await(
        state->generation(), std::min(deadline - clock_.Now(), options_.health_interval));
    if (seen.ok()) break;
    if (absl::IsUnavailable(seen)) {
      return roll_back(absl::StrCat("lost the events of source ", from_id, ": ", seen.message()),
                       to->get());
    }
    if (clock_.Now() >= deadline) {
      return roll_back(absl::StrCat("the vehicle did not confirm ", to_id, "'s stream within ",
                                    absl::FormatDuration(options_.overlap_timeout)),
                       to->get());
    }
    if (absl::StatusOr<dv1::Session> alive = (*to)->GetSession(session); !alive.ok()) {
      return roll_back(absl::StrCat("target failed during the overlap: ", alive.status().message()),
                       to->get());
    }
  }

  {
    absl::MutexLock lock(&mu_);
    Enter(r, v1::PHASE_CUT_OVER, absl::StrCat("vehicle confirmed ", to_id, "; releasing ", from_id));
  }
  // From here the target alone suffices: a source that fails to release is noted, not undone.
  std::string note;
  if (absl::StatusOr<dv1::Session> released = (*from)->ReleaseSession(session, token);
      !released.ok()) {
    note = absl::StrCat("source release failed (", released.status().message(), ")");
  }
  Finish(r, v1::PHASE_DONE, note);
}

absl::StatusOr<v1::Migration> MigratorEngine::GetMigration(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(id);
  if (it == migrations_.end()) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
  return it->second->migration;
}

std::vector<v1::Migration> MigratorEngine::ListMigrations(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Migration> out;
  for (const auto& [id, r] : migrations_) {
    if (session == 0 || r->migration.session_id() == session) out.push_back(r->migration);
  }
  std::sort(out.begin(), out.end(), [](const v1::Migration& a, const v1::Migration& b) {
    return FromProto(a.started_at()) < FromProto(b.started_at());
  });
  return out;
}

absl::StatusOr<v1::Migration> MigratorEngine::CancelMigration(const std::string& id,
                                                              const std::string& reason) {
  std::shared_ptr<Record> r;
  {
    absl::MutexLock lock(&mu_);
    auto it = migrations_.find(id);
    if (it == migrations_.end()) {
      return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
    }
    r = it->second;
    v1::Phase p = r->migration.phase();
    if (p == v1::PHASE_CUT_OVER || Terminal(r->migration)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", id, " is ", v1::Phase_Name(p), ": too late to cancel"));
    }
    r->cancel_reason = reason.empty() ? "by request" : reason;
    r->cancel.store(true);
  }
  absl::MutexLock lock(&mu_);
  auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Terminal(r->migration); };
  clock_.AwaitWithDeadline(mu_, absl::Condition(&ended), clock_.Now() + absl::Seconds(10));
  return r->migration;
}

absl::StatusOr<std::optional<v1::Migration>> MigratorEngine::WaitForChange(
    const std::string& id, uint64_t& seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(id);
  if (it == migrations_.end()) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
  std::shared_ptr<Record> r = it->second;
  auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return r->version > seen; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&changed), timeout)) return std::nullopt;
  seen = r->version;
  return r->migration;
}

}  // namespace smig::migrator
