// BlockingQueue<T>: a thread-safe FIFO that a consumer waits on with a timeout.
//
//   smig::BlockingQueue<Event> events(/*capacity=*/1024);   // 0: unbounded
//   events.Push(e);                                         // any thread
//   std::optional<Event> next = events.Pop(absl::Seconds(1));  // nullopt: timeout or closed
//   events.Close();                                         // wakes every Pop
//
// When a bounded queue is full, Push drops the oldest element (a lagging reader loses the
// oldest news, never blocks the writer) and returns false. After Close(), Push is ignored
// and Pop drains what is left, then returns nullopt at once.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace smig {

template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(size_t capacity = 0) : capacity_(capacity) {}

  // Returns false when the queue was full and its oldest element was dropped, or closed.
  bool Push(T value) {
    absl::MutexLock lock(&mu_);
    if (closed_) return false;
    bool kept_all = true;
    if (capacity_ != 0 && items_.size() >= capacity_) {
      items_.pop_front();
      kept_all = false;
    }
    items_.push_back(std::move(value));
    return kept_all;
  }

  std::optional<T> Pop(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !items_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (items_.empty()) return std::nullopt;
    T value = std::move(items_.front());
    items_.pop_front();
    return value;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace smig
