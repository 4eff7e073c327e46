// FencingGate: the agent's rule for SMM leader fencing tokens.
#include "dataplane/daemon/fencing.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

TEST(FencingGateTest, StartsUnfencedAndAdmitsAnyToken) {
  FencingGate gate;
  EXPECT_EQ(gate.highest(), 0u);
  EXPECT_TRUE(gate.Admit(1).ok());
  EXPECT_EQ(gate.highest(), 1u);
}

TEST(FencingGateTest, AnOlderTokenIsRefusedNamingBothAndChangesNothing) {
  FencingGate gate;
  ASSERT_TRUE(gate.Admit(57).ok());
  absl::Status s = gate.Admit(41);
  EXPECT_EQ(s, absl::FailedPreconditionError(
                   "fenced: token 41 is older than 57: a newer SMM leader acts"));
  EXPECT_EQ(gate.highest(), 57u);
  EXPECT_EQ(gate.Admit(56).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FencingGateTest, TheSameOrANewerTokenIsAdmittedAndBecomesTheHighest) {
  FencingGate gate;
  ASSERT_TRUE(gate.Admit(57).ok());
  EXPECT_TRUE(gate.Admit(57).ok());  // the same leader, call after call
  EXPECT_EQ(gate.highest(), 57u);
  EXPECT_TRUE(gate.Admit(60).ok());  // a newer leader took over
  EXPECT_EQ(gate.highest(), 60u);
  EXPECT_EQ(gate.Admit(57).code(), absl::StatusCode::kFailedPrecondition);  // the old one is out
}

TEST(FencingGateTest, ZeroIsUnfencedAlwaysAdmittedAndLeavesTheHighest) {
  FencingGate gate;
  EXPECT_TRUE(gate.Admit(FencingGate::kUnfenced).ok());
  EXPECT_EQ(gate.highest(), 0u);
  ASSERT_TRUE(gate.Admit(57).ok());
  EXPECT_TRUE(gate.Admit(0).ok());
  EXPECT_EQ(gate.highest(), 57u);
}

TEST(FencingGateTest, TheLargestTokenWinsUnderConcurrentCallers) {
  FencingGate gate;
  constexpr int kThreads = 4;
  constexpr uint64_t kTokens = 2000;
  std::atomic<int> refused_below_admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 1; i <= kTokens; ++i) {
        const uint64_t token = i * kThreads + t;
        const uint64_t before = gate.highest();
        absl::Status s = gate.Admit(token);
        // A refusal is only ever for a token below one already admitted.
        if (!s.ok() && token >= before && token >= gate.highest()) ++refused_below_admitted;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(gate.highest(), kTokens * kThreads + (kThreads - 1));
  EXPECT_EQ(refused_below_admitted.load(), 0);
}

}  // namespace
}  // namespace smig::dataplane
