// FlowReassembler: hands one flow's frames to the player exactly once and in sequence
// order, whichever association (old edge, new edge, any radio) brought each of them.
//
//   FlowReassembler r({.first_sequence = 0});
//   std::vector<std::string> ready;
//   r.Offer(seq, payload, absl::Now(), ready);   // appends what became deliverable, in order
//
// The reorder buffer is bounded (frames and bytes). A frame that does not fit is dropped
// and counted as overflow: the edges re-send from the vehicle's reported position, so an
// overflow costs time, not data. Not thread-safe: one flow, one owner.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace smig::dataplane {

class FlowReassembler {
 public:
  struct Options {
    uint64_t first_sequence = 0;
    size_t max_buffered_frames = 8192;
    size_t max_buffered_bytes = 32 << 20;
    // A pause in delivery longer than this counts as a stall.
    absl::Duration stall_threshold = absl::Milliseconds(100);
  };
  struct Stats {
    uint64_t delivered_frames = 0;
    uint64_t delivered_bytes = 0;
    uint64_t duplicates = 0;     // frames already delivered or already buffered
    uint64_t overflow_drops = 0;  // frames the bounded buffer could not take
    uint64_t gaps = 0;            // frames that arrived while their predecessor was missing
    uint64_t stalls = 0;          // delivery pauses longer than stall_threshold
    absl::Duration max_delivery_gap = absl::ZeroDuration();
  };
  enum class Verdict { kDelivered, kBuffered, kDuplicate, kOverflow };

  explicit FlowReassembler(Options options);

  // Takes one frame. Appends every payload that is now deliverable, in order, to `out`.
  Verdict Offer(uint64_t sequence, absl::string_view payload, absl::Time now,
                std::vector<std::string>& out);

  // The largest delivery pause since the last call to StartWindow(): what a migration
  // cost the player when the window opens as the migration starts.
  void StartWindow() { window_max_gap_ = absl::ZeroDuration(); }
  absl::Duration window_max_gap() const { return window_max_gap_; }

  uint64_t next_sequence() const { return next_; }
  // When the last payload was delivered; nullopt before the first.
  std::optional<absl::Time> last_delivery() const {
    return delivered_any_ ? std::optional<absl::Time>(last_delivery_) : std::nullopt;
  }
  size_t buffered_frames() const { return buffer_.size(); }
  size_t buffered_bytes() const { return buffered_bytes_; }
  const Stats& stats() const { return stats_; }

 private:
  void Deliver(std::string payload, absl::Time now, std::vector<std::string>& out);

  Options options_;
  uint64_t next_;
  std::map<uint64_t, std::string> buffer_;  // sequence -> payload, all > next_
  size_t buffered_bytes_ = 0;
  bool delivered_any_ = false;
  absl::Time last_delivery_;
  absl::Duration window_max_gap_ = absl::ZeroDuration();
  Stats stats_;
};

}  // namespace smig::dataplane
