// PolicyStore: the MDM's policy in the control plane's store (etcd), shared by the MDM's
// replicas, and the gate that lets only the elected one act.
//
//   PolicyStore policy(engine, store, election,
//                      {.configured = config_policy, .replica_id = "mdm-a"});
//   policy.Start();                          // the stored policy is in force from here on
//   election.SetListener(policy.Listener()); // or ServiceStore::Start(policy.Listener())
//   AutoMigrator loop(engine, clients, {}, clock, [&policy] { return policy.MayAct(); });
//   absl::StatusOr<v1::Policy> p = policy.Update(new_policy);   // the UpdatePolicy RPC
//
// Where it lives: key "decision/policy" of the store (etcd "/smig/decision/policy" with the
// default prefix), as protobuf JSON with the proto's field names and every field printed,
// so that `etcdctl get /smig/decision/policy` reads like the config's "policy". Unknown
// fields are ignored when it is read (a newer replica may have written it during a rollout).
//
// Who writes it: the leader only, fenced by its leadership (a write that lands after the
// term ended is refused by the store). Update validates, then writes, then puts the policy
// in force, so a policy in force on the leader is always in the store and survives any
// restart. A replica that does not lead refuses: FAILED_PRECONDITION "not the leader: <id>
// leads; ...", or UNAVAILABLE when no leader is known (an election under way, the store
// unreachable). A store error leaves the policy as it was (UNAVAILABLE passes through).
//
// Reading it: Start() reads it once (blocking, up to the store's call timeout) and a thread
// reads it again every `poll` and at once on gaining leadership, putting a newer revision in
// force on every replica (standbys follow the leader within `poll`). When the store has no
// policy, the leader writes `configured` (what the config said); until a replica has read
// the store it serves the policy the engine had. A stored policy that cannot be read or
// fails validation (an edit by hand) is logged and not put in force, and a leader does not
// act until an UpdatePolicy replaces it.
//
// The gate: MayAct() is true while this replica leads (Election::current(), which ends the
// belief before another replica can lead) and has read the store during this term, so a new
// leader never acts on a policy older than the one its predecessor wrote.
//
// Thread-safe. The engine, store, election and clock must outlive it; Stop() (or the
// destructor) before they go. The listener it returns must not outlive it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/store/election.h"
#include "common/store/store.h"
#include "services/decision/decision_engine.h"

namespace smig::decision {

class PolicyStore {
 public:
  // The key, relative to the store's prefix.
  static constexpr char kKey[] = "decision/policy";

  struct Options {
    v1::Policy configured = DefaultPolicy();  // written when the store has no policy
    std::string replica_id;                   // this replica's id in the election
    absl::Duration poll = absl::Seconds(1);
  };

  PolicyStore(DecisionEngine& engine, store::Store& store, store::Election& election,
              Options options, Clock& clock = Clock::Real());
  ~PolicyStore();
  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // Reads the store once (an error is logged; the thread tries again), then starts the
  // thread. Once only.
  void Start();
  // Ends the thread. Idempotent.
  void Stop();

  // What the thread does every poll: reads the policy; puts a newer one in force; as the
  // leader, writes `configured` if there is none and notes that this term has read it.
  absl::Status Sync();

  // The UpdatePolicy RPC: INVALID_ARGUMENT for a bad policy (on any replica), then
  // FAILED_PRECONDITION / UNAVAILABLE if this replica does not lead, then the store's error
  // if the fenced write fails; otherwise the policy now in force.
  absl::StatusOr<v1::Policy> Update(v1::Policy policy);

  // Whether this replica may act now: it leads and has read the store in this term.
  bool MayAct() const;

  // Wakes the thread on gaining leadership, so that a new leader reads the store (and may
  // act) at once rather than at the next poll.
  store::Election::Listener Listener();

 private:
  void Run();
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; }
  absl::Status SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Why this replica may not write: who leads instead, or that nobody is known to.
  absl::Status NotLeader();
  absl::Status Apply(const store::Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  DecisionEngine& engine_;
  store::Store& store_;
  store::Election& election_;
  const Options options_;
  Clock& clock_;

  // Serializes writes and applications, so that the policy in force is the store's newest
  // one this replica has seen; held across a store call, never on the decision path.
  absl::Mutex write_mu_;
  int64_t applied_revision_ ABSL_GUARDED_BY(write_mu_) = 0;  // 0: the engine's own policy
  std::string last_problem_ ABSL_GUARDED_BY(write_mu_);      // logged once, not every poll
  // The term (its fencing revision) in which this replica last read the store; 0: none.
  std::atomic<int64_t> synced_term_ = 0;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace smig::decision
