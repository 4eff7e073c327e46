// The redundancy decision against synthetic path events and GetAssociation() samples, on
// a clock the test moves.
#include "dataplane/edge/redundancy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::dataplane {
namespace {

namespace tv1 = transport::v1;
using ::testing::HasSubstr;

constexpr char kA[] = "10.1.0.2:6000";  // the primary
constexpr char kB[] = "10.2.0.2:6000";
constexpr char kC[] = "10.3.0.2:6000";

struct PathSample {
  std::string address;
  tv1::PathState state = tv1::PATH_STATE_ACTIVE;
  double srtt_ms = 10;
  uint32_t rto_ms = 100;
};

tv1::AssociationInfo Info(const std::vector<PathSample>& paths, const std::string& primary = kA) {
  tv1::AssociationInfo info;
  for (const PathSample& s : paths) {
    tv1::PathInfo* p = info.add_paths();
    p->set_address(s.address);
    p->set_state(s.state);
    p->set_srtt_ms(s.srtt_ms);
    p->set_rto_ms(s.rto_ms);
    p->set_primary(s.address == primary);
  }
  return info;
}

tv1::Event PathEvent(tv1::EventType type, const std::string& address) {
  tv1::Event e;
  e.set_type(type);
  e.set_address(address);
  return e;
}

class RedundancyTest : public ::testing::Test {
 protected:
  // Feeds the same sample every kSampleInterval for `d`.
  void Steady(Redundancy& r, const std::vector<PathSample>& paths, absl::Duration d) {
    for (absl::Time end = now_ + d; now_ < end; now_ += Redundancy::kSampleInterval) {
      r.OnSample(Info(paths), now_);
    }
  }
  bool Duplicates(Redundancy& r) { return r.Decide(now_).has_value(); }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

TEST_F(RedundancyTest, OffNeverDuplicatesAndUnspecifiedMeansAuto) {
  Redundancy off(v1::REDUNDANCY_POLICY_OFF);
  off.OnSample(Info({{.address = kA}, {.address = kB}}), now_);
  off.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kA), now_);
  off.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kA), now_);
  EXPECT_FALSE(Duplicates(off));
  EXPECT_FALSE(off.duplicating());
  EXPECT_EQ(off.reason(), "policy off");
  EXPECT_EQ(Redundancy(v1::REDUNDANCY_POLICY_UNSPECIFIED).policy(), v1::REDUNDANCY_POLICY_AUTO);
}

TEST_F(RedundancyTest, AlwaysDuplicatesOnThePrimaryAndTheOtherActivePath) {
  Redundancy r(v1::REDUNDANCY_POLICY_ALWAYS);
  EXPECT_FALSE(Duplicates(r));  // nothing known yet
  EXPECT_EQ(r.reason(), "no active path");
  r.OnSample(Info({{.address = kA}, {.address = kB, .state = tv1::PATH_STATE_UNCONFIRMED}}), now_);
  EXPECT_FALSE(Duplicates(r));  // B not confirmed yet
  EXPECT_THAT(r.reason(), HasSubstr("one active path"));
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kB), now_);
  std::optional<Redundancy::Plan> p = r.Decide(now_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->first, kA);
  EXPECT_EQ(p->second, kB);
  EXPECT_TRUE(r.duplicating());
  EXPECT_EQ(r.reason(), "always");
  // The primary dies: one path is left, which carries the only copy.
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kA), now_);
  EXPECT_FALSE(Duplicates(r));
  // It comes back: two copies again, the primary carrying the first.
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kA), now_);
  p = r.Decide(now_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->first, kA);
}

TEST_F(RedundancyTest, TheCarryingPathFollowsThePrimaryAndItsFailover) {
  Redundancy r(v1::REDUNDANCY_POLICY_ALWAYS);
  r.OnSample(Info({{.address = kA}, {.address = kB}, {.address = kC}}, kC), now_);
  EXPECT_EQ(r.Decide(now_)->first, kC);
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PRIMARY_CHANGED, kB), now_);
  EXPECT_EQ(r.Decide(now_)->first, kB);
  // A potentially failed primary: the stack sends on the first active path.
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED, kB), now_);
  std::optional<Redundancy::Plan> p = r.Decide(now_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->first, kA);
  EXPECT_EQ(p->second, kC);
}

TEST_F(RedundancyTest, TheSecondCopyTakesAnUntroubledPathThenTheLowestSrtt) {
  Redundancy r(v1::REDUNDANCY_POLICY_ALWAYS);
  Steady(r, {{.address = kA, .srtt_ms = 5}, {.address = kB, .srtt_ms = 30}, {.address = kC, .srtt_ms = 12}}, absl::Seconds(1));
  EXPECT_EQ(r.Decide(now_)->second, kC);
  // C fails and recovers: in trouble for the hold time, so B takes the copy.
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kC), now_);
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kC), now_);
  EXPECT_EQ(r.Decide(now_)->second, kB);
  now_ += absl::Seconds(6);
  EXPECT_EQ(r.Decide(now_)->second, kC);
}

