#include "dataplane/edge/edge_flow.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "dataplane/protocol/frame.h"

namespace smig::dataplane {

namespace {
// Frames before a live flow's checkpoint whose fingerprints the next edge looks for.
constexpr size_t kAlignFrames = 32;
}  // namespace

EdgeFlow::EdgeFlow(const v1::FlowState& state, std::unique_ptr<media::Source> source,
                   Limits limits)
    : state_(state),
      source_(std::move(source)),
      limits_(limits),
      fingerprints_(state.last_frame_fingerprints().begin(),
                    state.last_frame_fingerprints().end()),
      vehicle_next_(state.next_sequence()) {}

std::optional<std::string> EdgeFlow::Collect(absl::Time now, EdgeCounters& counters) {
  if (Held()) return std::nullopt;
  scratch_.clear();
  if (absl::Status st = source_->Poll(now, scratch_); !st.ok()) ++counters.send_errors;
  for (media::Chunk& c : scratch_) pending_.Push(std::move(c), now);
  if (source_->fd() < 0) return std::nullopt;  // time-driven: held above once full
  auto [frames, bytes] = pending_.DropOldestOver(limits_.max_queued_bytes);
  if (frames == 0) return std::nullopt;
  dropped_ += frames;
  counters.queued_frames_dropped += frames;
  if (dropping_) return std::nullopt;
  dropping_ = true;
  return absl::StrCat("flow ", state_.flow_id(), ": the vehicle takes nothing and ",
                      pending_.bytes(), " bytes of live media are queued (max_queued_bytes ",
                      limits_.max_queued_bytes, "): dropping the oldest (", bytes,
                      " bytes so far) until it takes frames again");
}

absl::Status EdgeFlow::Send(RedundantLink& link, uint64_t session, EdgeCounters& counters) {
  while (!pending_.empty()) {
    const media::Chunk& c = pending_.front().chunk;
    if (vehicle_reported_ && state_.next_sequence() < vehicle_next_) {
      // The vehicle already has this frame (another edge sent it): numbered, not sent. A
      // new edge thus starts at the player's position, not at the older checkpoint.
      Advance(c, pending_.front().at);
      ++counters.frames_skipped;
      pending_.pop_front();
      continue;
    }
    FrameHeader h{.kind = FrameKind::kData,
                  .flow_id = static_cast<uint16_t>(state_.flow_id()),
                  .flags = static_cast<uint16_t>(c.end_of_flow ? kFlagEndOfFlow : 0),
                  .session_id = session,
                  .sequence = state_.next_sequence(),
                  .source_offset = c.offset};
    const uint64_t copied = link.redundant_bytes();
    absl::Status st = link.SendData(h.flow_id, EncodeFrame(h, c.data), c.data.size());
    counters.redundant_bytes += link.redundant_bytes() - copied;
    if (absl::IsUnavailable(st)) ++counters.send_deferrals;  // full send buffer: stays queued
    // Otherwise it stays queued too: retried on the next Pump, or sent on the next
    // association (which serves again from the vehicle's position anyway).
    if (!st.ok()) return st;
    Advance(c, pending_.front().at);
    ++frames_;
    bytes_ += c.data.size();
    ++counters.frames_sent;
    counters.bytes_sent += c.data.size();
    pending_.pop_front();
  }
  dropping_ = false;  // the vehicle took every queued frame
  return absl::OkStatus();
}

void EdgeFlow::Advance(const media::Chunk& c, absl::Time due) {
  history_.push_back({state_.next_sequence(), c.offset, due});
  if (history_.size() > limits_.sent_history) history_.pop_front();
  if (c.fingerprint != 0) {
    fingerprints_.push_back(c.fingerprint);
    if (fingerprints_.size() > limits_.sent_history) fingerprints_.pop_front();
  }
  state_.set_next_sequence(state_.next_sequence() + 1);
  state_.set_source_offset(c.offset + c.data.size());
}

void EdgeFlow::OnVehicleAt(uint64_t next_sequence, bool hello_ack, absl::Time now,
                           const Opener& open, EdgeCounters& counters) {
  // A new association's HELLO answer: what went out on a lost one may never have
  // arrived. Send again from where the player is.
  if (hello_ack && next_sequence < state_.next_sequence()) {
    Rewind(next_sequence, now, open, counters);
  }
  vehicle_next_ = next_sequence;
  vehicle_reported_ = true;
}

uint64_t EdgeFlow::Position() const {
  // Send skips every frame below what the vehicle reported having, so the next frame on
  // the wire is at least that far, whether or not the source has one due.
  return vehicle_reported_ ? std::max(state_.next_sequence(), vehicle_next_)
                           : state_.next_sequence();
}

absl::StatusOr<v1::FlowState> EdgeFlow::CheckpointAtVehicle(absl::Time now) const {
  return Checkpoint(vehicle_reported_ ? vehicle_next_ : state_.next_sequence(), now);
}

absl::StatusOr<v1::FlowState> EdgeFlow::Checkpoint(uint64_t want, absl::Time now) const {
  v1::FlowState fs = state_;
  // At `want` when this edge still knows where that frame was; otherwise at the oldest
  // frame it remembers (duplicates, never holes).
  if (want >= state_.next_sequence() || history_.empty()) {
    *fs.mutable_checkpoint_due_at() = ToProtoTimestamp(now);
  } else {
    // The newest sent frame at or before `want` (history is in sequence order).
    auto after = std::upper_bound(
        history_.begin(), history_.end(), want,
        [](uint64_t seq, const Sent& sent) { return seq < sent.sequence; });
    const Sent* at = after == history_.begin() ? &history_.front() : &*std::prev(after);
    fs.set_next_sequence(at->sequence);
    fs.set_source_offset(at->offset);
    *fs.mutable_checkpoint_due_at() = ToProtoTimestamp(at->due);
  }
  fs.clear_last_frame_fingerprints();
  if (!source_->ResumesByFingerprint()) return fs;
  // The fingerprints of the kAlignFrames frames before the checkpoint, as far as known.
  const uint64_t checkpoint = fs.next_sequence();
  const uint64_t first = state_.next_sequence() - fingerprints_.size();
  for (uint64_t seq = std::max(first, checkpoint - std::min<uint64_t>(checkpoint, kAlignFrames));
       seq < checkpoint; ++seq) {
    fs.add_last_frame_fingerprints(fingerprints_[seq - first]);
  }
  if (fs.last_frame_fingerprints().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "flow ", fs.flow_id(), " of live feed '", fs.source().live_feed(),
        "' has no frame before its checkpoint to find it by"));
  }
  return fs;
}

