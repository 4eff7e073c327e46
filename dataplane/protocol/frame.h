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
