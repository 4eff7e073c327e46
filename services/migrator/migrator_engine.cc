#include "services/migrator/migrator_engine.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "dataplane/protocol/hello.h"

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

void AddPhase(v1::Migration& m, v1::Phase phase, const std::string& note, absl::Time at) {
  m.set_phase(phase);
  v1::PhaseChange* c = m.add_history();
  c->set_phase(phase);
  *c->mutable_at() = ToProtoTimestamp(at);
  c->set_note(note);
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
                   .Help("Migrations in flight (driven by this replica).")
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
    : agents_(agents),
      picker_(picker),
      options_(std::move(options)),
      clock_(clock),
      table_({.max_finished = options_.max_finished}) {
  CHECK_EQ(options_.store == nullptr, options_.election == nullptr)
      << "MigratorEngine: a store and an election go together";
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
  if (options_.store == nullptr) {
    absl::Status begun = table_.Begin(1, std::nullopt, {});  // one replica, leading for good
    CHECK(begun.ok()) << begun;
    return;
  }
  journal_ = std::make_unique<MigrationJournal>(
      *options_.store,
      MigrationJournal::Options{.prefix = options_.store_prefix, .retry_for = options_.store_retry},
      clock_);
  reconciler_ = std::make_unique<Reconciler>(agents_, registry);
  takeover_ = std::make_unique<Takeover>(table_, *journal_, *reconciler_, agents_,
                                         *options_.election, options_.replica_id, clock_);
  role_ = std::make_unique<ReplicaRole>(
      *options_.election,
      ReplicaRole::Options{.replica_id = options_.replica_id,
                           .revisit_every = options_.reconcile_interval,
                           .audit_every = options_.audit_interval},
      *takeover_, clock_, registry);
  role_->Start();
}

MigratorEngine::~MigratorEngine() { Stop(); }

void MigratorEngine::Stop() {
  // Migrations in flight roll back (while this replica still leads); no term begins.
  table_.Stop("the migrator is shutting down");
  if (role_) role_->Stop();  // no takeover or pass runs after this
  table_.AwaitNoThreads();
}

store::Election::Listener MigratorEngine::Listener() {
  CHECK(role_ != nullptr) << "MigratorEngine::Listener needs a store and an election";
  return role_->Listener();
}

bool MigratorEngine::Serving() const { return !role_ || role_->Serving(); }

bool MigratorEngine::AwaitServing(absl::Duration timeout) const {
  return !role_ || role_->AwaitServing(timeout);
}

absl::Status MigratorEngine::CheckMutable() const {
  return role_ ? role_->CheckMutable() : absl::OkStatus();
}

bool MigratorEngine::FromMemory() const { return !role_ || role_->Serving(); }

bool MigratorEngine::Acting(const Record& r) const {
  if (!table_.Current(r)) return false;
  if (options_.election == nullptr) return true;
  // The election's own belief, which ends in time even when its events are late.
  std::optional<store::Leadership> now = options_.election->current();
  return now.has_value() && static_cast<uint64_t>(now->revision) == r.fencing_token;
}

absl::StatusOr<v1::Session> MigratorEngine::CreateSession(const v1::CreateSessionRequest& req) {
  SMIG_RETURN_IF_ERROR(CheckMutable());
  if (req.session_id() == 0) return absl::InvalidArgumentError("session_id 0 is reserved");
  if (req.vehicle_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("session ", req.session_id(), " needs a vehicle_id"));
  }
  if (req.flows().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("session ", req.session_id(), " has no flows"));
  }
  SMIG_ASSIGN_OR_RETURN(MigrationTable::Term term, table_.BeginCreate(req.session_id()));
  std::optional<v1::Session> created;
  absl::Cleanup end = [&] { table_.EndCreate(term.term, req.session_id(), created); };
  const store::Fence fence = term.leadership ? term.leadership->fence() : store::Fence{};
  const uint64_t token = term.leadership ? term.leadership->revision : FencingToken();
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<Agent> edge, agents_.Find(req.server_id()));
  const dv1::RedundancyPolicy redundancy = req.redundancy() == dv1::REDUNDANCY_POLICY_UNSPECIFIED
                                               ? dv1::REDUNDANCY_POLICY_AUTO
                                               : req.redundancy();
  v1::Session s;
  s.set_session_id(req.session_id());
  s.set_vehicle_id(req.vehicle_id());
  s.set_server_id(req.server_id());
  *s.mutable_vehicle_addresses() = req.vehicle_addresses();
  s.set_vehicle_port(req.vehicle_port());
  s.set_redundancy(redundancy);
  // With a store the record comes first (generation 0: being opened), so that a leader
  // dying meanwhile leaves a record reconciliation can match, vehicle and all.
  if (journal_) {
    MigrationJournal::Batch batch;
    batch.PutSession(s);
    SMIG_RETURN_IF_ERROR(journal_->Commit(batch, fence).status());
    if (table_.Over(term.term)) {
      return absl::FailedPreconditionError("this SMM replica stopped leading; retry at the leader");
    }
  }
  dv1::OpenSessionRequest open;
  open.set_session_id(req.session_id());
  *open.mutable_vehicle_addresses() = req.vehicle_addresses();
  open.set_vehicle_port(req.vehicle_port());
  *open.mutable_flows() = req.flows();
  open.set_redundancy(redundancy);
  open.set_fencing_token(token);
  // The session's key: the edge keeps it in the session's state (it moves with it), the
  // caller hands it to the vehicle; this SMM keeps no copy.
  open.set_session_key(dataplane::MintSessionKey());
  absl::StatusOr<dv1::Session> opened = edge->OpenSession(open);
  if (!opened.ok()) {
    if (journal_) {
      MigrationJournal::Batch undo;
      undo.DeleteSession(s.session_id());
      // If this fails, reconciliation drops the record: no edge serves the session.
      (void)journal_->Commit(undo, fence);
    }
    return opened.status();
  }
  s.set_generation(opened->generation());
  if (journal_) {
    MigrationJournal::Batch batch;
    batch.PutSession(s);
    // The session is open and recorded either way; reconciliation corrects the generation.
    if (absl::Status w = journal_->Commit(batch, fence).status(); !w.ok()) {
      LOG(WARNING) << "session " << s.session_id() << " is open at " << s.server_id()
                   << " but its generation was not recorded: " << w;
    }
  }
  created = s;
  v1::Session answer = s;  // the caller's copy alone carries the key
  answer.set_session_key(open.session_key());
  return answer;
}

