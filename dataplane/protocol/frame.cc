#include "dataplane/protocol/frame.h"

#include <endian.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace smig::dataplane {
namespace {

constexpr char kMagic[2] = {'S', 'M'};
constexpr absl::string_view kErrorPayloadUrl = "type.smig/FrameError";

template <typename T>
void Put(char* p, T v) {
  if constexpr (sizeof(T) == 2) v = htobe16(v);
  if constexpr (sizeof(T) == 4) v = htobe32(v);
  if constexpr (sizeof(T) == 8) v = htobe64(v);
  std::memcpy(p, &v, sizeof v);
}

template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (sizeof(T) == 2) v = be16toh(v);
  if constexpr (sizeof(T) == 4) v = be32toh(v);
  if constexpr (sizeof(T) == 8) v = be64toh(v);
  return v;
}

absl::Status Reject(FrameError e, absl::string_view detail) {
  absl::Status s = absl::InvalidArgumentError(
      absl::StrCat("malformed frame (", FrameErrorName(e), "): ", detail));
  s.SetPayload(kErrorPayloadUrl, absl::Cord(std::string(1, static_cast<char>(e))));
  return s;
}

}  // namespace

absl::string_view FrameErrorName(FrameError e) {
  switch (e) {
    case FrameError::kTooShort: return "too_short";
    case FrameError::kBadMagic: return "bad_magic";
    case FrameError::kBadVersion: return "bad_version";
    case FrameError::kBadKind: return "bad_kind";
    case FrameError::kBadLength: return "bad_length";
  }
  return "unknown";
}

absl::optional<FrameError> FrameErrorOf(const absl::Status& status) {
  auto p = status.GetPayload(kErrorPayloadUrl);
  if (!p || p->size() != 1) return absl::nullopt;
  return static_cast<FrameError>(std::string(*p)[0]);
}

void EncodeFrameHeader(const FrameHeader& h, size_t payload_size, char* out) {
  std::memcpy(out, kMagic, 2);
  out[2] = static_cast<char>(kFrameVersion);
  out[3] = static_cast<char>(h.kind);
  Put<uint16_t>(out + 4, h.flow_id);
  Put<uint16_t>(out + 6, h.flags);
  Put<uint64_t>(out + 8, h.session_id);
  Put<uint64_t>(out + 16, h.sequence);
  Put<uint64_t>(out + 24, h.source_offset);
  Put<uint32_t>(out + 32, static_cast<uint32_t>(payload_size));
}

std::string EncodeFrame(const FrameHeader& header, absl::string_view payload) {
  std::string wire(kFrameHeaderSize + payload.size(), '\0');
  EncodeFrameHeader(header, payload.size(), wire.data());
  std::memcpy(wire.data() + kFrameHeaderSize, payload.data(), payload.size());
  return wire;
}

absl::StatusOr<FrameView> DecodeFrame(absl::string_view wire) {
  if (wire.size() < kFrameHeaderSize) {
    return Reject(FrameError::kTooShort, absl::StrCat(wire.size(), " bytes"));
  }
  const char* p = wire.data();
  if (std::memcmp(p, kMagic, 2) != 0) return Reject(FrameError::kBadMagic, "not an smig frame");
  if (static_cast<uint8_t>(p[2]) != kFrameVersion) {
    return Reject(FrameError::kBadVersion,
                  absl::StrCat("version ", static_cast<int>(static_cast<uint8_t>(p[2])),
                               ", expected ", static_cast<int>(kFrameVersion)));
  }
  uint8_t kind = static_cast<uint8_t>(p[3]);
  if (kind != static_cast<uint8_t>(FrameKind::kData) &&
      kind != static_cast<uint8_t>(FrameKind::kControl)) {
    return Reject(FrameError::kBadKind, absl::StrCat("kind ", static_cast<int>(kind)));
  }
  uint32_t length = Get<uint32_t>(p + 32);
  if (length != wire.size() - kFrameHeaderSize) {
    return Reject(FrameError::kBadLength, absl::StrCat("header says ", length, " payload bytes, ",
                                                       wire.size() - kFrameHeaderSize, " present"));
  }
  FrameView f;
  f.header.kind = static_cast<FrameKind>(kind);
  f.header.flow_id = Get<uint16_t>(p + 4);
  f.header.flags = Get<uint16_t>(p + 6);
  f.header.session_id = Get<uint64_t>(p + 8);
  f.header.sequence = Get<uint64_t>(p + 16);
  f.header.source_offset = Get<uint64_t>(p + 24);
  f.payload = wire.substr(kFrameHeaderSize);
  return f;
}

}  // namespace smig::dataplane