TEST_F(RedundancyTest, AutoDuplicatesAfterAFailureOfTheCarryingPathUntilTheHoldPasses) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA}, {.address = kB}}, absl::Seconds(2));
  EXPECT_FALSE(Duplicates(r));
  EXPECT_THAT(r.reason(), HasSubstr("is healthy"));
  // The primary fails (SCTP moves to B, nothing to duplicate on) and comes back.
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kA), now_);
  EXPECT_FALSE(Duplicates(r));
  now_ += absl::Seconds(1);
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kA), now_);
  std::optional<Redundancy::Plan> p = r.Decide(now_);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->first, kA);
  EXPECT_EQ(p->second, kB);
  EXPECT_THAT(r.reason(), HasSubstr("unreachable 1s ago"));
  // Hysteresis: on until the path has been healthy for the hold (5 s from its failure).
  Steady(r, {{.address = kA}, {.address = kB}}, absl::Milliseconds(3900));
  EXPECT_TRUE(Duplicates(r));
  Steady(r, {{.address = kA}, {.address = kB}}, absl::Milliseconds(200));
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, AutoCountsAFailureSeenOnlyInASampleOnce) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA}, {.address = kB}}, absl::Seconds(1));
  // The sample sees the primary down before its event is handled: one failure, not two
  // (two would be flapping).
  r.OnSample(Info({{.address = kA, .state = tv1::PATH_STATE_INACTIVE}, {.address = kB}}), now_);
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kA), now_);
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kA), now_);
  now_ += absl::Seconds(6);
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, AutoDuplicatesWhileTheSrttStandsWellAboveItsMinimum) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA, .srtt_ms = 5}, {.address = kB, .srtt_ms = 50}}, absl::Seconds(2));
  EXPECT_FALSE(Duplicates(r));
  // Over twice the minimum but only 7 ms more: not trouble (a fast path's noise).
  Steady(r, {{.address = kA, .srtt_ms = 12}, {.address = kB, .srtt_ms = 50}}, absl::Seconds(1));
  EXPECT_FALSE(Duplicates(r));
  Steady(r, {{.address = kA, .srtt_ms = 45}, {.address = kB, .srtt_ms = 50}},
         absl::Milliseconds(100));
  EXPECT_TRUE(Duplicates(r));
  EXPECT_THAT(r.reason(), HasSubstr("srtt 45 ms, its recent minimum 5 ms"));
  Steady(r, {{.address = kA, .srtt_ms = 5}, {.address = kB, .srtt_ms = 50}},
         absl::Milliseconds(4800));
  EXPECT_TRUE(Duplicates(r));
  Steady(r, {{.address = kA, .srtt_ms = 5}, {.address = kB, .srtt_ms = 50}},
         absl::Milliseconds(300));
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, APathThatStaysSlowBecomesItsOwnBaseline) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA, .srtt_ms = 10}, {.address = kB}}, absl::Seconds(1));
  Steady(r, {{.address = kA, .srtt_ms = 60}, {.address = kB}}, absl::Seconds(3));
  EXPECT_TRUE(Duplicates(r));
  // After the baseline window (10 s) plus the hold, 60 ms is simply what the path does.
  Steady(r, {{.address = kA, .srtt_ms = 60}, {.address = kB}}, absl::Seconds(13));
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, UnmeasuredSrttIsNoBaseline) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA, .srtt_ms = 0}, {.address = kB, .srtt_ms = 0}}, absl::Seconds(1));
  Steady(r, {{.address = kA, .srtt_ms = 40}, {.address = kB, .srtt_ms = 40}}, absl::Seconds(1));
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, AutoDuplicatesAfterARetransmissionTimeoutBackedTheRtoOff) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA, .rto_ms = 100}, {.address = kB, .rto_ms = 100}}, absl::Seconds(2));
  Steady(r, {{.address = kA, .rto_ms = 150}, {.address = kB, .rto_ms = 100}}, absl::Milliseconds(100));
  EXPECT_FALSE(Duplicates(r));
  Steady(r, {{.address = kA, .rto_ms = 200}, {.address = kB, .rto_ms = 100}}, absl::Milliseconds(100));
  EXPECT_TRUE(Duplicates(r));
  EXPECT_THAT(r.reason(), HasSubstr("RTO 200 ms"));
}

TEST_F(RedundancyTest, AFlappingPathKeepsAutoDuplicatingForTheFlapWindow) {
  Redundancy r(v1::REDUNDANCY_POLICY_AUTO);
  Steady(r, {{.address = kA}, {.address = kB}}, absl::Seconds(1));
  const absl::Time first = now_;
  for (int i = 0; i < 2; ++i) {  // two failures 10 s apart
    r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED, kA), now_);
    r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_UNREACHABLE, kA), now_);  // the same failure
    now_ += absl::Milliseconds(500);
    r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_AVAILABLE, kA), now_);
    if (i == 0) now_ += absl::Milliseconds(9500);
  }
  // 20 s after the second failure the hold is long over, but it flapped within 30 s.
  now_ = first + absl::Seconds(29);
  EXPECT_TRUE(Duplicates(r));
  EXPECT_THAT(r.reason(), HasSubstr("flapping (2 failures within 30s)"));
  now_ = first + absl::Seconds(31);
  EXPECT_FALSE(Duplicates(r));
}

TEST_F(RedundancyTest, ResetAndVanishedPathsForgetWhatWasKnown) {
  Redundancy r(v1::REDUNDANCY_POLICY_ALWAYS);
  r.OnSample(Info({{.address = kA}, {.address = kB}}), now_);
  EXPECT_TRUE(Duplicates(r));
  r.OnSample(Info({{.address = kA}}), now_);  // B is no longer a path of the association
  EXPECT_FALSE(Duplicates(r));
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_ADDED, kB), now_);
  EXPECT_TRUE(Duplicates(r));
  r.OnEvent(PathEvent(tv1::EVENT_TYPE_PATH_REMOVED, kB), now_);
  EXPECT_FALSE(Duplicates(r));
  r.OnSample(Info({{.address = kA}, {.address = kB}}), now_);
  r.Reset();
  EXPECT_FALSE(Duplicates(r));
  EXPECT_EQ(r.reason(), "no active path");
}

}  // namespace
}  // namespace smig::dataplane