absl::StatusOr<std::vector<v1::Session>> MigratorEngine::ListSessions() const {
  if (!FromMemory()) return journal_->ListSessions();
  return table_.Sessions();
}

absl::StatusOr<v1::Migration> MigratorEngine::Migrate(const v1::MigrateRequest& req) {
  SMIG_RETURN_IF_ERROR(CheckMutable());
  // The same request, the same migration.
  if (std::optional<v1::Migration> m = table_.FindRequest(req.request_id())) return *m;
  std::optional<v1::Session> session = table_.FindSession(req.session_id());
  if (!session) return absl::NotFoundError(absl::StrCat("session ", req.session_id(), " is unknown"));
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
      SMIG_ASSIGN_OR_RETURN(target, picker_->Pick(*session));
      break;
    }
    default:
      return absl::InvalidArgumentError("a target is required: target_server_id or auto");
  }
  if (target == session->server_id()) {
    return absl::InvalidArgumentError(absl::StrCat("target ", target, " already serves session ",
                                                   session->session_id()));
  }
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<Agent> to, agents_.Find(target));
  if (absl::Status up = to->Ping(); !up.ok()) {
    // The SMM answers; the hop that did not is the target's agent: name it, and why.
    return absl::UnavailableError(absl::StrCat("target ", target, " (agent ", to->address(),
                                               ") is unreachable: ", up.message()));
  }

  auto record = std::make_shared<Record>();
  record->session_id = session->session_id();
  record->from = session->server_id();
  record->to = target;
  v1::Migration& m = record->migration;
  m.set_session_id(session->session_id());
  m.set_from_server_id(session->server_id());
  m.set_to_server_id(target);
  m.set_trigger(req.trigger() == v1::TRIGGER_AUTO ? v1::TRIGGER_AUTO : v1::TRIGGER_MANUAL);
  m.set_reason(req.reason());
  m.set_request_id(req.request_id());
  *m.mutable_started_at() = ToProtoTimestamp(clock_.Now());
  // Numbers are handed out and written in one order, so the journal's counter only grows.
  absl::MutexLock create(&create_mu_);
  SMIG_ASSIGN_OR_RETURN(
      MigrationTable::Reservation reserved,
      table_.Reserve(*record, session->server_id(), req.request_id(), FencingToken(),
                     absl::StrCat(session->server_id(), " -> ", target,
                                  m.reason().empty() ? "" : ": ", m.reason()),
                     clock_.Now()));
  if (reserved.existing) return *reserved.existing;
  uint64_t version = 0;
  if (journal_) {
    MigrationJournal::Batch batch;
    batch.PutMigration(m);
    batch.PutSession(reserved.session);
    batch.SetNextId(reserved.next_id);
    absl::StatusOr<int64_t> written = journal_->Commit(batch, record->fence);
    if (!written.ok()) {
      table_.Unreserve(*record);
      return absl::Status(written.status().code(),
                          absl::StrCat("the journal did not record the migration: ",
                                       written.status().message()));
    }
    version = *written;
  }
  // Deposed meanwhile: the journal has it in PREPARING, and the next leader ends it.
  if (!table_.Start(record, version)) return m;
  if (metrics_) {
    metrics_->phases.Add({{"phase", PhaseLabel(v1::PHASE_PREPARING)}}).Increment();
    metrics_->active.Increment();
  }
  v1::Migration started = m;  // copied before the thread may change it
  std::thread([this, record] { Run(record); }).detach();
  return started;
}

