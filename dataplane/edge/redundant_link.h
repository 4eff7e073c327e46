// RedundantLink: how one session's DATA frames leave the edge over its association to the
// vehicle. Once, where the stack chooses; or, while its Redundancy decides so, twice: on
// the flow's two lanes, its data stream and its copy stream (CopyStream,
// dataplane/protocol/frame.h), each named for one of the two paths, so that neither copy
// waits behind the other. A lane keeps the path it had (the copies are not swapped between
// lanes), and a single copy goes on the lane already on the path that carries the data:
// after the death of a path, new frames never queue behind that path's frames, which SCTP
// still holds for retransmission on the stream they took. It feeds the decision with the
// association's path events and a GetAssociation() sample every
// Redundancy::kSampleInterval, and counts what the second copies cost. While it
// duplicates, it sends a heartbeat on each of the two paths every sample or RTO, whichever
// is longer: a path that carries data gets no heartbeat from the stack, and the kernel
// repairs a dead path's losses by fast retransmission on the other path, so without them
// a path that died under the copies was never found (seen in the VM: "two copies" for
// 7 s after the vehicle's radio went dark).
//
//   RedundantLink link(endpoint, session_id, state.redundancy());
//   link.Attach(assoc, up_event.streams_out(), now);        // EVENT_TYPE_ASSOC_UP
//   link.OnEvent(path_event, now);                          // PATH_*, PRIMARY_CHANGED
//   link.Tick(now);                                         // every loop turn
//   absl::Status s = link.SendData(flow, EncodeFrame(h, payload), payload.size());
//
// Catching up: when it starts to duplicate, what went once in the last RTO of its path
// plus a sample (at most kCatchUpMax) may still be held on a path now in doubt, which
// SCTP would resend only after its next timeouts (on the userland stack two, 150 ms and
// more, while the vehicle holds every later frame to keep the order). Those frames are
// sent again at once on the other path, on its lane; the vehicle keeps each byte once.
// Seen on the city trace: a dsrc that died as the car left its range cost the player
// 151-195 ms, with the copies starting at its first timeout.
//
// Flows without a copy stream (ids from 7 on with the default 16 streams) go once even
// while the session duplicates. Not thread-safe: the edge's loop owns it; `endpoint` must
// outlive it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/edge/redundancy.h"
#include "dataplane/transport/endpoint.h"

namespace smig::dataplane {

class RedundantLink {
 public:
  RedundantLink(transport::Endpoint& endpoint, uint64_t session, v1::RedundancyPolicy policy);

  // A new association is up: forgets the old one's paths and samples this one.
  void Attach(transport::AssocId assoc, uint32_t streams_out, absl::Time now);
  void Detach();
  // A path event of the attached association.
  void OnEvent(const transport::v1::Event& e, absl::Time now);
  // Samples the association when due and decides again.
  void Tick(absl::Time now);

  // Sends one DATA frame of `flow` (`payload_bytes` of it media). Returns the first copy's
  // status: UNAVAILABLE for a full send buffer (the caller keeps the frame queued). The
  // second copy is best effort: one that cannot go is left out and counted.
  absl::Status SendData(uint32_t flow, absl::string_view frame, size_t payload_bytes);

  v1::RedundancyPolicy policy() const { return redundancy_.policy(); }
  bool duplicating() const { return plan_.has_value(); }
  const std::string& reason() const { return redundancy_.reason(); }
  // Media bytes sent as second copies: what redundancy cost (SCTP's own overhead aside),
  // catching up included.
  uint64_t redundant_bytes() const { return redundant_bytes_; }
  // Frames sent again when the copies started (see "Catching up" above).
  uint64_t frames_caught_up() const { return frames_caught_up_; }

  // The most a catch-up resends: the fast profile's largest RTO (300 ms) and a sample.
  static constexpr absl::Duration kCatchUpMax = absl::Milliseconds(400);
  // Second copies that could not be sent (full buffer, path gone).
  uint64_t copies_dropped() const { return copies_dropped_; }

 private:
  void Decide(absl::Time now);
  // Heartbeats on the plan's two paths, each when due.
  void Probe(const transport::v1::AssociationInfo& info, absl::Time now);
  absl::Status Send(uint16_t stream, const std::string& path, absl::string_view frame);
  // The lane for a single copy: the one whose path carries the data now, else one whose
  // path is active, else the data stream.
  int SingleLane() const;
  // The plan's path for each lane: each lane keeps the path it had.
  std::array<std::string, 2> PlanLanes() const;
  // Keeps a frame that went once, for a catch-up; forgets those past kCatchUpMax.
  void Remember(uint32_t flow, absl::string_view frame, size_t payload_bytes, int lane);
  // The copies just started: resends the remembered frames that may be held on a path in
  // doubt on the other path.
  void CatchUp();

  transport::Endpoint& endpoint_;
  const uint64_t session_;
  Redundancy redundancy_;
  std::optional<transport::AssocId> assoc_;
  uint32_t streams_out_ = 0;
  absl::Time next_sample_ = absl::InfinitePast();
  std::optional<Redundancy::Plan> plan_;
  // The path each lane (0: data streams, 1: copy streams) last went to; "" if unknown.
  std::array<std::string, 2> lane_path_;
  std::map<std::string, absl::Time> probe_due_;  // by path: the next heartbeat
  uint64_t redundant_bytes_ = 0;
  uint64_t copies_dropped_ = 0;
  uint64_t frames_caught_up_ = 0;
  // The latest time the loop gave (Attach, OnEvent, Tick): when a frame was sent.
  absl::Time now_ = absl::InfinitePast();
  struct Sent {
    absl::Time at;
    uint32_t flow = 0;
    size_t payload_bytes = 0;
    std::string path;  // where its lane went; "" if unknown
    std::string frame;
  };
  std::deque<Sent> recent_;          // went once, newest last
  std::vector<std::string> spare_;   // buffers of forgotten frames, reused
};

}  // namespace smig::dataplane
