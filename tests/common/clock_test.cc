#include "common/clock.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(SimulatedClockTest, MovesOnlyWhenTold) {
  SimulatedClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.SetTime(absl::FromUnixSeconds(90));  // never backwards
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Advance(-absl::Seconds(1));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
}

TEST(SimulatedClockTest, SleeperWakesWhenTimePassesItsDeadline) {
  SimulatedClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(absl::Seconds(10));
    woke = true;
  });
  ASSERT_TRUE(clock.AwaitSleepers(1));
  clock.Advance(absl::Seconds(9));
  absl::SleepFor(absl::Milliseconds(20));  // real time: give it a chance to wake wrongly
  EXPECT_FALSE(woke.load());
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke.load());
}

TEST(SimulatedClockTest, AwaitWithDeadlineEndsByConditionOrBySimulatedDeadline) {
  SimulatedClock clock;
  absl::Mutex mu;
  bool flag = false;
  std::thread setter([&] {
    absl::MutexLock lock(&mu);
    flag = true;
  });
  setter.join();
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(clock.AwaitWithDeadline(mu, absl::Condition(&flag), clock.Now() + absl::Hours(1)));
  }
  bool never = false;
  std::atomic<bool> met{true};
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    met = clock.AwaitWithDeadline(mu, absl::Condition(&never), clock.Now() + absl::Seconds(3));
  });
  ASSERT_TRUE(clock.AwaitSleepers(1));
  clock.Advance(absl::Seconds(3));
  waiter.join();
  EXPECT_FALSE(met.load());
}

TEST(RealClockTest, FollowsTheSystemClock) {
  absl::Time before = absl::Now();
  absl::Time t = Clock::Real().Now();
  EXPECT_GE(t, before);
  EXPECT_LE(t, absl::Now());
  absl::Time start = absl::Now();
  Clock::Real().SleepFor(absl::Milliseconds(5));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(5));
}

}  // namespace
}  // namespace smig
