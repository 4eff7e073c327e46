// Redundant multipath at the engine level: an edge serves a paced stream to a two-radio
// vehicle over the fake transport, whose paths can die silently (SetPathDark: what goes
// on such a path, and everything after it on the same stream, waits until the stack gives
// the path up, as SCTP's retransmission timer would have it). With two copies on two
// paths and two streams, the player sees no gap; with one, it waits for the failover.
#include <map>

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

using transport::testing::FakeEndpoint;
using transport::testing::FakeNetwork;
using testing::Factory;
using testing::kChunk;
using testing::kChunks;
using testing::kPeriod;
using testing::PacedSource;
namespace tv1 = transport::v1;

const std::string kKey = testing::TestSessionKey("redundant-link-test");
constexpr uint64_t kSession = 9;
constexpr char kRadio1[] = "10.9.0.1:6000";  // the primary: the first address given
constexpr char kRadio2[] = "10.9.1.1:6000";
// How long the stack takes to give a silently dead path up (a retransmission timeout).
constexpr absl::Duration kDetection = absl::Milliseconds(200);

class RedundantLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vehicle_ep_ = net_.CreateEndpoint({.local_addresses = {"10.9.0.1", "10.9.1.1"}, .port = 6000});
    edge_ep_ = net_.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
    vehicle_ = std::make_unique<VehicleEngine>(
        *vehicle_ep_,
        VehicleEngine::Options{.deliver = [this](uint64_t, uint32_t, absl::string_view d) {
          delivered_.emplace_back(d);
          if (last_delivery_ != absl::InfinitePast()) {
            max_gap_ = std::max(max_gap_, now_ - last_delivery_);
          }
          last_delivery_ = now_;
        }});
    edge_ = std::make_unique<EdgeEngine>(
        *edge_ep_, EdgeEngine::Options{.server_id = "edge-a", .make_source = Factory()});
    ASSERT_TRUE(vehicle_->AdmitSession(kSession, kKey).ok());
  }

  v1::SessionState Fresh(v1::RedundancyPolicy policy) {
    v1::SessionState s;
    s.set_format_version(1);
    s.set_session_id(kSession);
    s.set_generation(1);
    s.set_session_key(kKey);
    s.add_vehicle_addresses("10.9.0.1");
    s.add_vehicle_addresses("10.9.1.1");
    s.set_vehicle_port(6000);
    s.set_redundancy(policy);
    v1::FlowState* f = s.add_flows();
    f->set_flow_id(0);
    f->mutable_source()->set_file("synthetic");
    return s;
  }

  // Runs both engines for `d` of simulated time, in 1 ms steps.
  void Run(absl::Duration d) {
    for (absl::Time end = now_ + d; now_ < end; now_ += absl::Milliseconds(1)) {
      testing::Deliver(*edge_, *edge_ep_, now_, 100);
      edge_->Pump(now_);
      testing::Deliver(*vehicle_, *vehicle_ep_, now_, 1000);
    }
  }
  transport::AssocId EdgeAssoc() { return edge_ep_->Associations().at(0); }
  v1::Session Describe() { return *edge_->Describe(kSession); }

  // The primary radio dies silently after 1 s of streaming; the stack notices kDetection
  // later; the stream plays to its end.
  void KillThePrimaryMidStream() {
    Run(absl::Seconds(1));
    ASSERT_GT(delivered_.size(), 90u);
    ASSERT_TRUE(net_.SetPathDark(*edge_ep_, EdgeAssoc(), kRadio1, true).ok());
    Run(kDetection);
    ASSERT_TRUE(net_.SetPathState(*edge_ep_, EdgeAssoc(), kRadio1, tv1::PATH_STATE_INACTIVE).ok());
    Run(absl::Seconds(3) + absl::Milliseconds(500));
  }
  void ExpectWholeInOrder() {
    ASSERT_EQ(delivered_.size(), kChunks);
    for (uint64_t k = 0; k < kChunks; ++k) ASSERT_EQ(delivered_[k], PacedSource::Payload(k)) << k;
  }

  FakeNetwork net_;
  std::unique_ptr<FakeEndpoint> vehicle_ep_, edge_ep_;
  std::unique_ptr<VehicleEngine> vehicle_;
  std::unique_ptr<EdgeEngine> edge_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1);
  absl::Time last_delivery_ = absl::InfinitePast();
  absl::Duration max_gap_ = absl::ZeroDuration();
  std::vector<std::string> delivered_;
};

