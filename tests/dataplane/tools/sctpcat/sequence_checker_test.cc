#include "dataplane/tools/sctpcat/sequence_checker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::sctpcat {
namespace {

// A fixed epoch keeps every time in these tests explicit.
const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

transport::v1::CatSummary Summary(const SequenceChecker& c) {
  transport::v1::CatSummary s;
  c.Fill(s);
  return s;
}

TEST(NumberedMessageTest, HasHeaderAndRequestedSize) {
  EXPECT_EQ(MakeNumberedMessage(1, kT0, 5).size(), kNumberedHeaderSize);
  std::string m = MakeNumberedMessage(1, kT0, 100);
  EXPECT_EQ(m.size(), 100u);
  EXPECT_EQ(m.substr(0, 4), "SMGN");
  EXPECT_NE(MakeNumberedMessage(1, kT0, 20), MakeNumberedMessage(2, kT0, 20));
}

TEST(SequenceCheckerTest, EmptyCheckerReportsNothing) {
  transport::v1::CatSummary s = Summary(SequenceChecker());
  EXPECT_EQ(s.unique_received(), 0u);
  EXPECT_EQ(s.missing(), 0u);
  EXPECT_EQ(s.highest_sequence(), 0u);
  EXPECT_EQ(s.max_gap_ms(), 0);
}

TEST(SequenceCheckerTest, InOrderStream) {
  SequenceChecker c;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(c.Observe(MakeNumberedMessage(i, At(i), 30), At(i)));
  transport::v1::CatSummary s = Summary(c);
  EXPECT_EQ(s.unique_received(), 5u);
  EXPECT_EQ(s.duplicates(), 0u);
  EXPECT_EQ(s.out_of_order(), 0u);
  EXPECT_EQ(s.highest_sequence(), 4u);
  EXPECT_EQ(s.missing(), 0u);
}

TEST(SequenceCheckerTest, CountsDuplicates) {
  SequenceChecker c;
  for (int seq : {0, 1, 1, 2, 0}) c.Observe(MakeNumberedMessage(seq, kT0, 20), kT0);
  transport::v1::CatSummary s = Summary(c);
  EXPECT_EQ(s.unique_received(), 3u);
  EXPECT_EQ(s.duplicates(), 2u);
  EXPECT_EQ(s.out_of_order(), 0u);
  EXPECT_EQ(s.missing(), 0u);
}

TEST(SequenceCheckerTest, CountsOutOfOrderArrivals) {
  SequenceChecker c;
  for (int seq : {0, 3, 1, 2, 4}) c.Observe(MakeNumberedMessage(seq, kT0, 20), kT0);
  transport::v1::CatSummary s = Summary(c);
  EXPECT_EQ(s.unique_received(), 5u);
  EXPECT_EQ(s.out_of_order(), 2u);  // 1 and 2 came after 3
  EXPECT_EQ(s.highest_sequence(), 4u);
  EXPECT_EQ(s.missing(), 0u);
}

TEST(SequenceCheckerTest, ComputesMissingUpToTheHighestSeen) {
  SequenceChecker c;
  for (int seq : {0, 1, 5, 7}) c.Observe(MakeNumberedMessage(seq, kT0, 20), kT0);
  transport::v1::CatSummary s = Summary(c);
  EXPECT_EQ(s.highest_sequence(), 7u);
  EXPECT_EQ(s.missing(), 4u);  // 2, 3, 4, 6
}

TEST(SequenceCheckerTest, FirstMessageLostCountsAsMissing) {
  SequenceChecker c;
  c.Observe(MakeNumberedMessage(2, kT0, 20), kT0);
  EXPECT_EQ(Summary(c).missing(), 2u);
}

TEST(SequenceCheckerTest, MaxGapIsTheLongestPauseBetweenDeliveries) {
  SequenceChecker c;
  c.Observe(MakeNumberedMessage(0, At(0), 20), At(0));
  c.Observe(MakeNumberedMessage(1, At(10), 20), At(10));
  c.Observe(MakeNumberedMessage(2, At(20), 20), At(65));  // 55 ms pause
  c.Observe(MakeNumberedMessage(3, At(70), 20), At(70));
  // A duplicate much later is not a delivery.
  c.Observe(MakeNumberedMessage(3, At(70), 20), At(500));
  EXPECT_DOUBLE_EQ(Summary(c).max_gap_ms(), 55.0);
}

TEST(SequenceCheckerTest, LatencyIsReceiveMinusSendTime) {
  SequenceChecker c;
  // Latencies 1..100 ms, delivered in a shuffled order of sequence numbers.
  for (int i = 1; i <= 100; ++i) {
    int ms = (i * 37) % 100 + 1;
    c.Observe(MakeNumberedMessage(i - 1, At(1000 * i), 20), At(1000 * i + ms));
  }
  transport::v1::CatSummary s = Summary(c);
  EXPECT_DOUBLE_EQ(s.latency_p50_ms(), 50.0);
  EXPECT_DOUBLE_EQ(s.latency_p99_ms(), 99.0);
}

TEST(SequenceCheckerTest, IgnoresPayloadsThatAreNotNumbered) {
  SequenceChecker c;
  EXPECT_FALSE(c.Observe("hello\n", kT0));
  EXPECT_FALSE(c.Observe(std::string(40, 'x'), kT0));                     // no magic
  EXPECT_FALSE(c.Observe(MakeNumberedMessage(1, kT0, 20).substr(0, 19), kT0));  // truncated
  EXPECT_FALSE(c.Observe(MakeNumberedMessage(uint64_t{1} << 40, kT0, 20), kT0));  // absurd number
  transport::v1::CatSummary s = Summary(c);
  EXPECT_EQ(s.unique_received(), 0u);
  EXPECT_EQ(s.duplicates(), 0u);
  EXPECT_EQ(s.missing(), 0u);
  EXPECT_TRUE(c.Observe(MakeNumberedMessage(0, kT0, 20), kT0));
  EXPECT_EQ(Summary(c).unique_received(), 1u);
}

}  // namespace
}  // namespace smig::sctpcat
