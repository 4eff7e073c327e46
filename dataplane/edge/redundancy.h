// Redundancy: for one session association, whether the edge sends each data frame twice,
// on two paths of the vehicle's multi-homed association, and on which. The vehicle keeps
// each frame once (FlowReassembler), so a path that dies costs the player no gap as long
// as the other copy's path lives.
//
//   Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
//   r.OnSample(endpoint.GetAssociation(assoc).value(), now);   // every kSampleInterval
//   r.OnEvent(path_event, now);                                  // PATH_*, PRIMARY_CHANGED
//   if (std::optional<Redundancy::Plan> p = r.Decide(now)) {
//     send(frame, {.stream = data_stream, .path = p->first});
//     send(frame, {.stream = copy_stream, .path = p->second});
//   } else {
//     send(frame, {.stream = data_stream});                       // the stack's choice
//   }
//
// Policies (smig.dataplane.v1.RedundancyPolicy):
//  - OFF: never.
//  - ALWAYS: whenever two paths are active (not known dead: not PF, unreachable or
//    unconfirmed).
//  - AUTO (also for UNSPECIFIED): while two paths are active and the carrying path (the
//    one the stack sends new data on: the primary while it is active, else the first
//    active path, as transport::PathTable attributes sends) is in trouble, and for
//    Tuning::hold after its last trouble. Trouble is any of
//      * a failure: the path went from active to potentially failed or unreachable (an
//        event or a sample showing it), or its RTO stands at rto_factor x its minimum over
//        the last baseline_window (the stack backed off after a retransmission timeout);
//      * its srtt above both srtt_factor x and srtt_margin over its minimum over the last
//        baseline_window;
//      * flapping: flap_count failures within flap_window (trouble for as long as that
//        holds).
//    A path's minimum starts from its first sample with a measured srtt (non-zero), so a
//    slow start is never mistaken for a rise; a path that stays slow becomes its own
//    baseline after baseline_window.
// The copies go to `first`, the carrying path, and `second`, the best other active path:
// one without trouble before one with, then the lowest srtt, then address order. Both are
// named (SendOptions::path): with only the copy named, usrsctp would keep unnamed data for
// a silently dead primary at the head of its send queue and hold back the copy too.
//
// Time comes from the caller (`now`), as in the engines, so tests drive it. Not
// thread-safe: the edge's loop owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "smig/dataplane/v1/session.pb.h"
#include "smig/transport/v1/transport.pb.h"

namespace smig::dataplane {

class Redundancy {
 public:
  struct Tuning {
    // AUTO keeps duplicating this long after the carrying path's last trouble.
    absl::Duration hold = absl::Seconds(5);
    // The "recent minimum" of a path's srtt and RTO is taken over this window.
    absl::Duration baseline_window = absl::Seconds(10);
    double srtt_factor = 2.0;
    absl::Duration srtt_margin = absl::Milliseconds(20);
    double rto_factor = 2.0;
    absl::Duration flap_window = absl::Seconds(30);
    int flap_count = 2;
  };
  // How often the owner should feed GetAssociation() samples (the fast profile's
  // heartbeat interval: srtt and RTO do not move faster).
  static constexpr absl::Duration kSampleInterval = absl::Milliseconds(100);

  struct Plan {
    std::string first, second;  // peer addresses, "ip:port"
  };

  explicit Redundancy(v1::RedundancyPolicy policy);
  Redundancy(v1::RedundancyPolicy policy, Tuning tuning);

  // The policy applied: UNSPECIFIED reads as AUTO.
  v1::RedundancyPolicy policy() const { return policy_; }
  // Forgets every path: a new association.
  void Reset();
  void OnEvent(const transport::v1::Event& e, absl::Time now);
  void OnSample(const transport::v1::AssociationInfo& info, absl::Time now);
  // nullopt: send once, where the stack chooses.
  std::optional<Plan> Decide(absl::Time now);
  // The path the stack sends new data on (see above), or nullopt if none is active.
  std::optional<std::string> carrying() const;
  // Whether `address` is a path reported active.
  bool active(const std::string& address) const;
  // The path's last sampled retransmission timeout (zero if none was sampled).
  absl::Duration rto(const std::string& address) const;
  // As of the last Decide().
  bool duplicating() const { return duplicating_; }
  // Why the last Decide() duplicated or not, in words (for logs and the agent API).
  const std::string& reason() const { return reason_; }

 private:
  // A sliding minimum over Tuning::baseline_window (monotonic deque).
  class WindowMin {
   public:
    void Add(absl::Time at, double value, absl::Duration window);
    std::optional<double> min() const;

   private:
    std::deque<std::pair<absl::Time, double>> samples_;
  };
  struct Path {
    transport::v1::PathState state = transport::v1::PATH_STATE_UNSPECIFIED;
    double srtt_ms = 0;
    uint32_t rto_ms = 0;
    WindowMin srtt_min, rto_min;
    std::deque<absl::Time> failures;  // within flap_window
    std::optional<absl::Time> last_trouble;
    std::string trouble;  // what it was, in words
  };

  static bool Active(const Path& p) { return p.state == transport::v1::PATH_STATE_ACTIVE; }
  // Applies a state as seen at `now`: a step from active down is a failure.
  void SetState(const std::string& address, transport::v1::PathState state, absl::Time now);
  void Trouble(Path& p, absl::Time now, std::string what);
  // The path the stack sends new data on; null if none is active.
  const std::string* Carrying() const;
  // Whether `p` is in trouble at `now` (flapping included) or was within `hold`.
  bool Troubled(const Path& p, absl::Time now) const;

  v1::RedundancyPolicy policy_;
  Tuning tuning_;
  std::map<std::string, Path> paths_;  // by address; ordered
  std::string primary_;
  bool duplicating_ = false;
  std::string reason_;
};

}  // namespace smig::dataplane
