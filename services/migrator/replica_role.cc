#include "services/migrator/replica_role.h"

#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace smig::migrator {

struct ReplicaRole::Hooks {
  absl::Mutex mu;
  ReplicaRole* role ABSL_GUARDED_BY(mu) = nullptr;
};

struct ReplicaRole::Metrics {
  explicit Metrics(prometheus::Registry& r)
      : takeover(prometheus::BuildHistogram()
                     .Name("smig_takeover_duration_seconds")
                     .Help("From gaining the SMM's leadership to serving changes: loading the "
                           "journal and reconciling it with every edge.")
                     .Register(r)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})) {}
  prometheus::Histogram& takeover;
};

ReplicaRole::ReplicaRole(store::Election& election, Options options, Duties& duties,
                         Clock& clock, prometheus::Registry* registry)
    : election_(election),
      options_(std::move(options)),
      duties_(duties),
      clock_(clock),
      hooks_(std::make_shared<Hooks>()) {
  if (registry) metrics_ = std::make_unique<Metrics>(*registry);
  absl::MutexLock lock(&hooks_->mu);
  hooks_->role = this;
}

ReplicaRole::~ReplicaRole() { Stop(); }

void ReplicaRole::Stop() {
  {
    // A callback in progress finishes first; none reaches this role afterwards.
    absl::MutexLock lock(&hooks_->mu);
    hooks_->role = nullptr;
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (chores_.joinable()) chores_.join();
}

store::Election::Listener ReplicaRole::Listener() {
  std::shared_ptr<Hooks> hooks = hooks_;
  return {.on_gained =
              [hooks](const store::Leadership& l) {
                absl::MutexLock lock(&hooks->mu);
                if (hooks->role) hooks->role->OnGained(l);
              },
          .on_lost =
              [hooks](const store::Leadership& l, const absl::Status& why) {
                absl::MutexLock lock(&hooks->mu);
                if (hooks->role) hooks->role->OnLost(l, why);
              }};
}

void ReplicaRole::Start() {
  chores_ = std::thread([this] { Chores(); });
  // Leading already (the listener came late): the same as being told.
  if (std::optional<store::Leadership> now = election_.current()) OnGained(*now);
}

void ReplicaRole::OnGained(const store::Leadership& leadership) {
  absl::MutexLock lock(&mu_);
  if (leadership_ && leadership_->revision == leadership.revision) return;  // told twice
  leadership_ = leadership;
  ++term_;
  state_ = State::kTakingOver;
  gained_at_ = clock_.Now();
  revisit_ = false;
  LOG(INFO) << "SMM replica " << options_.replica_id << " leads (fencing token "
            << leadership.revision << "); taking over";
}

void ReplicaRole::OnLost(const store::Leadership& leadership, const absl::Status& why) {
  uint64_t term;
  {
    absl::MutexLock lock(&mu_);
    if (!leadership_ || leadership_->revision != leadership.revision) return;
    leadership_.reset();
    state_ = State::kStandby;
    term = term_;
  }
  LOG(WARNING) << "SMM replica " << options_.replica_id << " no longer leads (fencing token "
               << leadership.revision << "): " << why;
  duties_.StepDown(term);
}

absl::Status ReplicaRole::CheckMutable() const {
  std::optional<store::Leadership> ours;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::UnavailableError(absl::StrCat("this SMM replica (", options_.replica_id,
                                                 ") is shutting down; retry at another"));
    }
    if (state_ == State::kTakingOver) {
      return absl::UnavailableError(absl::StrCat(
          "this SMM replica (", options_.replica_id, ") leads since ",
          absl::FormatDuration(clock_.Now() - gained_at_),
          " ago and is reconciling the journal with the edges; retry shortly"));
    }
    if (state_ == State::kServing) ours = leadership_;
  }
  // The election's own belief ends in time even when its events are late.
  std::optional<store::Leadership> now = election_.current();
  if (ours && now && now->revision == ours->revision) return absl::OkStatus();
  absl::StatusOr<std::optional<store::LeaderInfo>> leader = election_.Leader();
  if (leader.ok() && leader->has_value() && (*leader)->id != options_.replica_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("this SMM replica (", options_.replica_id,
                     ") is a standby: the leader is ", (*leader)->id, "; send changes there"));
  }
  return absl::UnavailableError(absl::StrCat(
      "no SMM replica leads now (this one, ", options_.replica_id, ", is a standby",
      leader.ok() ? "" : absl::StrCat("; the election cannot be read: ", leader.status().message()),
      "); retry shortly"));
}

