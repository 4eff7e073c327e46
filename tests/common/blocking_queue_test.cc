#include "common/blocking_queue.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(BlockingQueueTest, FifoAndTimeout) {
  BlockingQueue<int> q;
  EXPECT_TRUE(q.Push(1));
  EXPECT_TRUE(q.Push(2));
  EXPECT_EQ(q.Pop(absl::ZeroDuration()), 1);
  EXPECT_EQ(q.Pop(absl::ZeroDuration()), 2);
  EXPECT_EQ(q.Pop(absl::Milliseconds(1)), std::nullopt);
}

TEST(BlockingQueueTest, BoundedQueueDropsTheOldest) {
  BlockingQueue<int> q(2);
  EXPECT_TRUE(q.Push(1));
  EXPECT_TRUE(q.Push(2));
  EXPECT_FALSE(q.Push(3));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.Pop(absl::ZeroDuration()), 2);
  EXPECT_EQ(q.Pop(absl::ZeroDuration()), 3);
}

TEST(BlockingQueueTest, PopWakesForAPushFromAnotherThread) {
  BlockingQueue<std::string> q;
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(10));
    q.Push("hello");
  });
  EXPECT_EQ(q.Pop(absl::Seconds(10)), "hello");
  writer.join();
}

TEST(BlockingQueueTest, CloseWakesReadersAndDrains) {
  BlockingQueue<int> q;
  q.Push(7);
  q.Close();
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.Push(8));
  EXPECT_EQ(q.Pop(absl::Seconds(10)), 7);
  absl::Time start = absl::Now();
  EXPECT_EQ(q.Pop(absl::Seconds(10)), std::nullopt);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

}  // namespace
}  // namespace smig
