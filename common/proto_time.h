// Conversions between google.protobuf.Duration/Timestamp (the protos' time) and absl's
// Duration/Time (the code's time). Protobuf's TimeUtil does the arithmetic; these name the
// four directions once.
//
//   absl::Duration d = smig::FromProto(config.overlap_timeout());
//   *event.mutable_time() = smig::ToProtoTimestamp(clock.Now());
//   absl::Duration t = smig::FromProtoOr(config.rpc_timeout(), absl::Seconds(5));
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace smig {

inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Nanoseconds(google::protobuf::util::TimeUtil::DurationToNanoseconds(d));
}

inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

inline google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

inline google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// A config's optional duration: `fallback` when it is unset (or not positive).
inline absl::Duration FromProtoOr(const google::protobuf::Duration& d, absl::Duration fallback) {
  absl::Duration out = FromProto(d);
  return out > absl::ZeroDuration() ? out : fallback;
}

}  // namespace smig