bool ReplicaRole::Serving() const {
  std::optional<store::Leadership> ours;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kServing || stopping_) return false;
    ours = leadership_;
  }
  std::optional<store::Leadership> now = election_.current();
  return ours && now && now->revision == ours->revision;
}

bool ReplicaRole::AwaitServing(absl::Duration timeout) const {
  for (absl::Time end = absl::Now() + timeout;; absl::SleepFor(absl::Milliseconds(1))) {
    if (Serving()) return true;
    if (absl::Now() >= end) return false;
  }
}

bool ReplicaRole::Current(uint64_t term) const {
  absl::MutexLock lock(&mu_);
  return term_ == term && state_ != State::kStandby && !stopping_;
}

void ReplicaRole::RevisitSoon() {
  absl::MutexLock lock(&mu_);
  revisit_ = true;
}

void ReplicaRole::Chores() {
  absl::MutexLock lock(&mu_);
  uint64_t taken = 0;  // the last term taken over
  while (!stopping_) {
    if (state_ == State::kTakingOver && taken != term_) {
      const uint64_t term = taken = term_;
      const store::Leadership leadership = *leadership_;
      const absl::Time gained = gained_at_;
      mu_.Unlock();
      absl::StatusOr<bool> s = duties_.TakeOver(term, leadership);
      mu_.Lock();
      if (s.ok() && state_ == State::kTakingOver && term_ == term) {
        state_ = State::kServing;
        revisit_ = revisit_ || *s;
        const absl::Duration took = clock_.Now() - gained;
        if (metrics_) metrics_->takeover.Observe(absl::ToDoubleSeconds(took));
        LOG(INFO) << "SMM replica " << options_.replica_id << " serves as leader (fencing token "
                  << leadership.revision << "), " << absl::FormatDuration(took)
                  << " after gaining leadership";
      } else if (!s.ok() && term_ == term && !stopping_) {
        // The term goes on, so the takeover must be tried again, after a pause.
        LOG(WARNING) << "takeover failed, retrying in 1s: " << s.status();
        auto interrupted = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || term_ != term;
        };
        clock_.AwaitWithDeadline(mu_, absl::Condition(&interrupted), clock_.Now() + absl::Seconds(1));
        taken = 0;
      }
      continue;
    }
    if (state_ == State::kServing && revisit_) {
      const uint64_t term = term_;
      auto interrupted = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || term_ != term || state_ != State::kServing;
      };
      if (clock_.AwaitWithDeadline(mu_, absl::Condition(&interrupted),
                                   clock_.Now() + options_.revisit_every)) {
        continue;
      }
      revisit_ = false;
      const store::Leadership leadership = *leadership_;
      mu_.Unlock();
      const bool more = duties_.Revisit(term, leadership);
      mu_.Lock();
      if (more && term_ == term) revisit_ = true;
      continue;
    }
    auto work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (state_ == State::kTakingOver && taken != term_) ||
             (state_ == State::kServing && revisit_);
    };
    if (state_ == State::kServing && options_.audit_every != absl::InfiniteDuration()) {
      if (!clock_.AwaitWithDeadline(mu_, absl::Condition(&work),
                                    clock_.Now() + options_.audit_every) &&
          state_ == State::kServing) {
        revisit_ = true;  // an audit: a pass after revisit_every
      }
    } else {
      mu_.Await(absl::Condition(&work));
    }
  }
}

}  // namespace smig::migrator
