// ReplicaRole: one SMM replica's part in its election (common/store/election.h). It says
// whether this replica may change anything now (it leads, and has taken over) and what to
// tell a caller when not, and it runs the leader's chores on a thread of its own: taking
// over when a term begins, and looking again, now and then, at what the takeover could not
// settle.
//
//   class Engine : public ReplicaRole::Duties { ... };
//   ReplicaRole role(election, {.replica_id = "smm-0"}, engine, clock, registry);
//   role.Start();
//   election.SetListener(role.Listener());   // or ServiceStore::Start(role.Listener())
//   if (absl::Status s = role.CheckMutable(); !s.ok()) return s;
//   //   FAILED_PRECONDITION "this SMM replica (smm-0) is a standby: the leader is smm-1 ..."
//   //   UNAVAILABLE "... is taking over ..." or "no SMM replica leads now ..."
//   role.RevisitSoon();                      // something is left for a later pass
//
// A term: from on_gained to on_lost, numbered 1, 2, ... in this process. When one begins,
// the chores thread calls Duties::TakeOver; mutating calls are refused (UNAVAILABLE) until
// it returns OK, which is the takeover's duration (smig_takeover_duration_seconds, and a
// log line). When it ends, Duties::StepDown runs at once, on the election's thread. While
// the term serves and RevisitSoon() was called, Duties::Revisit runs every `revisit_every`
// (on the clock) until it reports nothing left; with `audit_every`, also once that long
// has passed with nothing left (an audit).
//
// The owner installs Listener() on the election (common/store/store_config.h's
// ServiceStore::Start adds the leader metrics on the way); the listener may outlive the
// role, and does nothing once the role has stopped.
//
// Thread-safe. `election`, `duties` and `clock` must outlive it. Stop() (and the
// destructor) stop the chores thread (Duties must make a TakeOver or Revisit in progress
// return when the term ends or the owner stops) and detach the listener; from then on
// CheckMutable says the replica is shutting down.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/store/election.h"

namespace prometheus {
class Registry;
}

namespace smig::migrator {

class ReplicaRole {
 public:
  class Duties {
   public:
    virtual ~Duties() = default;
    // Term `term` began: make memory and the edges agree. Returns once this replica may
    // serve changes, with whether something is left for a Revisit; an error means the term
    // (or the process) ended meanwhile, or the takeover must be tried again.
    virtual absl::StatusOr<bool> TakeOver(uint64_t term, const store::Leadership& leadership) = 0;
    // Term `term` ended: act no more. Runs on the election's thread; must not block.
    virtual void StepDown(uint64_t term) = 0;
    // A later pass in term `term`; returns whether something is still left for later.
    virtual bool Revisit(uint64_t term, const store::Leadership& leadership) = 0;
  };

  struct Options {
    std::string replica_id = "smm";  // this replica's name in messages
    absl::Duration revisit_every = absl::Seconds(5);
    // An audit: while serving with nothing left, a Revisit pass anyway after this long
    // (then revisit_every), so that what changed on the edges behind the leader's back (a
    // stray copy, a session on two edges) is found. Infinite: none.
    absl::Duration audit_every = absl::InfiniteDuration();
  };

  ReplicaRole(store::Election& election, Options options, Duties& duties, Clock& clock,
              prometheus::Registry* registry);
  ~ReplicaRole();

  // Starts the chores thread (and takes over at once if the election already leads). Once.
  void Start();
  // What the election must call: install it before the election starts.
  store::Election::Listener Listener();
  // Idempotent.
  void Stop();

  // OK while this replica leads and has taken over; else FAILED_PRECONDITION naming the
  // leader, or UNAVAILABLE when it is taking over or no leader is known.
  absl::Status CheckMutable() const;
  // The same as CheckMutable().ok(), without reading who leads.
  bool Serving() const;
  // Waits (in real time) until Serving(); false on timeout.
  bool AwaitServing(absl::Duration timeout) const;
  // Whether `term` is the current one and still serves (or is taking over).
  bool Current(uint64_t term) const;
  // Asks for a Revisit pass in revisit_every.
  void RevisitSoon();

 private:
  enum class State { kStandby, kTakingOver, kServing };
  struct Hooks;  // what the election's listener calls through, detachable
  struct Metrics;

  void OnGained(const store::Leadership& leadership);
  void OnLost(const store::Leadership& leadership, const absl::Status& why);
  void Chores();

  store::Election& election_;
  const Options options_;
  Duties& duties_;
  Clock& clock_;
  std::unique_ptr<Metrics> metrics_;
  std::shared_ptr<Hooks> hooks_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kStandby;
  uint64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<store::Leadership> leadership_ ABSL_GUARDED_BY(mu_);
  absl::Time gained_at_ ABSL_GUARDED_BY(mu_);
  bool revisit_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread chores_;
};

}  // namespace smig::migrator
