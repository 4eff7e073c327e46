// What an edge queues for a vehicle that takes nothing (issue 17, "a vehicle that never
// acknowledges"): the queue stays within max_queued_bytes. A VOD source waits and the
// stream arrives whole once the vehicle answers; a live source drops its oldest queued
// frames, says so once, and the player skips ahead with no hole.
#include "dataplane/edge/frame_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane/edge/edge_engine.h"
#include "dataplane/vehicle/vehicle_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/edge/engine_loop.h"
#include "tests/dataplane/edge/paced_source.h"
#include "tests/fakes/fake_endpoint.h"
#include "tests/fakes/session_keys.h"

namespace smig::dataplane {
namespace {

using testing::kChunk;
using testing::kChunks;
using testing::kPeriod;
using testing::PacedSource;
using transport::testing::FakeEndpoint;
using transport::testing::FakeNetwork;

TEST(FrameQueueTest, CountsBytesAndDropsTheOldestButNeverTheNewest) {
  FrameQueue q;
  const absl::Time t = absl::UnixEpoch();
  for (uint64_t k = 0; k < 5; ++k) q.Push({.offset = k * 10, .data = std::string(10, 'x')}, t);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.bytes(), 50u);
  EXPECT_EQ(q.DropOldestOver(30), (std::pair<uint64_t, uint64_t>{2, 20}));
  EXPECT_EQ(q.front().chunk.offset, 20u);
  q.pop_front();
  EXPECT_EQ(q.bytes(), 20u);
  EXPECT_EQ(q.DropOldestOver(0), (std::pair<uint64_t, uint64_t>{1, 10}));
  EXPECT_EQ(q.size(), 1u);  // the newest stays
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

// PacedSource's chunks, but live: it has a descriptor (the edge must read it on) and
// cannot be served again or moved, like a UDP or TCP source of the edge's own.
class LivePacedSource : public PacedSource {
 public:
  explicit LivePacedSource(absl::Time anchor) : PacedSource(0, anchor), fd_(eventfd(0, 0)) {}
  ~LivePacedSource() override { close(fd_); }
  int fd() const override { return fd_; }
  bool CanResume() const override { return false; }
  bool CanMove() const override { return false; }

 private:
  int fd_;
};

constexpr uint64_t kSession = 9;
constexpr uint64_t kMaxQueued = 10 * kChunk;
const std::string kKey = testing::TestSessionKey("frame-queue-test");

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vehicle_ep_ = net_.CreateEndpoint({.local_addresses = {"10.9.0.1"}, .port = 6000});
    edge_ep_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
    vehicle_ = std::make_unique<VehicleEngine>(
        *vehicle_ep_, VehicleEngine::Options{.deliver = [this](uint64_t, uint32_t,
                                                               absl::string_view d) {
          delivered_.emplace_back(d);
        }});
    edge_ = std::make_unique<EdgeEngine>(
        *edge_ep_,
        EdgeEngine::Options{
            .server_id = "edge-a",
            .make_source = [](const v1::FlowState& f, absl::Time now)
                -> absl::StatusOr<std::unique_ptr<media::Source>> {
              if (f.source().has_file()) return std::make_unique<PacedSource>(0, now);
              return std::make_unique<LivePacedSource>(now);
            },
            .on_error = [this](uint64_t, const std::string& e) { errors_.push_back(e); },
            .handshake_timeout = absl::Seconds(2),
            .max_queued_bytes = kMaxQueued});
  }

  v1::SessionState State(bool live) {
    v1::SessionState s;
    s.set_format_version(1);
    s.set_session_id(kSession);
    s.set_generation(1);
    s.set_session_key(kKey);
    s.add_vehicle_addresses("10.9.0.1");
    s.set_vehicle_port(6000);
    v1::FlowState* f = s.add_flows();
    f->set_flow_id(0);
    if (live) {
      f->mutable_source()->set_udp_listen("127.0.0.1:0");  // the factory makes it live
    } else {
      f->mutable_source()->set_file("synthetic");
    }
    return s;
  }

  // Runs both ends for `d` in 1 ms steps; the largest queue the edge had is kept.
  void Run(absl::Duration d) {
    for (absl::Time end = now_ + d; now_ < end; now_ += absl::Milliseconds(1)) {
      testing::Deliver(*edge_, *edge_ep_, now_, 100);
      edge_->Pump(now_);
      testing::Deliver(*vehicle_, *vehicle_ep_, now_, 1000);
      const v1::FlowStatus flow = edge_->Describe(kSession)->flows(0);
      max_queued_ = std::max<uint64_t>(max_queued_, flow.queued_bytes());
    }
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> vehicle_ep_, edge_ep_;
  std::unique_ptr<VehicleEngine> vehicle_;
  std::unique_ptr<EdgeEngine> edge_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  std::vector<std::string> delivered_, errors_;
  uint64_t max_queued_ = 0;
};

// The vehicle has not been given the session for 2 s (it refuses every HELLO), then it is.
TEST_F(QueueTest, AVodSourceWaitsForAVehicleThatTakesNothingAndArrivesWhole) {
  ASSERT_TRUE(edge_->Serve(State(/*live=*/false), now_).ok());
  Run(absl::Seconds(2));
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(edge_->Describe(kSession)->flows(0).queued_bytes(), kMaxQueued);  // it waits
  ASSERT_TRUE(vehicle_->AdmitSession(kSession, kKey).ok());
  Run(kPeriod * kChunks + absl::Seconds(3));
  EXPECT_LE(max_queued_, kMaxQueued);
  ASSERT_EQ(delivered_.size(), kChunks);
  for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  EXPECT_EQ(edge_->queued_frames_dropped(), 0u);
  for (const std::string& e : errors_) EXPECT_THAT(e, ::testing::Not(::testing::HasSubstr("dropping")));
}

TEST_F(QueueTest, ALiveSourceDropsItsOldestQueuedFramesSaysSoOnceAndLeavesNoHole) {
  ASSERT_TRUE(edge_->Serve(State(/*live=*/true), now_).ok());
  Run(absl::Seconds(2));
  EXPECT_TRUE(delivered_.empty());
  EXPECT_LE(max_queued_, kMaxQueued);
  ASSERT_TRUE(vehicle_->AdmitSession(kSession, kKey).ok());
  Run(kPeriod * kChunks);
  const uint64_t dropped = edge_->queued_frames_dropped();
  EXPECT_GE(dropped, 150u);  // ~2 s of 100 chunks/s, less what the queue holds
  EXPECT_EQ(edge_->Describe(kSession)->flows(0).queued_frames_dropped(), dropped);
  ASSERT_EQ(delivered_.size() + dropped, kChunks);
  // What the player got is the stream from the first frame kept on, with no hole.
  for (uint64_t k = 0; k < delivered_.size(); ++k) {
    ASSERT_EQ(delivered_[k], PacedSource::Payload(dropped + k)) << k;
  }
  int reports = 0;
  for (const std::string& e : errors_) reports += e.find("dropping the oldest") != std::string::npos;
  EXPECT_EQ(reports, 1);
}

}  // namespace
}  // namespace smig::dataplane
