#ifndef SMIG_TESTS_INTEGRATION_HOST_STALL_PROBE_H_
#define SMIG_TESTS_INTEGRATION_HOST_STALL_PROBE_H_

#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace smig::testbed {

// Measures the host, not smig: a thread that sleeps 1 ms at a time and records every
// stretch in which it could not run (woke more than `threshold` late). On a shared
// virtual machine the whole guest is sometimes not scheduled for 10-40 ms; the data plane's
// processes stall then too, and a player gap in such a stretch is the host's. Measured on
// this machine: the player's steady-state gaps of 14-32 ms fell at the instants a probe in
// another process overslept by 14-20 ms, and the daemons counted 0 retransmissions.
class HostStallProbe {
 public:
  struct Stall {
    absl::Time from, to;  // when the thread should have woken, and when it did
  };
  explicit HostStallProbe(absl::Duration threshold = absl::Milliseconds(2));
  ~HostStallProbe();
  HostStallProbe(const HostStallProbe&) = delete;
  HostStallProbe& operator=(const HostStallProbe&) = delete;

  std::vector<Stall> stalls() const;
  // How much of [from, to] the host spent in recorded stalls.
  absl::Duration StalledWithin(absl::Time from, absl::Time to) const;

 private:
  void Run();

  const absl::Duration threshold_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::vector<Stall> stalls_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace smig::testbed

#endif  // SMIG_TESTS_INTEGRATION_HOST_STALL_PROBE_H_
