// EdgeFlow: one flow of a session an edge serves. It owns the flow's media: the source,
// the frames due but not sent yet (FrameQueue, within max_queued_bytes), what was sent (to
// checkpoint at the vehicle's position, and to serve again after a reconnect lost frames)
// and where the vehicle's player is. EdgeEngine owns the session and its association, and
// hands each flow the session's RedundantLink to send on.
//
//   EdgeFlow f(state, std::move(source), {.sent_history = 16384, .max_queued_bytes = 16 << 20});
//   f.Collect(now, counters);                           // every Pump
//   absl::Status st = f.Send(link, session, counters);  // once the vehicle has answered
//   f.OnVehicleAt(next_sequence, /*hello_ack=*/true, now, open, counters);
//   absl::StatusOr<v1::FlowState> checkpoint = f.CheckpointAtVehicle(now);
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dataplane/edge/frame_queue.h"
#include "dataplane/edge/redundant_link.h"
#include "dataplane/media/source.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/session.pb.h"

namespace smig::dataplane {

// What an edge counts over all its flows (EdgeEngine's accessors read them).
struct EdgeCounters {
  uint64_t frames_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t send_errors = 0;
  uint64_t send_deferrals = 0;
  uint64_t frames_skipped = 0;
  uint64_t frames_resent = 0;
  uint64_t queued_frames_dropped = 0;
  uint64_t redundant_bytes = 0;
};

class EdgeFlow {
 public:
  // Opens a source for a flow state: a cursor on a standing feed, or the edge's factory.
  using Opener = std::function<absl::StatusOr<std::unique_ptr<media::Source>>(
      const v1::FlowState& flow, absl::Time now)>;
  struct Limits {
    size_t sent_history;        // EdgeEngine::Options::sent_history
    uint64_t max_queued_bytes;  // EdgeEngine::Options::max_queued_bytes
  };

  EdgeFlow(const v1::FlowState& state, std::unique_ptr<media::Source> source, Limits limits);

  // Queues what the source made due, within max_queued_bytes: a time-driven source waits
  // while the queue is full; a live one drops the oldest queued frames. Returns the error
  // to report once per episode of drops, else nothing.
  std::optional<std::string> Collect(absl::Time now, EdgeCounters& counters);
  // Sends the queued frames on `link` (skipping those the vehicle has). OK once the queue
  // is empty; UNAVAILABLE when a send buffer is full (the rest stays queued, counted as a
  // deferral); another error from the link (the frame stays queued).
  absl::Status Send(RedundantLink& link, uint64_t session, EdgeCounters& counters);
  bool has_queued() const { return !pending_.empty(); }
  // When Collect has more to queue: InfiniteFuture for a live source (its fd says) or a
  // time-driven one waiting on a full queue.
  absl::Time NextDue() const { return Held() ? absl::InfiniteFuture() : source_->NextDue(); }
  int fd() const { return source_->fd(); }

  // The vehicle's answer (a HelloAck, or a Progress report): its player's next frame. A
  // HelloAck below what this edge sent means frames were lost with an association: serve
  // again from there, on this source or one `open` makes at the checkpoint.
  void OnVehicleAt(uint64_t next_sequence, bool hello_ack, absl::Time now, const Opener& open,
                   EdgeCounters& counters);
  // The next frame on the wire: past what the vehicle reported having.
  uint64_t Position() const;

  // The flow's state for serving it from the vehicle's position (or, before it reported,
  // this edge's), with a live flow's fingerprints; FAILED_PRECONDITION for a live flow
  // with no frame before the checkpoint.
  absl::StatusOr<v1::FlowState> CheckpointAtVehicle(absl::Time now) const;
  bool CanMove() const { return source_->CanMove(); }
  const v1::FlowState& state() const { return state_; }
  void Describe(v1::FlowStatus& out) const;

 private:
  struct Sent {
    uint64_t sequence;
    uint64_t offset;
    absl::Time due;  // when the source made it due: the stream's timeline
  };
  bool Held() const { return source_->fd() < 0 && pending_.bytes() >= limits_.max_queued_bytes; }
  // Serving it from `want` (or from the oldest frame remembered before it).
  absl::StatusOr<v1::FlowState> Checkpoint(uint64_t want, absl::Time now) const;
  void Rewind(uint64_t want, absl::Time now, const Opener& open, EdgeCounters& counters);
  // Moves past the next frame `c` (sent, or skipped because the vehicle has it).
  void Advance(const media::Chunk& c, absl::Time due);

  v1::FlowState state_;  // next_sequence/source_offset: the next frame to send
  std::unique_ptr<media::Source> source_;
  Limits limits_;
  FrameQueue pending_;
  std::vector<media::Chunk> scratch_;
  std::deque<Sent> history_;
  // Live: fingerprints of the frames before state_.next_sequence, oldest first (as many
  // as history holds; seeded from the imported checkpoint).
  std::deque<uint64_t> fingerprints_;
  uint64_t vehicle_next_ = 0;  // from HelloAck/Progress
  bool vehicle_reported_ = false;
  bool dropping_ = false;  // dropping queued live frames now (reported once per episode)
  uint64_t dropped_ = 0;   // queued live frames dropped, all episodes
  uint64_t frames_ = 0, bytes_ = 0;
};

}  // namespace smig::dataplane