TEST_F(RedundantLinkTest, AlwaysTheDeathOfThePrimaryCostsThePlayerNothing) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_ALWAYS), now_).ok());
  Run(absl::Milliseconds(300));
  v1::Session s = Describe();
  EXPECT_EQ(s.redundancy(), v1::REDUNDANCY_POLICY_ALWAYS);
  EXPECT_TRUE(s.duplicating());
  EXPECT_EQ(edge_->sessions_duplicating(), 1u);
  // Each copy on its own path: both radios carry every frame.
  tv1::AssociationInfo info = s.associations(0);
  ASSERT_EQ(info.paths_size(), 2);
  EXPECT_GT(info.paths(0).messages_sent(), 20u);
  EXPECT_GT(info.paths(1).messages_sent(), 20u);

  KillThePrimaryMidStream();
  ExpectWholeInOrder();
  // The copy stream on the second radio never waited behind the dead one.
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));
  // After the failover one path is left: one copy.
  EXPECT_FALSE(Describe().duplicating());
  EXPECT_EQ(edge_->sessions_duplicating(), 0u);
  // Every frame sent twice until the failover, then once; the vehicle dropped the copies.
  const uint64_t copied = edge_->redundant_bytes();
  EXPECT_EQ(copied, Describe().redundant_bytes());
  // 1.3 s of the 10 ms stream, and the 100-200 ms until the link's own heartbeats found
  // the dead path (before the stack's kDetection).
  EXPECT_GE(copied, 140 * kChunk);
  EXPECT_LE(copied, 150 * kChunk);
  EXPECT_GE(vehicle_->Flows(kSession).at(0).stats.duplicates, 140u);
  EXPECT_EQ(net_.HeldMessages(*edge_ep_, EdgeAssoc()), 0u);
}

// SCTP gives the dead path up before it has resent what it held there (that waits for its
// next timer): the frames that go once from then on must not queue behind those, on the
// stream they took. They go on the lane that was already on the surviving path.
TEST_F(RedundantLinkTest, AfterTheFailoverOneCopyGoesOnTheLaneOfTheSurvivingPath) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_ALWAYS), now_).ok());
  Run(absl::Seconds(1));
  net_.SetRetransmitOnFailure(false);
  ASSERT_TRUE(net_.SetPathDark(*edge_ep_, EdgeAssoc(), kRadio1, true).ok());
  Run(kDetection);
  ASSERT_TRUE(net_.SetPathState(*edge_ep_, EdgeAssoc(), kRadio1, tv1::PATH_STATE_INACTIVE).ok());
  Run(absl::Milliseconds(300));  // one copy now; the dead path's frames still held
  EXPECT_FALSE(Describe().duplicating());
  EXPECT_GT(net_.HeldMessages(*edge_ep_, EdgeAssoc()), 10u);
  net_.SetRetransmitOnFailure(true);
  Run(absl::Seconds(3));
  ExpectWholeInOrder();
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));
}

// The kernel never times a dead path out while the other path's SACKs have its losses
// fast-retransmitted elsewhere, and sends no heartbeat on a path that carries data: here
// the stack never gives the dark path up. The link's own heartbeats find it.
TEST_F(RedundantLinkTest, AlwaysItsHeartbeatsFindAPathThatDiedUnderTheCopies) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_ALWAYS), now_).ok());
  Run(absl::Seconds(1));
  const uint64_t before = net_.HeartbeatsRequested(*edge_ep_, EdgeAssoc(), kRadio1);
  EXPECT_GE(before, 8u);  // one per 100 ms sample while it duplicates
  EXPECT_GE(net_.HeartbeatsRequested(*edge_ep_, EdgeAssoc(), kRadio2), 8u);
  EXPECT_TRUE(Describe().duplicating());
  ASSERT_TRUE(net_.SetPathDark(*edge_ep_, EdgeAssoc(), kRadio1, true).ok());
  // The second unanswered heartbeat makes it potentially failed: within two samples.
  Run(absl::Milliseconds(210));
  EXPECT_FALSE(Describe().duplicating());
  Run(absl::Seconds(3));
  ExpectWholeInOrder();
  EXPECT_LE(max_gap_, kPeriod + absl::Milliseconds(1));
  // One copy: nothing to probe.
  const uint64_t after = net_.HeartbeatsRequested(*edge_ep_, EdgeAssoc(), kRadio1);
  Run(absl::Milliseconds(500));
  EXPECT_EQ(net_.HeartbeatsRequested(*edge_ep_, EdgeAssoc(), kRadio1), after);
  EXPECT_LE(after - before, 3u);
}

TEST_F(RedundantLinkTest, OffThePlayerWaitsForTheFailover) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_OFF), now_).ok());
  KillThePrimaryMidStream();
  ExpectWholeInOrder();
  EXPECT_GE(max_gap_, kDetection - kPeriod);
  EXPECT_EQ(edge_->redundant_bytes(), 0u);
  EXPECT_EQ(vehicle_->Flows(kSession).at(0).stats.duplicates, 0u);
  EXPECT_EQ(Describe().redundancy(), v1::REDUNDANCY_POLICY_OFF);
  EXPECT_EQ(net_.HeartbeatsRequested(*edge_ep_, EdgeAssoc(), kRadio2), 0u);
}

