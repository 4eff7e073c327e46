// FrameQueue: one flow's frames at an edge that its source made due but that have not gone
// out yet (no association, no HelloAck yet, a full send buffer). They carry no sequence
// number until they are sent, so dropping one leaves no hole at the vehicle: a live
// player skips ahead, as it would after any outage.
//
//   FrameQueue q;
//   q.Push(std::move(chunk), now);
//   while (!q.empty() && Send(q.front().chunk)) q.pop_front();
//   auto [frames, bytes] = q.DropOldestOver(16 << 20);  // live: the newest 16 MiB stay
#pragma once

#include <cstdint>
#include <deque>
#include <utility>

#include "absl/time/time.h"
#include "dataplane/media/source.h"

namespace smig::dataplane {

class FrameQueue {
 public:
  struct Due {
    media::Chunk chunk;
    absl::Time at;  // when the source made it due
  };

  void Push(media::Chunk chunk, absl::Time at) {
    bytes_ += chunk.data.size();
    due_.push_back({std::move(chunk), at});
  }
  bool empty() const { return due_.empty(); }
  size_t size() const { return due_.size(); }
  uint64_t bytes() const { return bytes_; }
  const Due& front() const { return due_.front(); }
  void pop_front() {
    bytes_ -= due_.front().chunk.data.size();
    due_.pop_front();
  }
  void clear() {
    due_.clear();
    bytes_ = 0;
  }
  // Drops the oldest frames until at most `max_bytes` remain (the newest frame always
  // stays). Returns the frames and bytes dropped.
  std::pair<uint64_t, uint64_t> DropOldestOver(uint64_t max_bytes) {
    uint64_t frames = 0, bytes = bytes_;
    while (bytes_ > max_bytes && due_.size() > 1) {
      pop_front();
      ++frames;
    }
    return {frames, bytes - bytes_};
  }

 private:
  std::deque<Due> due_;
  uint64_t bytes_ = 0;
};

}  // namespace smig::dataplane
