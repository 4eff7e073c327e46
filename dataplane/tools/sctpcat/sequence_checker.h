// Numbered messages for measuring a transport: each carries a 20-byte header (magic "SMGN",
// sequence number and send time, both big-endian) and filler. SequenceChecker follows a stream of them
// and says what was lost, repeated, reordered and how long delivery paused.
//
//   std::string m = MakeNumberedMessage(seq, absl::Now(), 1000);
//   SequenceChecker checker;
//   checker.Observe(m, absl::Now());
//   checker.Fill(summary);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "smig/transport/v1/sctpcat.pb.h"

namespace smig::sctpcat {

constexpr size_t kNumberedHeaderSize = 20;
// Delivery pauses longer than this are listed one by one in the summary.
constexpr absl::Duration kStallThreshold = absl::Milliseconds(10);

// `size` is clamped up to the header size.
std::string MakeNumberedMessage(uint64_t sequence, absl::Time sent_at, size_t size);

class SequenceChecker {
 public:
  // False (and nothing counted) for a payload that is not a numbered message.
  bool Observe(absl::string_view payload, absl::Time received_at);
  void Fill(transport::v1::CatSummary& summary) const;

 private:
  std::vector<bool> seen_;
  uint64_t unique_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t highest_ = 0;
  bool any_ = false;
  absl::Time last_delivery_;
  absl::Duration max_gap_ = absl::ZeroDuration();
  std::vector<double> latency_ms_;
  std::vector<transport::v1::Stall> stalls_;
};

}  // namespace smig::sctpcat
