#include "dataplane/media/source.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/media/file_source.h"
#include "dataplane/media/tcp_source.h"
#include "dataplane/media/udp_source.h"

namespace smig::dataplane::media {

std::string DescribeSource(const v1::Source& source) {
  switch (source.kind_case()) {
    case v1::Source::kFile:
      return absl::StrCat("file ", source.file());
    case v1::Source::kUdpListen:
      return absl::StrCat("udp_listen ", source.udp_listen());
    case v1::Source::kTcpListen:
      return absl::StrCat("tcp_listen ", source.tcp_listen());
    case v1::Source::kLiveFeed:
      return absl::StrCat("live_feed ", source.live_feed());
    case v1::Source::KIND_NOT_SET:
      break;
  }
  return "no source";
}

absl::StatusOr<std::unique_ptr<Source>> MakeSource(const v1::Source& source,
                                                   uint64_t start_offset, absl::Time start,
                                                   double catch_up,
                                                   absl::optional<absl::Time> start_due) {
  switch (source.kind_case()) {
    case v1::Source::kFile:
      return FileSource::Open(source.file(), start_offset, start, catch_up, start_due);
    case v1::Source::kUdpListen:
      return UdpSource::Bind(source.udp_listen());
    case v1::Source::kTcpListen:
      return TcpSource::Listen(source.tcp_listen());
    case v1::Source::kLiveFeed:
      return absl::InvalidArgumentError(absl::StrCat(
          "live feed '", source.live_feed(), "' is one of an edge's standing feeds, not a "
          "source of its own"));
    case v1::Source::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "the flow's source names no kind (file, udp_listen, tcp_listen or live_feed)");
}

}  // namespace smig::dataplane::media
