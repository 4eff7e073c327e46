#include "common/clock.h"

namespace smig {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  void SleepUntil(absl::Time deadline) override { absl::SleepFor(deadline - absl::Now()); }
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond,
                         absl::Time deadline) override {
    return mu.AwaitWithDeadline(cond, deadline);
  }
};

// How often a waiter on simulated time looks at the clock again, in real time.
constexpr absl::Duration kSimulatedPoll = absl::Microseconds(200);

}  // namespace

Clock& Clock::Real() {
  static RealClock* const clock = new RealClock();
  return *clock;
}

SimulatedClock::SimulatedClock(absl::Time start) : now_(start) {}

absl::Time SimulatedClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void SimulatedClock::SleepUntil(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  ++sleepers_;
  auto passed = [this, deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return now_ >= deadline; };
  mu_.Await(absl::Condition(&passed));
  --sleepers_;
}

bool SimulatedClock::AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond,
                                       absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    ++sleepers_;
  }
  bool met = false;
  while (!(met = mu.AwaitWithTimeout(cond, kSimulatedPoll)) && Now() < deadline) {
  }
  absl::MutexLock lock(&mu_);
  --sleepers_;
  return met;
}

void SimulatedClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  if (d > absl::ZeroDuration()) now_ += d;
}

void SimulatedClock::SetTime(absl::Time t) {
  absl::MutexLock lock(&mu_);
  if (t > now_) now_ = t;
}

bool SimulatedClock::AwaitSleepers(int n, absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sleepers_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), real_timeout);
}

}  // namespace smig