void EdgeFlow::Rewind(uint64_t want, absl::Time now, const Opener& open,
                      EdgeCounters& counters) {
  // A source that cannot serve again goes on (the vehicle counts the hole).
  if (!source_->CanResume()) return;
  if (history_.empty() || want >= state_.next_sequence()) return;
  // The newest sent frame at or before `want` (history is in sequence order), or the
  // oldest one remembered (duplicates, never holes, as far as history reaches).
  auto after = std::upper_bound(
      history_.begin(), history_.end(), want,
      [](uint64_t seq, const Sent& sent) { return seq < sent.sequence; });
  const Sent at = after == history_.begin() ? history_.front() : *std::prev(after);
  if (at.sequence >= state_.next_sequence()) return;
  // On the same source where it can (a UDP feed of the flow's own: no second socket can
  // bind its port, but its ring still holds the datagrams), else on a new one opened at
  // the checkpoint (a file, a cursor on a standing feed).
  absl::Status in_place = source_->SeekTo(at.offset);
  if (absl::IsUnimplemented(in_place)) {
    absl::StatusOr<v1::FlowState> fs = Checkpoint(want, now);
    absl::StatusOr<std::unique_ptr<media::Source>> source =
        fs.ok() ? open(*fs, now) : fs.status();
    in_place = source.status();
    if (source.ok()) source_ = std::move(*source);
  }
  if (!in_place.ok()) {
    ++counters.send_errors;
    LOG(WARNING) << "flow " << state_.flow_id() << ": cannot serve again from sequence "
                 << at.sequence << " (" << in_place << "); going on from "
                 << state_.next_sequence();
    return;
  }
  const uint64_t again = state_.next_sequence() - at.sequence;
  while (!history_.empty() && history_.back().sequence >= at.sequence) history_.pop_back();
  fingerprints_.resize(fingerprints_.size() - std::min<size_t>(again, fingerprints_.size()));
  pending_.clear();
  state_.set_next_sequence(at.sequence);
  state_.set_source_offset(at.offset);
  *state_.mutable_checkpoint_due_at() = ToProtoTimestamp(at.due);
  state_.clear_last_frame_fingerprints();
  counters.frames_resent += again;
}

void EdgeFlow::Describe(v1::FlowStatus& out) const {
  out.set_flow_id(state_.flow_id());
  out.set_next_sequence(state_.next_sequence());
  out.set_source_offset(state_.source_offset());
  out.set_frames(frames_);
  out.set_bytes(bytes_);
  out.set_queued_frames(pending_.size());
  out.set_queued_bytes(pending_.bytes());
  out.set_queued_frames_dropped(dropped_);
}

}  // namespace smig::dataplane
