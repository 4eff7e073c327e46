// The transport suite's cases about naming a path (SendOptions::path), on either stack
// ($SMIG_TEST_STACK), across the two-namespace testbed with smig-sctpcat as the peers.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/testbed.h"
#include "tests/integration/transport_fixture.h"

namespace smig::transport {
namespace {

using itest::Measure;
using itest::TwoHostTest;
using itest::Window;
using testbed::LastSummary;
using testbed::Process;
using testbed::ReadRecords;
using testbed::TwoHostNet;

// Messages that name the second path go there while the first one stays primary, and keep
// arriving when the first path is cut silently (nft drop): no pause, whereas data left to
// the stack's choice waits for a retransmission timeout to move (100..300 ms with the fast
// profile, see FailoverTest). This is what a redundant copy stands on.
TEST_F(TwoHostTest, ASendNamingTheSecondPathArrivesWhileTheFirstIsBlocked) {
  const std::string primary = TwoHostNet::AddrB(1) + ":5000";
  const std::string second = TwoHostNet::AddrB(2) + ":5000";
  auto rx = Process::Start(Receiver(), Out("rx.json"));
  ASSERT_TRUE(rx.ok()) << rx.status();
  testbed::AwaitFirstRecord(Out("rx.json"));
  auto tx = Process::Start(Sender({"--send=numbered", "--rate=1000", "--size=200", "--duration=6s",
                                   "--primary=" + primary, "--path=" + second,
                                   "--stats-interval=250ms"}),
                           Out("tx.json"));
  ASSERT_TRUE(tx.ok()) << tx.status();

  absl::SleepFor(absl::Milliseconds(1500));
  Window before = Measure((*tx)->pid(), absl::Seconds(1));  // t = 1.5 .. 2.5 s
  ASSERT_TRUE(net_->SetDrop(1, true).ok());                 // the primary, silently
  Window during = Measure((*tx)->pid(), absl::Milliseconds(1500));

  absl::StatusOr<int> tx_rc = (*tx)->Wait(absl::Seconds(20));
  absl::StatusOr<int> rx_rc = (*rx)->Wait(absl::Seconds(10));
  ASSERT_TRUE(tx_rc.ok()) << tx_rc.status();
  ASSERT_TRUE(rx_rc.ok()) << rx_rc.status();
  EXPECT_EQ(*tx_rc, 0) << (*tx)->Stderr();
  EXPECT_EQ(*rx_rc, 0) << (*rx)->Stderr();

  std::cout << "[paths] packets on path1/path2: before the cut " << before.path1 << "/"
            << before.path2 << ", during " << during.path1 << "/" << during.path2 << "\n";
  // The named path carries the data although the other one is primary.
  EXPECT_GT(before.path2, 500u);
  EXPECT_LT(before.path1, before.path2 / 5);
  EXPECT_GT(during.path2, 700u);

  // The sender counts the messages on the path it named; the primary stays the first.
  std::vector<transport::v1::CatRecord> tx_recs = ReadRecords(Out("tx.json"));
  uint64_t on_second = 0, on_primary = 0;
  bool first_is_primary = false;
  for (const auto& r : tx_recs) {
    if (!r.has_stats()) continue;
    for (const auto& p : r.stats().paths()) {
      if (p.address() == second) on_second = std::max(on_second, p.messages_sent());
      if (p.address() == primary) {
        on_primary = std::max(on_primary, p.messages_sent());
        first_is_primary |= p.primary();
      }
    }
  }
  EXPECT_TRUE(first_is_primary);
  EXPECT_GT(on_second, 4000u);
  EXPECT_LT(on_primary, 100u);

  std::optional<transport::v1::CatSummary> sent = LastSummary(tx_recs);
  std::optional<transport::v1::CatSummary> got = LastSummary(ReadRecords(Out("rx.json")));
  ASSERT_TRUE(sent && got);
  std::cout << "[result] sent " << sent->messages_sent() << " received " << got->unique_received()
            << " duplicates " << got->duplicates() << " max_gap_ms " << got->max_gap_ms() << "\n";
  EXPECT_GT(sent->messages_sent(), 5500u);
  EXPECT_EQ(got->unique_received(), sent->messages_sent()) << "messages lost";
  EXPECT_EQ(got->missing(), 0u);
  EXPECT_EQ(got->duplicates(), 0u);
  // No failover pause: the named path never broke. A timing goal, so not judged under
  // software CPU emulation (the kernel stack in the project's VM under TCG, where a
  // descheduled guest alone makes gaps: 74 ms seen in one CI run), as the data plane's
  // timing goals are not; everything above is judged there too.
  constexpr double kMaxGapMs = 60;
  if (got->max_gap_ms() > kMaxGapMs && std::getenv("SMIG_EMULATED_CPU") && !HasFailure()) {
    GTEST_SKIP() << "largest gap " << got->max_gap_ms() << " ms against " << kMaxGapMs
                 << " ms: not judged under software CPU emulation (everything else is judged)";
  }
  EXPECT_LE(got->max_gap_ms(), kMaxGapMs);
}

}  // namespace
}  // namespace smig::transport
