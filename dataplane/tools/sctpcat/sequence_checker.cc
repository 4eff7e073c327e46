#include "dataplane/tools/sctpcat/sequence_checker.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

namespace smig::sctpcat {
namespace {
constexpr size_t kMaxLatencySamples = 1 << 20;
constexpr size_t kMaxStalls = 10000;
constexpr char kMagic[4] = {'S', 'M', 'G', 'N'};
constexpr uint64_t kMaxSequence = uint64_t{1} << 32;

void Store64(char* p, uint64_t v) {
  v = htobe64(v);
  std::memcpy(p, &v, sizeof v);
}
uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return be64toh(v);
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}
}  // namespace

std::string MakeNumberedMessage(uint64_t sequence, absl::Time sent_at, size_t size) {
  std::string m(std::max(size, kNumberedHeaderSize), '\0');
  std::memcpy(m.data(), kMagic, 4);
  Store64(m.data() + 4, sequence);
  Store64(m.data() + 12, static_cast<uint64_t>(absl::ToUnixNanos(sent_at)));
  for (size_t i = kNumberedHeaderSize; i < m.size(); ++i) m[i] = static_cast<char>('a' + i % 26);
  return m;
}

bool SequenceChecker::Observe(absl::string_view payload, absl::Time received_at) {
  if (payload.size() < kNumberedHeaderSize || std::memcmp(payload.data(), kMagic, 4) != 0) {
    return false;
  }
  uint64_t seq = Load64(payload.data() + 4);
  if (seq >= kMaxSequence) return false;  // not one of ours: would blow up the bitmap
  auto sent = absl::FromUnixNanos(static_cast<int64_t>(Load64(payload.data() + 12)));
  if (seq >= seen_.size()) seen_.resize(std::max<size_t>(seq + 1, seen_.size() * 2), false);
  if (seen_[seq]) {
    ++duplicates_;
    return true;
  }
  seen_[seq] = true;
  ++unique_;
  if (any_) {
    if (seq < highest_) ++out_of_order_;
    absl::Duration gap = received_at - last_delivery_;
    max_gap_ = std::max(max_gap_, gap);
    if (gap > kStallThreshold && stalls_.size() < kMaxStalls) {
      transport::v1::Stall& s = stalls_.emplace_back();
      s.set_end_unix_s(absl::ToDoubleSeconds(received_at - absl::UnixEpoch()));
      s.set_gap_ms(absl::ToDoubleMilliseconds(gap));
    }
  }
  highest_ = any_ ? std::max(highest_, seq) : seq;
  any_ = true;
  last_delivery_ = received_at;
  if (latency_ms_.size() < kMaxLatencySamples) {
    latency_ms_.push_back(absl::ToDoubleMilliseconds(received_at - sent));
  }
  return true;
}

void SequenceChecker::Fill(transport::v1::CatSummary& summary) const {
  summary.set_unique_received(unique_);
  summary.set_duplicates(duplicates_);
  summary.set_out_of_order(out_of_order_);
  summary.set_highest_sequence(highest_);
  summary.set_missing(any_ ? highest_ + 1 - unique_ : 0);
  summary.set_max_gap_ms(absl::ToDoubleMilliseconds(max_gap_));
  summary.set_latency_p50_ms(Percentile(latency_ms_, 0.50));
  summary.set_latency_p99_ms(Percentile(latency_ms_, 0.99));
  summary.mutable_stalls()->Assign(stalls_.begin(), stalls_.end());
}

}  // namespace smig::sctpcat
