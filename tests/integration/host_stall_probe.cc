#include "tests/integration/host_stall_probe.h"

#include <algorithm>

namespace smig::testbed {

namespace {
constexpr absl::Duration kTick = absl::Milliseconds(1);
}  // namespace

HostStallProbe::HostStallProbe(absl::Duration threshold)
    : threshold_(threshold), thread_([this] { Run(); }) {}

HostStallProbe::~HostStallProbe() {
  stop_.store(true);
  thread_.join();
}

void HostStallProbe::Run() {
  while (!stop_.load()) {
    absl::Time due = absl::Now() + kTick;
    absl::SleepFor(kTick);
    absl::Time woke = absl::Now();
    if (woke - due > threshold_) {
      absl::MutexLock lock(&mu_);
      stalls_.push_back({due, woke});
    }
  }
}

std::vector<HostStallProbe::Stall> HostStallProbe::stalls() const {
  absl::MutexLock lock(&mu_);
  return stalls_;
}

absl::Duration HostStallProbe::StalledWithin(absl::Time from, absl::Time to) const {
  absl::MutexLock lock(&mu_);
  absl::Duration stalled = absl::ZeroDuration();
  for (const Stall& s : stalls_) {  // recorded in time order, never overlapping
    absl::Time a = std::max(from, s.from), b = std::min(to, s.to);
    if (a < b) stalled += b - a;
  }
  return stalled;
}

}  // namespace smig::testbed
