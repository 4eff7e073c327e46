#include "dataplane/vehicle/reassembler.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Verdict = FlowReassembler::Verdict;

absl::Time At(int64_t ms) { return absl::UnixEpoch() + absl::Milliseconds(ms); }
const absl::Time kT0 = At(0);

std::string P(uint64_t seq) { return absl::StrCat("p", seq); }

std::vector<std::string> Payloads(uint64_t from, uint64_t to_exclusive) {
  std::vector<std::string> v;
  for (uint64_t s = from; s < to_exclusive; ++s) v.push_back(P(s));
  return v;
}

TEST(ReassemblerTest, DeliversInOrderFramesImmediately) {
  FlowReassembler r({});
  std::vector<std::string> out;
  for (uint64_t s = 0; s < 5; ++s) {
    EXPECT_EQ(r.Offer(s, P(s), kT0, out), Verdict::kDelivered);
    EXPECT_EQ(out.size(), s + 1);
    EXPECT_EQ(r.next_sequence(), s + 1);
  }
  EXPECT_EQ(out, Payloads(0, 5));
  EXPECT_EQ(r.stats().delivered_frames, 5u);
  EXPECT_EQ(r.stats().delivered_bytes, 10u);  // "p0".."p4"
  EXPECT_EQ(r.stats().duplicates, 0u);
  EXPECT_EQ(r.stats().gaps, 0u);
  EXPECT_EQ(r.stats().overflow_drops, 0u);
  EXPECT_EQ(r.buffered_frames(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(ReassemblerTest, AppendsToTheCallersVectorWithoutClearingIt) {
  FlowReassembler r({});
  std::vector<std::string> out = {"earlier"};
  r.Offer(0, "a", kT0, out);
  EXPECT_THAT(out, ElementsAre("earlier", "a"));
}

TEST(ReassemblerTest, BuffersOutOfOrderFramesAndReleasesThemInOrder) {
  FlowReassembler r({});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(3, "three", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(1, "one", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(2, "two", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(5, "five", kT0, out), Verdict::kBuffered);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(r.next_sequence(), 0u);
  EXPECT_EQ(r.buffered_frames(), 4u);
  EXPECT_EQ(r.buffered_bytes(), 5u + 3u + 3u + 4u);

  EXPECT_EQ(r.Offer(0, "zero", kT0, out), Verdict::kDelivered);
  EXPECT_THAT(out, ElementsAre("zero", "one", "two", "three"));
  EXPECT_EQ(r.next_sequence(), 4u);
  EXPECT_EQ(r.buffered_frames(), 1u);  // 5 waits for 4
  EXPECT_EQ(r.buffered_bytes(), 4u);

  out.clear();
  EXPECT_EQ(r.Offer(4, "four", kT0, out), Verdict::kDelivered);
  EXPECT_THAT(out, ElementsAre("four", "five"));
  EXPECT_EQ(r.next_sequence(), 6u);
  EXPECT_EQ(r.buffered_frames(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
  EXPECT_EQ(r.stats().delivered_frames, 6u);
  EXPECT_EQ(r.stats().delivered_bytes, 4u + 3u + 3u + 5u + 4u + 4u);
}

TEST(ReassemblerTest, ReverseOrderIsReleasedInOneGo) {
  FlowReassembler r({});
  std::vector<std::string> out;
  for (uint64_t s = 99; s >= 1; --s) ASSERT_EQ(r.Offer(s, P(s), kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.buffered_frames(), 99u);
  EXPECT_EQ(r.Offer(0, P(0), kT0, out), Verdict::kDelivered);
  EXPECT_EQ(out, Payloads(0, 100));
  EXPECT_EQ(r.buffered_frames(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(ReassemblerTest, DuplicatesOfDeliveredFramesAreCountedNotDelivered) {
  FlowReassembler r({});
  std::vector<std::string> out;
  r.Offer(0, "a", kT0, out);
  r.Offer(1, "b", kT0, out);
  EXPECT_EQ(r.Offer(0, "a", kT0, out), Verdict::kDuplicate);
  EXPECT_EQ(r.Offer(1, "b-again", kT0, out), Verdict::kDuplicate);
  EXPECT_THAT(out, ElementsAre("a", "b"));
  EXPECT_EQ(r.stats().duplicates, 2u);
  EXPECT_EQ(r.stats().delivered_frames, 2u);
  EXPECT_EQ(r.stats().delivered_bytes, 2u);
  EXPECT_EQ(r.next_sequence(), 2u);
}

TEST(ReassemblerTest, DuplicatesOfBufferedFramesAreCountedAndTheFirstCopyKept) {
  FlowReassembler r({});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(2, "first", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(2, "second copy", kT0, out), Verdict::kDuplicate);
  EXPECT_EQ(r.buffered_frames(), 1u);
  EXPECT_EQ(r.buffered_bytes(), 5u);
  EXPECT_EQ(r.stats().duplicates, 1u);
  EXPECT_EQ(r.stats().gaps, 1u);  // the duplicate is not a second gap
  r.Offer(0, "x", kT0, out);
  r.Offer(1, "y", kT0, out);
  EXPECT_THAT(out, ElementsAre("x", "y", "first"));
  EXPECT_EQ(r.stats().delivered_frames, 3u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(ReassemblerTest, FirstSequenceSetsWhereDeliveryStarts) {
  FlowReassembler r({.first_sequence = 1000});
  EXPECT_EQ(r.next_sequence(), 1000u);
  std::vector<std::string> out;
  // Before the player's position: already delivered elsewhere.
  EXPECT_EQ(r.Offer(999, "old", kT0, out), Verdict::kDuplicate);
  EXPECT_EQ(r.Offer(0, "older", kT0, out), Verdict::kDuplicate);
  EXPECT_EQ(r.Offer(1001, "b", kT0, out), Verdict::kBuffered);
  EXPECT_THAT(out, IsEmpty());
  EXPECT_EQ(r.Offer(1000, "a", kT0, out), Verdict::kDelivered);
  EXPECT_THAT(out, ElementsAre("a", "b"));
  EXPECT_EQ(r.next_sequence(), 1002u);
  EXPECT_EQ(r.stats().duplicates, 2u);
  EXPECT_EQ(r.stats().delivered_frames, 2u);
}

TEST(ReassemblerTest, FirstFrameAtFirstSequenceDeliversWithoutAGap) {
  FlowReassembler r({.first_sequence = 7});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(7, "a", kT0, out), Verdict::kDelivered);
  EXPECT_EQ(r.stats().gaps, 0u);
}

// Old edge sends 0..99, new edge 50..199 (the handover overlap is 50..99); the vehicle
// sees both associations interleaved. Each association is in order on its own.
TEST(ReassemblerTest, TwoInterleavedAssociationsWithOverlapDeliverEachFrameOnceInOrder) {
  for (uint32_t seed : {1u, 2u, 3u, 42u, 1234u}) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    std::vector<uint64_t> old_edge, new_edge, arrivals;
    for (uint64_t s = 0; s < 100; ++s) old_edge.push_back(s);
    for (uint64_t s = 50; s < 200; ++s) new_edge.push_back(s);
    size_t i = 0, j = 0;
    std::bernoulli_distribution pick_old(0.5);
    while (i < old_edge.size() || j < new_edge.size()) {
      bool take_old = j == new_edge.size() || (i < old_edge.size() && pick_old(rng));
      arrivals.push_back(take_old ? old_edge[i++] : new_edge[j++]);
    }
    ASSERT_EQ(arrivals.size(), 250u);

    FlowReassembler r({});
    std::vector<std::string> out;
    for (uint64_t s : arrivals) r.Offer(s, P(s), kT0, out);
    EXPECT_EQ(out, Payloads(0, 200));
    EXPECT_EQ(r.next_sequence(), 200u);
    EXPECT_EQ(r.stats().delivered_frames, 200u);
    EXPECT_EQ(r.stats().duplicates, 50u);
    EXPECT_EQ(r.stats().overflow_drops, 0u);
    EXPECT_EQ(r.buffered_frames(), 0u);
    EXPECT_EQ(r.buffered_bytes(), 0u);
  }
}

// The same two ranges, but every frame in a fully shuffled order (multiple paths
// within each association).
TEST(ReassemblerTest, TwoAssociationsInFullyShuffledOrderDeliverEachFrameOnceInOrder) {
  for (uint32_t seed : {7u, 8u, 9u}) {
    SCOPED_TRACE(seed);
    std::vector<uint64_t> arrivals;
    for (uint64_t s = 0; s < 100; ++s) arrivals.push_back(s);
    for (uint64_t s = 50; s < 200; ++s) arrivals.push_back(s);
    std::shuffle(arrivals.begin(), arrivals.end(), std::mt19937(seed));

    FlowReassembler r({});
    std::vector<std::string> out;
    size_t delivered_verdicts = 0;
    for (uint64_t s : arrivals) {
      size_t before = out.size();
      Verdict v = r.Offer(s, P(s), kT0, out);
      if (v == Verdict::kDelivered) {
        ++delivered_verdicts;
        EXPECT_GT(out.size(), before);
      } else {
        EXPECT_EQ(out.size(), before) << "verdict " << static_cast<int>(v);
      }
    }
    EXPECT_EQ(out, Payloads(0, 200));
    EXPECT_EQ(r.stats().duplicates, 50u);
    EXPECT_EQ(r.stats().delivered_frames, 200u);
    EXPECT_GE(delivered_verdicts, 1u);
    EXPECT_EQ(r.buffered_frames(), 0u);
    EXPECT_EQ(r.buffered_bytes(), 0u);
  }
}

TEST(ReassemblerTest, FrameCountOverflowDropsTheFrameWhichIsNotDeliveredUntilResent) {
  FlowReassembler r({.max_buffered_frames = 2});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(1, P(1), kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(2, P(2), kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(3, P(3), kT0, out), Verdict::kOverflow);
  EXPECT_EQ(r.Offer(4, P(4), kT0, out), Verdict::kOverflow);
  EXPECT_EQ(r.stats().overflow_drops, 2u);
  EXPECT_EQ(r.buffered_frames(), 2u);
  EXPECT_EQ(r.buffered_bytes(), 4u);

  // The missing frame is never refused for lack of room, and releases the buffer; the
  // dropped frames 3 and 4 are not delivered.
  EXPECT_EQ(r.Offer(0, P(0), kT0, out), Verdict::kDelivered);
  EXPECT_EQ(out, Payloads(0, 3));
  EXPECT_EQ(r.next_sequence(), 3u);
  EXPECT_EQ(r.buffered_frames(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 0u);

  // The edge re-sends from the reported position: delivery resumes.
  EXPECT_EQ(r.Offer(4, P(4), kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(3, P(3), kT0, out), Verdict::kDelivered);
  EXPECT_EQ(out, Payloads(0, 5));
  EXPECT_EQ(r.stats().delivered_frames, 5u);
  EXPECT_EQ(r.stats().overflow_drops, 2u);
  EXPECT_EQ(r.stats().duplicates, 0u);
}

TEST(ReassemblerTest, ByteOverflowDropsTheFrameWhichIsNotDeliveredUntilResent) {
  FlowReassembler r({.max_buffered_bytes = 10});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(1, "aaaaa", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(2, "bbbbb", kT0, out), Verdict::kBuffered);  // exactly at the limit
  EXPECT_EQ(r.buffered_bytes(), 10u);
  EXPECT_EQ(r.Offer(3, "c", kT0, out), Verdict::kOverflow);
  EXPECT_EQ(r.Offer(3, "", kT0, out), Verdict::kBuffered);  // an empty payload still fits
  EXPECT_EQ(r.Offer(4, "dd", kT0, out), Verdict::kOverflow);
  EXPECT_EQ(r.stats().overflow_drops, 2u);
  EXPECT_EQ(r.buffered_frames(), 3u);

  // A frame bigger than the whole buffer is still delivered when it is the next one.
  EXPECT_EQ(r.Offer(0, std::string(100, 'z'), kT0, out), Verdict::kDelivered);
  EXPECT_THAT(out, ElementsAre(std::string(100, 'z'), "aaaaa", "bbbbb", ""));
  EXPECT_EQ(r.next_sequence(), 4u);
  EXPECT_EQ(r.buffered_frames(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 0u);

  out.clear();
  EXPECT_EQ(r.Offer(5, "eeeeeeeeee", kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(4, "dd", kT0, out), Verdict::kDelivered);
  EXPECT_THAT(out, ElementsAre("dd", "eeeeeeeeee"));
  EXPECT_EQ(r.stats().delivered_bytes, 100u + 5u + 5u + 0u + 2u + 10u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(ReassemblerTest, OverflowedFrameIsNotADuplicateWhenResentBeforeItsTurn) {
  FlowReassembler r({.max_buffered_frames = 1});
  std::vector<std::string> out;
  EXPECT_EQ(r.Offer(1, P(1), kT0, out), Verdict::kBuffered);
  EXPECT_EQ(r.Offer(2, P(2), kT0, out), Verdict::kOverflow);
  EXPECT_EQ(r.Offer(0, P(0), kT0, out), Verdict::kDelivered);
  // Room again: the re-sent frame is delivered, not mistaken for a duplicate.
  EXPECT_EQ(r.Offer(2, P(2), kT0, out), Verdict::kDelivered);
  EXPECT_EQ(out, Payloads(0, 3));
  EXPECT_EQ(r.stats().duplicates, 0u);
}

TEST(ReassemblerTest, CountsFramesThatArriveWhileTheirPredecessorIsMissing) {
  FlowReassembler r({});
  std::vector<std::string> out;
  r.Offer(2, P(2), kT0, out);  // 1 missing: gap
  EXPECT_EQ(r.stats().gaps, 1u);
  r.Offer(3, P(3), kT0, out);  // 2 is buffered: no gap
  EXPECT_EQ(r.stats().gaps, 1u);
  r.Offer(6, P(6), kT0, out);  // 5 missing: gap
  EXPECT_EQ(r.stats().gaps, 2u);
  r.Offer(5, P(5), kT0, out);  // 4 missing: gap
  EXPECT_EQ(r.stats().gaps, 3u);
  r.Offer(1, P(1), kT0, out);  // 0 (the next one) missing: gap
  EXPECT_EQ(r.stats().gaps, 4u);
  r.Offer(0, P(0), kT0, out);  // delivered: no gap
  r.Offer(4, P(4), kT0, out);  // delivered: no gap
  EXPECT_EQ(r.stats().gaps, 4u);
  EXPECT_EQ(out, Payloads(0, 7));
}

TEST(ReassemblerTest, OverflowAndDuplicatesDoNotCountAsGaps) {
  FlowReassembler r({.max_buffered_frames = 1});
  std::vector<std::string> out;
  r.Offer(0, P(0), kT0, out);
  r.Offer(0, P(0), kT0, out);  // duplicate
  r.Offer(5, P(5), kT0, out);  // gap
  r.Offer(9, P(9), kT0, out);  // overflow
  EXPECT_EQ(r.stats().gaps, 1u);
  EXPECT_EQ(r.stats().duplicates, 1u);
  EXPECT_EQ(r.stats().overflow_drops, 1u);
}

TEST(ReassemblerTest, StallsAreDeliveryPausesLongerThanTheThreshold) {
  FlowReassembler r({.stall_threshold = absl::Milliseconds(100)});
  std::vector<std::string> out;
  r.Offer(0, P(0), At(1000), out);  // first delivery: no previous one, no stall
  EXPECT_EQ(r.stats().stalls, 0u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::ZeroDuration());

  r.Offer(1, P(1), At(1050), out);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(50));
  r.Offer(2, P(2), At(1150), out);  // exactly the threshold: not a stall
  EXPECT_EQ(r.stats().stalls, 0u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(100));

  r.Offer(3, P(3), At(1251), out);  // 101 ms
  EXPECT_EQ(r.stats().stalls, 1u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(101));

  // Buffered frames do not deliver, so their arrival does not end the pause.
  r.Offer(5, P(5), At(1300), out);
  r.Offer(6, P(6), At(1400), out);
  EXPECT_EQ(r.stats().stalls, 1u);
  // 4 arrives 400 ms after the last delivery: one stall; 5 and 6 follow at once.
  r.Offer(4, P(4), At(1651), out);
  EXPECT_EQ(r.stats().stalls, 2u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(400));
  EXPECT_EQ(out, Payloads(0, 7));

  // A shorter pause leaves the maximum alone.
  r.Offer(7, P(7), At(1700), out);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(400));
  EXPECT_EQ(r.stats().stalls, 2u);

  // Duplicates and overflow arrivals do not deliver either.
  r.Offer(7, P(7), At(1750), out);
  r.Offer(8, P(8), At(1900), out);  // 200 ms after 7
  EXPECT_EQ(r.stats().stalls, 3u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(400));
}

TEST(ReassemblerTest, StallThresholdIsAnOption) {
  FlowReassembler r({.stall_threshold = absl::Seconds(1)});
  std::vector<std::string> out;
  r.Offer(0, P(0), At(0), out);
  r.Offer(1, P(1), At(999), out);
  EXPECT_EQ(r.stats().stalls, 0u);
  r.Offer(2, P(2), At(2000), out);
  EXPECT_EQ(r.stats().stalls, 1u);
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(1001));
}

TEST(FlowReassemblerWindowTest, WindowGapCountsOnlyPausesAfterStartWindow) {
  FlowReassembler r({});
  std::vector<std::string> out;
  absl::Time t0 = absl::UnixEpoch();
  r.Offer(0, "a", t0, out);
  r.Offer(1, "b", t0 + absl::Milliseconds(80), out);  // before the window
  r.StartWindow();
  EXPECT_EQ(r.window_max_gap(), absl::ZeroDuration());
  r.Offer(2, "c", t0 + absl::Milliseconds(90), out);
  r.Offer(3, "d", t0 + absl::Milliseconds(120), out);
  EXPECT_EQ(r.window_max_gap(), absl::Milliseconds(30));
  EXPECT_EQ(r.stats().max_delivery_gap, absl::Milliseconds(80));
}

}  // namespace
}  // namespace smig::dataplane
