// The edge engine tests' media: a paced VOD-like source over the fake transport's time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "dataplane/edge/edge_engine.h"
#include "dataplane/media/source.h"

namespace smig::dataplane::testing {

inline constexpr size_t kChunk = 100;
inline constexpr absl::Duration kPeriod = absl::Milliseconds(10);  // one chunk per 10 ms
inline constexpr uint64_t kChunks = 400;

// A VOD-like source: chunk k (bytes [k*kChunk, (k+1)*kChunk) of a synthetic stream) is due
// at anchor + (k - first) * kPeriod, where `anchor` is when chunk `first` is due. Like
// FileSource, every edge that gets the same (offset, anchor) keeps the same schedule.
class PacedSource : public media::Source {
 public:
  PacedSource(uint64_t offset, absl::Time anchor) : next_(offset / kChunk), first_(next_), anchor_(anchor) {}
  absl::Status Poll(absl::Time now, std::vector<media::Chunk>& out) override {
    while (next_ < kChunks && Due(next_) <= now) {
      out.push_back({next_ * kChunk, Payload(next_), next_ + 1 == kChunks});
      ++next_;
    }
    return absl::OkStatus();
  }
  int fd() const override { return -1; }
  absl::Time NextDue() const override { return next_ < kChunks ? Due(next_) : absl::InfiniteFuture(); }
  static std::string Payload(uint64_t k) {
    std::string p = absl::StrCat("chunk-", k, "-");
    p.resize(kChunk, static_cast<char>('a' + k % 26));
    return p;
  }

 private:
  absl::Time Due(uint64_t k) const { return anchor_ + static_cast<int64_t>(k - first_) * kPeriod; }
  uint64_t next_, first_;
  absl::Time anchor_;
};

// Files are the paced test source; live kinds (udp_listen, tcp_listen) the real ones, which
// say for themselves that they cannot move.
inline EdgeEngine::SourceFactory Factory() {
  return [](const v1::FlowState& f, absl::Time now) -> absl::StatusOr<std::unique_ptr<media::Source>> {
    if (!f.source().has_file()) return media::MakeSource(f.source(), f.source_offset(), now);
    absl::Time anchor = now;
    if (f.has_checkpoint_due_at()) anchor = FromProto(f.checkpoint_due_at());
    return std::make_unique<PacedSource>(f.source_offset(), anchor);
  };
}

}  // namespace smig::dataplane::testing
