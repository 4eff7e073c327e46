#include "dataplane/vehicle/reassembler.h"

#include <algorithm>

namespace smig::dataplane {

FlowReassembler::FlowReassembler(Options options)
    : options_(options), next_(options.first_sequence) {}

void FlowReassembler::Deliver(std::string payload, absl::Time now, std::vector<std::string>& out) {
  if (delivered_any_) {
    absl::Duration gap = now - last_delivery_;
    stats_.max_delivery_gap = std::max(stats_.max_delivery_gap, gap);
    window_max_gap_ = std::max(window_max_gap_, gap);
    if (gap > options_.stall_threshold) ++stats_.stalls;
  }
  delivered_any_ = true;
  last_delivery_ = now;
  ++stats_.delivered_frames;
  stats_.delivered_bytes += payload.size();
  ++next_;
  out.push_back(std::move(payload));
}

FlowReassembler::Verdict FlowReassembler::Offer(uint64_t sequence, absl::string_view payload,
                                                absl::Time now, std::vector<std::string>& out) {
  if (sequence < next_ || buffer_.contains(sequence)) {
    ++stats_.duplicates;
    return Verdict::kDuplicate;
  }
  if (sequence > next_) {
    if (buffer_.size() >= options_.max_buffered_frames ||
        buffered_bytes_ + payload.size() > options_.max_buffered_bytes) {
      ++stats_.overflow_drops;
      return Verdict::kOverflow;
    }
    if (!buffer_.contains(sequence - 1)) ++stats_.gaps;  // its predecessor is missing
    buffered_bytes_ += payload.size();
    buffer_.emplace(sequence, std::string(payload));
    return Verdict::kBuffered;
  }
  Deliver(std::string(payload), now, out);
  while (!buffer_.empty() && buffer_.begin()->first == next_) {
    auto node = buffer_.extract(buffer_.begin());
    buffered_bytes_ -= node.mapped().size();
    Deliver(std::move(node.mapped()), now, out);
  }
  return Verdict::kDelivered;
}

}  // namespace smig::dataplane
