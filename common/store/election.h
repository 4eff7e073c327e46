// Election: which replica of a control-plane service leads, and the fence its writes carry.
// The seam between a service and common/store/leader_election.h (etcd); tests use
// tests/fakes/memory_store.h's FakeElection.
//
//   void Serve(smig::store::Election& election, smig::store::Store& store) {
//     election.SetListener({.on_gained = [](const Leadership& l) { LOG(INFO) << "leading"; },
//                           .on_lost = [](const Leadership&, const absl::Status& why) {
//                             LOG(WARNING) << "no longer leading: " << why; }});
//     absl::StatusOr<Leadership> l = election.AwaitLeadership(absl::Seconds(5));
//     if (l.ok()) store.Put("journal/1", "...", l->fence());   // refused once deposed
//   }
//
// A leadership is a term: a replica that loses and regains leadership gets a new
// Leadership with a higher revision. At most one replica's current() is set at any time
// (leader_election.h says how etcd's leases make that true); even so, act on leadership
// through fenced writes, because a belief can be out of date by the time a write lands.
//
// Thread-safe. The listener's callbacks run on the election's own thread, one at a time and
// in order (gained, lost, gained, ...); they may call current(), IsLeader() and Resign(),
// but must not destroy the election.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/store/store.h"

namespace smig::store {

struct Leadership {
  std::string key;       // the leader's key (etcd: "<election name>/<lease id in hex>")
  int64_t revision = 0;  // the key's create revision: the fencing token, rising across terms
  int64_t lease = 0;     // the lease that holds the key (0 in fakes without leases)

  Fence fence() const { return Fence{key, revision}; }
  friend bool operator==(const Leadership&, const Leadership&) = default;
};

// Who leads an election, as anyone can see it.
struct LeaderInfo {
  std::string id;  // the value the leader campaigned with (its replica id)
  std::string key;
  int64_t revision = 0;

  friend bool operator==(const LeaderInfo&, const LeaderInfo&) = default;
};

class Election {
 public:
  struct Listener {
    std::function<void(const Leadership&)> on_gained;
    // `why` says what ended the term: resigned, lease lost or not renewed in time, key gone.
    std::function<void(const Leadership&, const absl::Status& why)> on_lost;
  };

  virtual ~Election() = default;

  // Replaces the listener; set it before the election starts so that no event is missed.
  virtual void SetListener(Listener listener) = 0;
  // This replica's leadership, or nullopt when it does not lead (now, by its clock).
  virtual std::optional<Leadership> current() const = 0;
  bool IsLeader() const { return current().has_value(); }
  // Waits until this replica leads; DEADLINE_EXCEEDED after `timeout`, CANCELLED if the
  // election stops meanwhile.
  virtual absl::StatusOr<Leadership> AwaitLeadership(absl::Duration timeout) = 0;
  // Who leads now (any replica), or nullopt if no one does; for status pages and metrics.
  virtual absl::StatusOr<std::optional<LeaderInfo>> Leader() = 0;
  // Gives leadership up at once, so that a standby takes over (OK if not leading). The
  // replica stays a candidate, behind those already waiting.
  virtual absl::Status Resign() = 0;
};

}  // namespace smig::store
