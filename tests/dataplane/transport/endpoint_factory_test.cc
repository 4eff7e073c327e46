#include "dataplane/transport/endpoint.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::transport {
namespace {

using ::testing::HasSubstr;

TEST(ParseStackChoiceTest, AcceptsTheThreeNames) {
  EXPECT_EQ(*ParseStackChoice("auto"), StackChoice::kAuto);
  EXPECT_EQ(*ParseStackChoice("kernel"), StackChoice::kKernel);
  EXPECT_EQ(*ParseStackChoice("userland"), StackChoice::kUserland);
}

TEST(ParseStackChoiceTest, RejectsOthersNamingTheValue) {
  for (absl::string_view bad : {"lksctp", "", "Kernel", "user"}) {
    absl::StatusOr<StackChoice> c = ParseStackChoice(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
    EXPECT_THAT(c.status().message(), HasSubstr(absl::StrCat("\"", bad, "\""))) << bad;
  }
}

TEST(StackNameTest, NamesEachKind) {
  EXPECT_EQ(StackName(v1::STACK_KIND_KERNEL), "kernel");
  EXPECT_EQ(StackName(v1::STACK_KIND_USERLAND), "userland");
  EXPECT_EQ(StackName(v1::STACK_KIND_UNSPECIFIED), "unspecified");
}

TEST(FailoverProfileTest, FastProfileHasTheMeasuredTimers) {
  v1::FailoverProfile p = FastFailoverProfile();
  EXPECT_EQ(FromProto(p.heartbeat_interval()), absl::Milliseconds(100));
  EXPECT_EQ(FromProto(p.rto_max()), absl::Milliseconds(300));
  EXPECT_EQ(FromProto(p.rto_initial()), absl::Milliseconds(200));
  EXPECT_EQ(FromProto(p.sack_delay()), absl::Milliseconds(0));
  EXPECT_EQ(p.path_max_retrans(), 2u);
  ASSERT_TRUE(p.has_max_burst()) << "unset keeps the stacks' burst limit of 4";
  EXPECT_EQ(p.max_burst(), 0u);
}

TEST(FailoverProfileTest, APathIsPotentiallyFailedAtItsFirstTimeoutAndTimeoutsAreShort) {
  // RFC 7829's recommended threshold (the userland stack adds one for usrsctp's spurious
  // timeouts); two timeouts must still fit in the 150 ms a dead radio may cost.
  v1::FailoverProfile p = FastFailoverProfile();
  ASSERT_TRUE(p.has_pf_threshold()) << "an unset threshold turns PF off";
  EXPECT_EQ(p.pf_threshold(), 0u);
  EXPECT_LT(p.pf_threshold() + 1, p.path_max_retrans());
  EXPECT_EQ(FromProto(p.rto_min()), absl::Milliseconds(50));
  EXPECT_LE(FromProto(p.rto_min()) * 3, absl::Milliseconds(150));
}

TEST(FailoverProfileTest, DefaultProfileHasRfc4960TimersAndNoPf) {
  v1::FailoverProfile p = DefaultFailoverProfile();
  EXPECT_EQ(FromProto(p.rto_min()), absl::Milliseconds(1000));
  EXPECT_EQ(FromProto(p.rto_max()), absl::Milliseconds(60000));
  EXPECT_EQ(FromProto(p.heartbeat_interval()), absl::Milliseconds(30000));
  EXPECT_EQ(p.path_max_retrans(), 5u);
  EXPECT_FALSE(p.has_pf_threshold());
}

}  // namespace
}  // namespace smig::transport