TEST_F(RedundantLinkTest, AutoDuplicatesAfterTheCarryingPathFailedUntilTheHoldPasses) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_UNSPECIFIED), now_).ok());
  Run(absl::Milliseconds(500));
  EXPECT_EQ(Describe().redundancy(), v1::REDUNDANCY_POLICY_AUTO);
  EXPECT_FALSE(Describe().duplicating());  // healthy: one copy
  EXPECT_EQ(edge_->redundant_bytes(), 0u);
  // The primary fails over and comes back: it may fail again, so two copies for a while.
  ASSERT_TRUE(net_.SetPathState(*edge_ep_, EdgeAssoc(), kRadio1, tv1::PATH_STATE_INACTIVE).ok());
  Run(absl::Milliseconds(300));
  EXPECT_FALSE(Describe().duplicating());  // one path left
  ASSERT_TRUE(net_.SetPathState(*edge_ep_, EdgeAssoc(), kRadio1, tv1::PATH_STATE_ACTIVE).ok());
  Run(absl::Milliseconds(100));
  EXPECT_TRUE(Describe().duplicating());
  const uint64_t copied = edge_->redundant_bytes();
  EXPECT_GT(copied, 0u);
  // Healthy for the hold (5 s from the failure, that is 4.6 s from now): one copy again.
  Run(absl::Milliseconds(4500));
  EXPECT_TRUE(Describe().duplicating());
  Run(absl::Milliseconds(200));
  EXPECT_FALSE(Describe().duplicating());
  ExpectWholeInOrder();
}

TEST_F(RedundantLinkTest, AutoDuplicatesWhileTheSrttOfTheCarryingPathRose) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_AUTO), now_).ok());
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio1, 5).ok());
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio2, 30).ok());
  Run(absl::Seconds(1));
  EXPECT_FALSE(Describe().duplicating());
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio1, 80).ok());  // a congested radio
  Run(absl::Milliseconds(150));
  EXPECT_TRUE(Describe().duplicating());
  EXPECT_GT(edge_->redundant_bytes(), 0u);
}

// The carrying radio goes dark; AUTO notices trouble (here its srtt) a sample later and
// starts the copies. What went once on the dark path since is held there (and every later
// frame with it at the vehicle, which keeps the order) until the stack gives the path up:
// the catch-up sends those frames again on the other path, so the player waits for the
// trouble to be noticed, not for the failover.
TEST_F(RedundantLinkTest, AutoCatchesUpWhatTheDoubtfulPathHeldWhenTheCopiesStart) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_AUTO), now_).ok());
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio1, 5).ok());
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio2, 30).ok());
  Run(absl::Seconds(1));
  ASSERT_FALSE(Describe().duplicating());
  ASSERT_TRUE(net_.SetPathDark(*edge_ep_, EdgeAssoc(), kRadio1, true).ok());
  Run(absl::Milliseconds(30));
  const size_t held = net_.HeldMessages(*edge_ep_, EdgeAssoc());
  EXPECT_GE(held, 2u);
  ASSERT_TRUE(net_.SetSrtt(*edge_ep_, EdgeAssoc(), kRadio1, 80).ok());  // trouble, seen
  Run(absl::Milliseconds(120));                                          // at the next sample
  EXPECT_TRUE(Describe().duplicating());
  Run(kDetection - absl::Milliseconds(150));
  ASSERT_TRUE(net_.SetPathState(*edge_ep_, EdgeAssoc(), kRadio1, tv1::PATH_STATE_INACTIVE).ok());
  Run(absl::Seconds(3));
  ExpectWholeInOrder();
  // Dark for 30 ms, then up to one 100 ms sample until the trouble showed; never the
  // 200 ms the failover took (OffThePlayerWaitsForTheFailover).
  EXPECT_LE(max_gap_, absl::Milliseconds(30) + Redundancy::kSampleInterval + 2 * kPeriod);
  EXPECT_LT(max_gap_, kDetection - kPeriod);
  // The held frames reached the player through the catch-up; SCTP's own resends of
  // them later were dropped as duplicates.
  EXPECT_GE(vehicle_->Flows(kSession).at(0).stats.duplicates, held);
}

TEST_F(RedundantLinkTest, ThePolicyTravelsWithTheCheckpoint) {
  ASSERT_TRUE(edge_->Serve(Fresh(v1::REDUNDANCY_POLICY_ALWAYS), now_).ok());
  Run(absl::Milliseconds(200));
  absl::StatusOr<v1::SessionState> state = edge_->Export(kSession, now_);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->redundancy(), v1::REDUNDANCY_POLICY_ALWAYS);
  EXPECT_EQ(edge_->sessions_by_redundancy(),
            (std::map<v1::RedundancyPolicy, size_t>{{v1::REDUNDANCY_POLICY_ALWAYS, 1}}));
}

}  // namespace
}  // namespace smig::dataplane