absl::Status MigratorEngine::Commit(Record& r, const v1::Migration& next,
                                    const std::optional<v1::Session>& session,
                                    const std::vector<std::string>& evict) {
  if (!Acting(r)) return absl::FailedPreconditionError("this SMM replica no longer leads");
  int64_t revision = 0;
  if (journal_) {
    MigrationJournal::Batch batch;
    batch.PutMigration(next);
    if (session) batch.PutSession(*session);
    for (const std::string& id : evict) batch.DeleteMigration(id);
    SMIG_ASSIGN_OR_RETURN(revision, journal_->Commit(batch, r.fence));
  }
  r.end_recorded = MigrationTable::Terminal(next);
  // Counted once recorded, and before memory shows it: a watcher that sees the phase sees
  // it counted.
  if (metrics_) {
    metrics_->phases.Add({{"phase", PhaseLabel(next.phase())}}).Increment();
    if (MigrationTable::Terminal(next)) {
      const char* result = next.phase() == v1::PHASE_DONE ? "done"
                           : r.cancel.load()                ? "cancelled"
                                                            : "rolled_back";
      metrics_->total
          .Add({{"trigger", next.trigger() == v1::TRIGGER_AUTO ? "auto" : "manual"},
                {"result", result}})
          .Increment();
      metrics_->duration.Observe(absl::ToDoubleSeconds(FromProto(next.duration())));
      metrics_->active.Decrement();
    }
  }
  return table_.Apply(r, next, session, revision);
}

absl::Status MigratorEngine::Enter(Record& r, v1::Phase phase, const std::string& note,
                                   std::optional<uint64_t> generation) {
  v1::Migration next = table_.State(r);
  if (generation) next.set_generation(*generation);
  AddPhase(next, phase, note, clock_.Now());
  return Commit(r, next);
}

absl::Status MigratorEngine::Finish(Record& r, v1::Phase phase, const std::string& rollback_reason) {
  SMIG_ASSIGN_OR_RETURN(MigrationTable::Ending end, table_.PrepareEnd(r));
  v1::Migration& next = end.migration;
  next.set_rollback_reason(rollback_reason);
  const absl::Time finished = clock_.Now();
  *next.mutable_finished_at() = ToProtoTimestamp(finished);
  *next.mutable_duration() = ToProtoDuration(finished - FromProto(next.started_at()));
  AddPhase(next, phase, phase == v1::PHASE_DONE ? "" : rollback_reason, finished);
  end.session.clear_migration_id();
  end.session.clear_migration_to_server_id();
  if (phase == v1::PHASE_DONE) {
    end.session.set_server_id(next.to_server_id());
    end.session.set_generation(next.generation());
  }
  SMIG_RETURN_IF_ERROR(Commit(r, next, end.session, end.evict));
  table_.Ended(r, end.evict);
  return absl::OkStatus();
}

