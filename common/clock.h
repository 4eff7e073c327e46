// Clock: where smig's logic classes get the time, so tests can control it.
//
//   class Engine {
//    public:
//     explicit Engine(smig::Clock& clock = smig::Clock::Real()) : clock_(clock) {}
//     void Tick() { if (clock_.Now() >= next_) ...; }
//    private:
//     smig::Clock& clock_;
//   };
//
//   // In a test:
//   smig::SimulatedClock clock;
//   Engine engine(clock);
//   clock.Advance(absl::Seconds(10));   // instead of sleeping 10 s
//
// Lifetimes: Clock::Real() lives forever; a SimulatedClock must outlive everything that
// holds a reference to it. Both are thread-safe.
#pragma once

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace smig {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Returns once Now() >= deadline.
  virtual void SleepUntil(absl::Time deadline) = 0;
  void SleepFor(absl::Duration d) { SleepUntil(Now() + d); }
  // Waits, holding `mu` (which the caller has locked), until `cond` is true or Now() passes
  // `deadline`; returns whether `cond` holds. absl::Mutex::AwaitWithDeadline on this clock.
  virtual bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond,
                                 absl::Time deadline) = 0;

  // The system's clock (absl::Now, absl::SleepFor).
  static Clock& Real();
};

// A clock that moves only when told. Sleepers wake when Advance() passes their deadline,
// so a test of a timed loop runs in microseconds and cannot be flaky about timing.
class SimulatedClock final : public Clock {
 public:
  // Starts at `start` (by default an arbitrary fixed time, far from the epoch).
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000));

  absl::Time Now() const override;
  void SleepUntil(absl::Time deadline) override;
  bool AwaitWithDeadline(absl::Mutex& mu, const absl::Condition& cond,
                         absl::Time deadline) override;

  void Advance(absl::Duration d);
  void SetTime(absl::Time t);  // never backwards: an earlier `t` is ignored
  // Blocks (in real time, up to `real_timeout`) until at least `n` threads sleep on this
  // clock, so a test can advance time exactly when a loop has reached its wait. Returns
  // whether they did.
  bool AwaitSleepers(int n, absl::Duration real_timeout = absl::Seconds(10)) const;

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  int sleepers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace smig
