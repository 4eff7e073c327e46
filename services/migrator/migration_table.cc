#include "services/migrator/migration_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace smig::migrator {
namespace {

// A journal batch holds at most store::Store::kMaxBatch writes; evictions ride along.
constexpr size_t kMaxEvict = 64;

void AddPhase(v1::Migration& m, v1::Phase phase, const std::string& note, absl::Time at) {
  m.set_phase(phase);
  v1::PhaseChange* c = m.add_history();
  c->set_phase(phase);
  *c->mutable_at() = ToProtoTimestamp(at);
  c->set_note(note);
}

}  // namespace

// --- Terms ---

absl::Status MigrationTable::Begin(uint64_t term, std::optional<store::Leadership> leadership,
                                   MigrationJournal::Snapshot snapshot) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || ended_ >= term) return absl::CancelledError("the term ended before it began");
  term_ = term;
  leadership_ = leadership;
  sessions_ = std::move(snapshot.sessions);
  migrations_.clear();
  by_request_.clear();
  finished_order_.clear();
  std::vector<std::pair<absl::Time, std::string>> finished;
  for (auto& [id, v] : snapshot.migrations) {
    auto r = std::make_shared<Record>();
    r->id = id;
    r->session_id = v.migration.session_id();
    r->from = v.migration.from_server_id();
    r->to = v.migration.to_server_id();
    r->term = term;
    if (leadership) {
      r->fence = leadership->fence();
      r->fencing_token = leadership->revision;
    }
    r->migration = std::move(v.migration);
    r->version = v.revision;
    if (!r->migration.request_id().empty()) by_request_[r->migration.request_id()] = id;
    if (Terminal(r->migration)) finished.emplace_back(FromProto(r->migration.finished_at()), id);
    migrations_[id] = std::move(r);
  }
  std::sort(finished.begin(), finished.end());
  for (auto& [at, id] : finished) finished_order_.push_back(std::move(id));
  next_id_ = snapshot.next_id;
  return absl::OkStatus();
}

void MigrationTable::End(uint64_t term) {
  absl::MutexLock lock(&mu_);
  ended_ = std::max(ended_, term);
  if (term_ != term) return;
  // Threads of this term see it is over at their next step and stop, touching nothing.
  term_ = 0;
  leadership_.reset();
  sessions_.clear();
  migrations_.clear();
  finished_order_.clear();
  by_request_.clear();
}

bool MigrationTable::Over(uint64_t term) const {
  absl::MutexLock lock(&mu_);
  return stopping_ || ended_ >= term || (term_ != 0 && term_ != term);
}

MigrationTable::Term MigrationTable::Current() const {
  absl::MutexLock lock(&mu_);
  return Term{term_, leadership_};
}

bool MigrationTable::AwaitIdle(uint64_t term) {
  absl::MutexLock lock(&mu_);
  auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running_ == 0 || stopping_ || ended_ >= term;
  };
  mu_.Await(absl::Condition(&idle));
  return running_ == 0 && !stopping_ && ended_ < term;
}

void MigrationTable::Stop(const std::string& why) {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [id, r] : migrations_) {
    if (r->live && !Terminal(r->migration)) {
      r->cancel_reason = why;
      r->cancel.store(true);
    }
  }
}

void MigrationTable::AwaitNoThreads() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

// --- Sessions ---

absl::StatusOr<MigrationTable::Term> MigrationTable::BeginCreate(uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  if (sessions_.contains(session_id) || busy_.contains(session_id)) {
    return absl::AlreadyExistsError(absl::StrCat("session ", session_id, " exists"));
  }
  if (stopping_) return absl::UnavailableError("the migrator is shutting down");
  busy_.insert(session_id);
  return Term{term_, leadership_};
}

void MigrationTable::EndCreate(uint64_t term, uint64_t session_id,
                               const std::optional<v1::Session>& created) {
  absl::MutexLock lock(&mu_);
  busy_.erase(session_id);
  if (created && term == term_) sessions_[session_id] = *created;
}

std::optional<v1::Session> MigrationTable::FindSession(uint64_t session_id) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second;
}

