// FencingGate: the agent's half of SMM leader fencing. The SMM leader stamps the calls
// that change what an edge serves (OpenSession, ImportState, ReleaseSession) with its
// fencing token, the etcd create revision of its leader key, which grows with every new
// leader. The gate remembers the highest token it has let through and refuses any lower
// one: that call comes from a deposed leader that has not noticed yet, and must change
// nothing.
//
//   FencingGate gate;
//   gate.Admit(57);                      // OK: 57 is now the highest
//   gate.Admit(57);                      // OK: the same leader again
//   absl::Status s = gate.Admit(41);     // FAILED_PRECONDITION:
//                                        //   "fenced: token 41 is older than 57: a newer SMM leader acts"
//   gate.Admit(0);                       // OK: unfenced (tools, a single SMM without a store)
//   gate.highest();                      // 57
//
// Token 0 is "unfenced": always admitted, it leaves the highest as it is. A token is
// admitted before the call it guards runs, and stays the highest whether that call then
// succeeds or not (the newer leader has acted either way). The gate checks and raises in
// one step, but it does not order the calls it guards: the caller admits and acts under
// one serialization (DataplaneNode does both on its loop thread), or two leaders' calls
// could be admitted in one order and act in the other.
//
// Thread-safe. The highest token lives only in memory: a restarted agent starts at 0,
// with no sessions either.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace smig::dataplane {

class FencingGate {
 public:
  static constexpr uint64_t kUnfenced = 0;

  // OK for kUnfenced or a token >= highest() (which it becomes); FAILED_PRECONDITION
  // naming both tokens for a lower one, which changes nothing.
  absl::Status Admit(uint64_t token);
  uint64_t highest() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t highest_ ABSL_GUARDED_BY(mu_) = kUnfenced;
};

}  // namespace smig::dataplane