// What a migration's thread (MigrationRun) asks of the engine, for one record.
class MigratorEngine::RunOwner final : public MigrationRun::Owner {
 public:
  RunOwner(MigratorEngine& engine, Record& record) : engine_(engine), record_(record) {}

  absl::Status Enter(v1::Phase phase, const std::string& note,
                     std::optional<uint64_t> generation) override {
    return engine_.Enter(record_, phase, note, generation);
  }
  absl::Status Finish(v1::Phase phase, const std::string& reason) override {
    return engine_.Finish(record_, phase, reason);
  }
  bool Acting() const override { return engine_.Acting(record_); }
  std::optional<std::string> Cancelled() const override {
    std::optional<std::string> why = engine_.table_.CancelReason(record_);
    if (!why) return std::nullopt;
    return absl::StrCat("cancelled: ", *why);
  }
  void Abandon(const absl::Status& why) override {
    LOG(WARNING) << "migration " << record_.id << " stops acting (" << why
                 << "); reconciliation will end it";
    if (engine_.role_) engine_.role_->RevisitSoon();
  }
  void LeaveCopy(const std::string& server) override {
    LOG(WARNING) << "migration " << record_.id << ": the copy at " << server
                 << " was not released; reconciliation will";
    if (engine_.role_) engine_.role_->RevisitSoon();
  }

 private:
  MigratorEngine& engine_;
  Record& record_;
};

void MigratorEngine::Run(std::shared_ptr<Record> record) {
  absl::Cleanup ended = [&] {
    // An ended migration left the gauge when it was recorded; one that stopped acting here.
    if (metrics_ && !record->end_recorded) metrics_->active.Decrement();
    table_.ThreadEnded(*record);
  };
  RunOwner owner(*this, *record);
  MigrationRun::Run(agents_,
                    {.session = record->session_id,
                     .from = record->from,
                     .to = record->to,
                     .token = record->fencing_token,
                     .overlap_timeout = options_.overlap_timeout,
                     .health_interval = options_.health_interval},
                    owner, clock_);
}

absl::StatusOr<v1::Migration> MigratorEngine::GetMigration(const std::string& id) const {
  if (FromMemory()) return table_.Get(id);
  SMIG_ASSIGN_OR_RETURN(std::optional<MigrationJournal::Versioned> v, journal_->GetMigration(id));
  if (!v) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
  return v->migration;
}

absl::StatusOr<std::vector<v1::Migration>> MigratorEngine::ListMigrations(uint64_t session) const {
  if (FromMemory()) return table_.List(session);
  return journal_->ListMigrations(session);
}

absl::StatusOr<v1::Migration> MigratorEngine::CancelMigration(const std::string& id,
                                                              const std::string& reason) {
  SMIG_RETURN_IF_ERROR(CheckMutable());
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<Record> r, table_.Cancel(id, reason));
  return table_.AwaitEnd(r, clock_, clock_.Now() + absl::Seconds(10));
}

absl::StatusOr<std::optional<v1::Migration>> MigratorEngine::WaitForChange(
    const std::string& id, uint64_t& seen, absl::Duration timeout) const {
  if (FromMemory()) return table_.WaitForChange(id, seen, timeout);
  // Elsewhere the store is polled: the revision of the migration's last write is its version.
  for (const absl::Time end = absl::Now() + timeout;;) {
    SMIG_ASSIGN_OR_RETURN(std::optional<MigrationJournal::Versioned> v, journal_->GetMigration(id));
    if (!v) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
    if (static_cast<uint64_t>(v->revision) > seen) {
      seen = v->revision;
      return v->migration;
    }
    const absl::Time now = absl::Now();
    if (now >= end) return std::nullopt;
    absl::SleepFor(std::min(end - now, absl::Milliseconds(50)));
  }
}

}  // namespace smig::migrator
