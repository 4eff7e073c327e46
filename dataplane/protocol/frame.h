// The data plane's frame: a fixed, versioned 36-byte header and a payload, one frame per
// SCTP message (docs/protocol.md has the layout).
//
//   std::string wire = EncodeFrame({.kind = FrameKind::kData, .flow_id = 1,
//                                   .session_id = 7, .sequence = 42, .source_offset = 0},
//                                  payload);
//   absl::StatusOr<FrameView> f = DecodeFrame(wire);   // views into `wire`
//
// DecodeFrame never trusts its input: every way a frame can be malformed has its own
// FrameError, so the caller can count drops by reason.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "absl/strings/string_view.h"

namespace smig::dataplane {

constexpr uint8_t kFrameVersion = 1;
constexpr size_t kFrameHeaderSize = 36;

enum class FrameKind : uint8_t { kData = 1, kControl = 2 };

// Header flags.
constexpr uint16_t kFlagEndOfFlow = 0x0001;  // the source of this flow ended after this frame

// SCTP streams of a session association: CONTROL frames ride stream 0; flow f's DATA
// rides stream f + 1, every frame of the flow in order. When the edge sends a flow
// redundantly (two paths), the second copy of each frame rides the flow's copy stream,
// f + 1 + kCopyStreamOffset, so that neither copy waits behind the other (SCTP orders
// delivery per stream). Flows 0..6 have a copy stream within the default 16 streams.
constexpr uint16_t kControlStream = 0;
constexpr uint16_t kCopyStreamOffset = 8;
constexpr uint32_t DataStream(uint32_t flow_id) { return flow_id + 1; }
// The copy stream of a flow, or 0 when the flow has none: flow ids from
// kCopyStreamOffset - 1 on (their data streams would overlap the copy streams), or a copy
// stream beyond the association's `streams_out`.
constexpr uint16_t CopyStream(uint32_t flow_id, uint32_t streams_out) {
  return DataStream(flow_id) < kCopyStreamOffset &&
                 DataStream(flow_id) + kCopyStreamOffset < streams_out
             ? static_cast<uint16_t>(DataStream(flow_id) + kCopyStreamOffset)
             : 0;
}
// Whether DATA of `flow_id` may arrive on `stream`: its data stream or its copy stream.
constexpr bool CarriesFlow(uint16_t stream, uint32_t flow_id) {
  return stream == DataStream(flow_id) ||
         (DataStream(flow_id) < kCopyStreamOffset && stream == DataStream(flow_id) + kCopyStreamOffset);
}

struct FrameHeader {
  FrameKind kind = FrameKind::kData;
  uint16_t flow_id = 0;
  uint16_t flags = 0;
  uint64_t session_id = 0;
  uint64_t sequence = 0;       // per flow; continues across servers
  uint64_t source_offset = 0;  // byte offset of the payload in the flow's source
};

struct FrameView {
  FrameHeader header;
  absl::string_view payload;  // points into the decoded buffer
};

// Why a frame was rejected; FrameErrorName() gives a label for metrics.
enum class FrameError { kTooShort, kBadMagic, kBadVersion, kBadKind, kBadLength };
absl::string_view FrameErrorName(FrameError e);
// The FrameError behind a DecodeFrame() status; nullopt for any other status.
absl::optional<FrameError> FrameErrorOf(const absl::Status& status);

std::string EncodeFrame(const FrameHeader& header, absl::string_view payload);
// Writes the header for a payload of `payload_size` bytes into `out` (kFrameHeaderSize
// bytes), so a caller can read the payload in place behind it. Payloads are capped far
// below the 4 GiB the length field can express (EndpointOptions::max_message_size).
void EncodeFrameHeader(const FrameHeader& header, size_t payload_size, char* out);
absl::StatusOr<FrameView> DecodeFrame(absl::string_view wire);

}  // namespace smig::dataplane
