// Redundant multipath end to end (smig-dataplane, real SCTP between namespaces): the active
// path of the vehicle's association dies abruptly (nft drop of everything in and out of the
// vehicle's first radio: the edge's packets leave and vanish) while a VOD plays to a UDP
// player. With policy always, every frame
// is already on its way on the second radio too, so the player sees no gap beyond 25 ms,
// loses nothing and gets nothing twice. With policy off, it waits for SCTP's failover,
// which is reported for comparison. The stack comes from $SMIG_TEST_STACK, as for the other
// suites; the fixture is dataplane_fixture.h's.
#include <signal.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "tests/integration/dataplane_fixture.h"

namespace smig::dataplane::testing {
namespace {

constexpr absl::Duration kGoal = absl::Milliseconds(25);

class RedundancyTest : public DataplaneTest,
                       public ::testing::WithParamInterface<v1::RedundancyPolicy> {
 protected:
  v1::Session EdgeSession() {
    grpc::ClientContext c;
    v1::GetSessionRequest req;
    req.set_session_id(1);
    v1::Session s;
    grpc::Status st = Stub("edge-a")->GetSession(&c, req, &s);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return s;
  }
};

TEST_P(RedundancyTest, TheActivePathDiesAbruptly) {
  const bool always = GetParam() == v1::REDUNDANCY_POLICY_ALWAYS;
  std::string in = MakeStream(10);
  absl::StatusOr<std::unique_ptr<testbed::UdpRecorder>> player =
      testbed::UdpRecorder::Start(net_->ns_a(), 5004);
  ASSERT_TRUE(player.ok()) << player.status();
  auto vehicle = StartVehicle("127.0.0.1:5004");
  auto edge = StartEdge("edge-a");
  ASSERT_TRUE(vehicle && edge);
  Open("edge-a", in, 1, GetParam());
  absl::SleepFor(absl::Seconds(3));

  v1::Session before = EdgeSession();
  EXPECT_EQ(before.redundancy(), GetParam());
  EXPECT_EQ(before.duplicating(), always);
  // Path 1 (the vehicle's first address) is the primary: it carries the data stream.
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(net_->SetDropAtA(1, true).ok());  // the vehicle's first radio goes dark
  WaitDelivered(std::filesystem::file_size(in));
  absl::SleepFor(absl::Milliseconds(200));
  v1::Session after = EdgeSession();
  std::string metrics = Metrics("edge-a", net_->ns_b());
  edge->Kill(SIGTERM);
  vehicle->Kill(SIGTERM);
  EXPECT_EQ(edge->Wait(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(vehicle->Wait(absl::Seconds(10)).value_or(-1), 0);
  (*player)->Stop();

  // Byte for byte: nothing lost, nothing twice; every frame decodes.
  std::string sent = Slurp(in);
  Played played = ExpectPlayedWhole(sent, (*player)->bytes(), in);
  // One copy once the dead path is known: no second active path is left.
  EXPECT_FALSE(after.duplicating());

  Gaps g = PlayerGaps((*player)->datagrams(), {{cut - absl::Milliseconds(50), cut + absl::Seconds(2)}});
  const uint64_t media = after.flows_size() == 1 ? after.flows(0).bytes() : 0;
  std::cout << "[result] " << v1::RedundancyPolicy_Name(GetParam()) << ": largest player gap "
            << absl::FormatDuration(g.worst_migration) << " after the active path died; "
            << SteadyAndWorst(g) << "; " << played.frames_out << " of " << played.frames_in
            << " frames; second copies " << after.redundant_bytes() << " bytes for " << media
            << " bytes of media ("
            << absl::StrFormat("%.0f%%", media ? 100.0 * after.redundant_bytes() / media : 0)
            << ")\n";
  if (always) {
    EXPECT_GT(after.redundant_bytes(), before.redundant_bytes());
    EXPECT_THAT(metrics, ::testing::ContainsRegex("smig_redundant_bytes_total\\{role=\"edge\"\\} [1-9]"));
    JudgeLimit("largest player gap after the active path died", g.worst_migration, kGoal);
  } else {
    EXPECT_EQ(after.redundant_bytes(), 0u);
    EXPECT_LE(g.worst_migration, absl::Milliseconds(400));  // SCTP's failover, reported
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, RedundancyTest,
                         ::testing::Values(v1::REDUNDANCY_POLICY_ALWAYS, v1::REDUNDANCY_POLICY_OFF),
                         [](const auto& param_info) {
                           return param_info.param == v1::REDUNDANCY_POLICY_ALWAYS ? "Always" : "Off";
                         });

}  // namespace
}  // namespace smig::dataplane::testing
