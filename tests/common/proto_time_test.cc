#include "common/proto_time.h"

#include "gtest/gtest.h"

namespace smig {
namespace {

TEST(ProtoTimeTest, RoundTrips) {
  const absl::Duration d = absl::Milliseconds(1500) + absl::Nanoseconds(7);
  EXPECT_EQ(FromProto(ToProtoDuration(d)), d);
  EXPECT_EQ(ToProtoDuration(absl::Seconds(2)).seconds(), 2);
  const absl::Time t = absl::FromUnixNanos(1'700'000'000'123'456'789);
  EXPECT_EQ(FromProto(ToProtoTimestamp(t)), t);
  EXPECT_EQ(ToProtoTimestamp(t).nanos(), 123'456'789);
}

TEST(ProtoTimeTest, FallbackForAnUnsetDuration) {
  EXPECT_EQ(FromProtoOr(google::protobuf::Duration(), absl::Seconds(5)), absl::Seconds(5));
  EXPECT_EQ(FromProtoOr(ToProtoDuration(absl::Seconds(1)), absl::Seconds(5)), absl::Seconds(1));
  EXPECT_EQ(FromProtoOr(ToProtoDuration(-absl::Seconds(1)), absl::Seconds(5)), absl::Seconds(5));
}

}  // namespace
}  // namespace smig
