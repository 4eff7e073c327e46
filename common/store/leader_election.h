// LeaderElection: the Election (common/store/election.h) of etcd v3, by lease and etcd's
// Election service. Each replica of a control-plane service runs one.
//
//   absl::StatusOr<std::unique_ptr<LeaderElection>> e = LeaderElection::Create({
//       .endpoints = {"127.0.0.1:2379"},
//       .name = "/smig/leader/migrator",
//       .id = "smm-0 10.0.0.5:50053",
//   });
//   (*e)->SetListener({.on_gained = ..., .on_lost = ...});
//   (*e)->Start();                                   // returns at once
//   if (auto l = (*e)->current()) store.Put("journal/1", j, l->fence());
//   (*e)->Resign();                                   // a standby takes over at once
//   e->reset();                                       // Stop(): resigns and stops
//
// How it works. A background thread grants a lease (`ttl`, default 1 s) and campaigns with
// it (etcd's Election.Campaign: the candidate's key "<name>/<lease hex>" is attached to the
// lease, and the candidate whose key has the lowest create revision leads). A second thread
// renews the lease every ttl/3 on a LeaseKeepAlive stream. The leader's key's create
// revision is the fencing token (Leadership::revision): etcd's revisions only grow, so
// every later term has a higher one. After losing a term the lease is revoked and the
// thread campaigns again with a new one.
//
// At most one leader. etcd deletes the leader's key when its lease has not been renewed for
// a TTL, counted from when etcd received the last keepalive, which is after this replica
// sent it. So this replica believes it leads only until (send time of the last confirmed
// renewal) + TTL - `safety_margin`, by its clock: current() and IsLeader() check that
// deadline themselves, so the belief ends in time even if every thread is stuck. A standby
// is told it leads only after the key is gone. The term ends (on_lost) when:
//   - a renewal was not confirmed in time (etcd unreachable, slow, or restarting);
//   - etcd answers that the lease is gone (expired or revoked);
//   - the leader key is gone or was recreated (checked every ttl/3 while leading);
//   - Resign() or Stop().
//
// Takeover. If the leader dies without resigning (kill -9), etcd expires its lease at most
// TTL after its last renewal, plus etcd's expiry check (every 500 ms), and the standby's
// Campaign returns: with ttl 1 s, within 1.5 s of the death. Resign() and Stop() revoke the
// lease, so a standby leads within a round trip.
//
// etcd's minimum TTL. etcd raises every lease's TTL to ceil(1.5 x election timeout) in whole
// seconds: 2 s with its defaults (--heartbeat-interval=100 --election-timeout=1000). For
// ttl = 1 s, run etcd with --heartbeat-interval=50 --election-timeout=500 (as the tests and
// the demo do). The TTL etcd grants is the one used, and a raised TTL is logged.
//
// Threads: two of its own while started. Callbacks run on the campaign thread. Thread-safe;
// the clock must outlive the election.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/store/election.h"
#include "common/store/etcd_client.h"

namespace smig::store {

class LeaderElection final : public Election {
 public:
  struct Options {
    std::vector<std::string> endpoints;  // host:port of etcd members (client URLs)
    std::string name = "/smig/leader/migrator";  // the election's name (a raw etcd key prefix)
    std::string id;                      // this replica's id: the value Leader() shows
    absl::Duration ttl = absl::Seconds(1);  // whole seconds, >= 1 s
    // How much earlier than etcd could expire the lease this replica stops believing it
    // leads. 0 = ttl / 4. Must be less than ttl * 2 / 3 (the slack between renewals).
    absl::Duration safety_margin = absl::ZeroDuration();
    absl::Duration call_timeout = absl::Seconds(2);  // per unary call
    // The first pause before trying again after a failure; doubles up to ttl.
    absl::Duration retry = absl::Milliseconds(100);
  };

  // INVALID_ARGUMENT for options that break the rules above or lack endpoints or id.
  static absl::StatusOr<std::unique_ptr<LeaderElection>> Create(Options options,
                                                                Clock& clock = Clock::Real());
  // Stop().
  ~LeaderElection() override;

  // Starts campaigning (in the background; returns at once). Once only.
  void Start();
  // Gives up leadership (revoking the lease) and stops both threads; blocks until they have
  // ended, at most about call_timeout. Idempotent.
  void Stop();

  void SetListener(Listener listener) override;
  std::optional<Leadership> current() const override;
  absl::StatusOr<Leadership> AwaitLeadership(absl::Duration timeout) override;
  absl::StatusOr<std::optional<LeaderInfo>> Leader() override;
  absl::Status Resign() override;

  // A replica that dies: stops both threads without resigning or revoking, as kill -9 would
  // (the lease then expires at etcd after its TTL). For tests.
  void AbandonForTesting();
  // While set, this replica neither renews nor revokes its leases, as if etcd no longer
  // heard from it (a partition), while it goes on otherwise. For tests.
  void SilenceForTesting(bool silence);

 private:
  struct Lease {
    int64_t id = 0;
    absl::Duration ttl;
    absl::Time valid_until;  // the send time of the last confirmed renewal + ttl - margin
  };

  LeaderElection(Options options, Clock& clock);
  void Run();
  // One lease's life: campaign, lead, until the term or the lease ends; returns why, and
  // sets `led` if it led.
  absl::Status RunTerm(const Lease& lease, bool& led);
  absl::StatusOr<Leadership> Campaign(const Lease& lease);
  absl::Status Hold(const Leadership& leadership);
  void KeepAlive(int64_t lease, absl::Duration ttl);
  absl::StatusOr<Lease> Grant();
  absl::Status Revoke(int64_t lease);
  absl::StatusOr<std::optional<mvccpb::KeyValue>> ReadKey(const std::string& key,
                                                          absl::Duration timeout);
  // Waits (on the clock) until `stop()` holds or `until` passes.
  void WaitLocked(const std::function<bool()>& stop, absl::Time until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the current lease may still hold leadership: not stopping or resigning, not
  // gone at etcd, and renewed recently enough by the clock.
  bool LeaseAliveLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status WhyNotAliveLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock& clock_;
  EtcdClient etcd_;

  mutable absl::Mutex mu_;
  Listener listener_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  bool silenced_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Lease> lease_ ABSL_GUARDED_BY(mu_);
  absl::Status lease_gone_ ABSL_GUARDED_BY(mu_);  // set when etcd says the lease is gone
  bool resigned_ ABSL_GUARDED_BY(mu_) = false;    // Resign() ended this lease's term
  bool lease_over_ ABSL_GUARDED_BY(mu_) = false;  // the campaign thread ended this lease
  grpc::ClientContext* keepalive_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<Leadership> leadership_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace smig::store