std::vector<v1::Session> MigrationTable::Sessions() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Session> out;
  for (const auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

// --- Migrations ---

std::optional<v1::Migration> MigrationTable::FindRequest(const std::string& request_id) const {
  if (request_id.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = by_request_.find(request_id);
  if (it == by_request_.end()) return std::nullopt;
  return migrations_.at(it->second)->migration;
}

absl::StatusOr<MigrationTable::Reservation> MigrationTable::Reserve(
    Record& r, const std::string& from, const std::string& request_id, uint64_t unfenced_token,
    const std::string& note, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the migrator is shutting down");
  Reservation out;
  // Checked again under the lock: another Migrate may have raced this one here.
  if (!request_id.empty()) {
    if (auto it = by_request_.find(request_id); it != by_request_.end()) {
      out.existing = migrations_.at(it->second)->migration;
      return out;
    }
  }
  auto it = sessions_.find(r.session_id);
  if (it == sessions_.end()) {
    return absl::AbortedError(absl::StrCat("session ", r.session_id, " is gone"));
  }
  v1::Session& s = it->second;
  if (!s.migration_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", s.session_id(), " is already migrating (", s.migration_id(), ")"));
  }
  if (busy_.contains(s.session_id())) {
    return absl::UnavailableError(
        absl::StrCat("session ", s.session_id(), " is being reconciled; retry shortly"));
  }
  if (s.server_id() != from) {
    return absl::AbortedError(absl::StrCat("session ", s.session_id(), " moved meanwhile"));
  }
  r.term = term_;
  r.fencing_token = unfenced_token;
  if (leadership_) {
    r.fence = leadership_->fence();
    r.fencing_token = leadership_->revision;
  }
  r.id = absl::StrCat("mig-", next_id_++);
  r.migration.set_id(r.id);
  AddPhase(r.migration, v1::PHASE_PREPARING, note, now);
  s.set_migration_id(r.id);  // reserved while the journal writes it
  s.set_migration_to_server_id(r.to);
  out.session = s;
  out.next_id = next_id_;
  return out;
}

void MigrationTable::Unreserve(const Record& r) {
  absl::MutexLock lock(&mu_);
  if (auto it = sessions_.find(r.session_id);
      it != sessions_.end() && it->second.migration_id() == r.id) {
    it->second.clear_migration_id();
    it->second.clear_migration_to_server_id();
  }
}

bool MigrationTable::Start(const std::shared_ptr<Record>& r, uint64_t version) {
  absl::MutexLock lock(&mu_);
  if (r->term != term_) return false;
  r->version = version == 0 ? 1 : version;
  r->live = true;
  migrations_[r->id] = r;
  if (!r->migration.request_id().empty()) by_request_[r->migration.request_id()] = r->id;
  ++running_;
  return true;
}

void MigrationTable::ThreadEnded(Record& r) {
  absl::MutexLock lock(&mu_);
  r.live = false;
  --running_;
}

bool MigrationTable::Current(const Record& r) const {
  absl::MutexLock lock(&mu_);
  return r.term == term_;
}

std::optional<std::string> MigrationTable::CancelReason(const Record& r) const {
  if (!r.cancel.load()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  return r.cancel_reason;
}

v1::Migration MigrationTable::State(const Record& r) const {
  absl::MutexLock lock(&mu_);
  return r.migration;
}

absl::Status MigrationTable::Apply(Record& r, const v1::Migration& next,
                                   const std::optional<v1::Session>& session, uint64_t version) {
  absl::MutexLock lock(&mu_);
  if (r.term != term_) return absl::FailedPreconditionError("this SMM replica no longer leads");
  r.migration = next;
  r.version = version == 0 ? r.version + 1 : version;
  if (session) sessions_[session->session_id()] = *session;
  return absl::OkStatus();
}

absl::StatusOr<MigrationTable::Ending> MigrationTable::PrepareEnd(const Record& r) const {
  absl::MutexLock lock(&mu_);
  if (r.term != term_) return absl::FailedPreconditionError("this SMM replica no longer leads");
  auto s = sessions_.find(r.session_id);
  if (s == sessions_.end()) {
    return absl::InternalError(absl::StrCat("session ", r.session_id, " of ", r.id, " is gone"));
  }
  return Ending{r.migration, s->second, EvictionsLocked(1)};
}

void MigrationTable::Ended(const Record& r, const std::vector<std::string>& evict) {
  absl::MutexLock lock(&mu_);
  if (r.term != term_) return;
  ForgetLocked(evict);
  finished_order_.push_back(r.id);
}

absl::StatusOr<v1::Migration> MigrationTable::Get(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(id);
  if (it == migrations_.end()) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
  return it->second->migration;
}

std::vector<v1::Migration> MigrationTable::List(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Migration> out;
  for (const auto& [id, r] : migrations_) {
    if (session == 0 || r->session_id == session) out.push_back(r->migration);
  }
  std::sort(out.begin(), out.end(), [](const v1::Migration& a, const v1::Migration& b) {
    return FromProto(a.started_at()) < FromProto(b.started_at());
  });
  return out;
}

absl::StatusOr<std::shared_ptr<MigrationTable::Record>> MigrationTable::Cancel(
    const std::string& id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  auto it = migrations_.find(id);
  if (it == migrations_.end()) return absl::NotFoundError(absl::StrCat("migration ", id, " is unknown"));
  std::shared_ptr<Record> r = it->second;
  v1::Phase p = r->migration.phase();
  if (p == v1::PHASE_CUT_OVER || Terminal(r->migration)) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", id, " is ", v1::Phase_Name(p), ": too late to cancel"));
  }
  if (!r->live) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", id, " stopped acting in ", v1::Phase_Name(p),
                     "; reconciliation ends it (rolled back before CUT_OVER)"));
  }
  r->cancel_reason = reason.empty() ? "by request" : reason;
  r->cancel.store(true);
  return r;
}

v1::Migration MigrationTable::AwaitEnd(const std::shared_ptr<Record>& r, Clock& clock,
                                       absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Terminal(r->migration) || !r->live; };
  clock.AwaitWithDeadline(mu_, absl::Condition(&ended), deadline);
  return r->migration;
}

absl::StatusOr<std::optional<v1::Migration>> MigrationTable::WaitForChange(
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

// --- Reconciliation ---

std::optional<MigrationTable::Contents> MigrationTable::Look(uint64_t term) const {
  absl::MutexLock lock(&mu_);
  if (term_ != term) return std::nullopt;
  Contents out;
  out.sessions = sessions_;
  for (const auto& [id, s] : sessions_) out.servers.insert(s.server_id());
  for (const auto& [id, r] : migrations_) {
    if (Terminal(r->migration)) continue;
    out.servers.insert(r->from);
    out.servers.insert(r->to);
    out.in_flight.insert(r->session_id);
  }
  return out;
}

absl::StatusOr<std::optional<MigrationTable::Claimed>> MigrationTable::Claim(
    uint64_t term, uint64_t session, const std::optional<v1::Session>& before) {
  absl::MutexLock lock(&mu_);
  if (term_ != term || stopping_) return absl::CancelledError("the term ended");
  auto now = sessions_.find(session);
  const bool same = (now == sessions_.end()) == !before.has_value() &&
                    (!before || now->second.SerializeAsString() == before->SerializeAsString());
  if (!same || busy_.contains(session)) return std::nullopt;
  Claimed out;
  for (const auto& [id, r] : migrations_) {
    if (r->session_id != session || Terminal(r->migration)) continue;
    if (r->live) return std::nullopt;  // its thread settles it
    out.in_flight.push_back(r->migration);
  }
  if (now != sessions_.end()) out.record = now->second;
  busy_.insert(session);
  return out;
}

void MigrationTable::Unclaim(uint64_t session) {
  absl::MutexLock lock(&mu_);
  busy_.erase(session);
}

std::vector<std::string> MigrationTable::Evictions(size_t adding) const {
  absl::MutexLock lock(&mu_);
  return EvictionsLocked(adding);
}

std::vector<std::string> MigrationTable::EvictionsLocked(size_t adding) const {
  std::vector<std::string> out;
  for (size_t i = 0; finished_order_.size() + adding > options_.max_finished + i &&
                     i < finished_order_.size() && out.size() < kMaxEvict;
       ++i) {
    out.push_back(finished_order_[i]);
  }
  return out;
}

void MigrationTable::Forget(uint64_t term, const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  if (term == term_) ForgetLocked(ids);
}

void MigrationTable::ForgetLocked(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    if (auto it = migrations_.find(id); it != migrations_.end()) {
      by_request_.erase(it->second->migration.request_id());
      migrations_.erase(it);
    }
    std::erase(finished_order_, id);
  }
}

void MigrationTable::Settle(uint64_t term, const Reconciler::Plan& plan,
                            const std::vector<std::string>& evict, int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (term_ != term) return;
  if (plan.record) sessions_[plan.session_id] = *plan.record;
  if (plan.drop) sessions_.erase(plan.session_id);
  ForgetLocked(evict);
  for (const v1::Migration& m : plan.ended) {
    std::shared_ptr<Record>& r = migrations_[m.id()];
    if (!r) {
      r = std::make_shared<Record>();
      r->id = m.id();
      r->session_id = m.session_id();
      r->from = m.from_server_id();
      r->to = m.to_server_id();
      r->term = term;
    }
    r->migration = m;
    r->version = revision;
    finished_order_.push_back(m.id());
  }
}

}  // namespace smig::migrator
