#include "dataplane/media/ts_pacing.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"

namespace smig::dataplane::media {
namespace {

// PCR = base * 300 + extension, base 33 bits: the value the clock returns to after a wrap.
constexpr uint64_t kPcrModulus = (uint64_t{1} << 33) * 300;

uint8_t At(absl::string_view p, size_t i) { return static_cast<uint8_t>(p[i]); }

// The packet's PID and PCR, if its adaptation field carries one.
struct PacketPcr {
  uint16_t pid;
  uint64_t pcr;
};
absl::optional<PacketPcr> ReadPcr(absl::string_view p) {
  // A packet the link layer flagged as corrupt may carry any bits in its PCR.
  if (At(p, 1) & 0x80) return absl::nullopt;
  const uint8_t afc = (At(p, 3) >> 4) & 0x3;
  if (afc != 2 && afc != 3) return absl::nullopt;
  const size_t af_len = At(p, 4);
  // Flags byte plus 6 PCR bytes; a longer field than the packet holds is corrupt.
  if (af_len < 7 || af_len > kTsPacket - 5) return absl::nullopt;
  if (!(At(p, 5) & 0x10)) return absl::nullopt;
  const uint64_t base = (uint64_t{At(p, 6)} << 25) | (uint64_t{At(p, 7)} << 17) |
                        (uint64_t{At(p, 8)} << 9) | (uint64_t{At(p, 9)} << 1) |
                        (uint64_t{At(p, 10)} >> 7);
  const uint64_t ext = ((uint64_t{At(p, 10)} & 0x1) << 8) | At(p, 11);
  const uint16_t pid = static_cast<uint16_t>(((At(p, 1) & 0x1f) << 8) | At(p, 2));
  return PacketPcr{pid, base * 300 + ext};
}

}  // namespace

absl::StatusOr<TsTiming> ScanTsTiming(absl::string_view data) {
  TsTiming t;
  absl::optional<uint16_t> pcr_pid;
  uint64_t first_offset = 0;
  uint64_t last_offset = 0;
  uint64_t last_raw = 0;
  uint64_t wrap_add = 0;
  for (size_t off = 0; off < data.size(); off += kTsPacket) {
    if (At(data, off) != kTsSyncByte) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not MPEG-TS: no sync byte 0x47 at offset ", off, " (found 0x",
          absl::Hex(At(data, off), absl::kZeroPad2), ")"));
    }
    if (data.size() - off < kTsPacket) break;  // a cut-off final packet has no usable PCR
    absl::optional<PacketPcr> p = ReadPcr(data.substr(off, kTsPacket));
    if (!p || (pcr_pid && p->pid != *pcr_pid)) continue;
    if (!pcr_pid) {
      pcr_pid = p->pid;
      t.first_pcr = p->pcr;
      first_offset = off;
    } else if (p->pcr < last_raw) {
      // Only a drop of more than half the clock's range is the wrap; a smaller one is a
      // discontinuity (spliced or looped content) whose timing cannot be one rate.
      if (last_raw - p->pcr < kPcrModulus / 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PCR discontinuity at offset ", off, ": PID ", p->pid, " went back from ",
            last_raw, " to ", p->pcr));
      }
      if (wrap_add != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("PCR wrapped a second time at offset ", off));
      }
      wrap_add = kPcrModulus;
    }
    last_raw = p->pcr;
    t.last_pcr = p->pcr + wrap_add;
    last_offset = off;
    ++t.pcr_count;
  }
  if (t.pcr_count < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "found ", t.pcr_count, " PCR(s) in ", data.size(), " bytes; at least 2 are needed"));
  }
  if (t.last_pcr == t.first_pcr) {
    return absl::FailedPreconditionError("the stream's PCRs do not advance; no rate to measure");
  }
  t.bytes = last_offset - first_offset;
  const uint64_t ticks = t.last_pcr - t.first_pcr;
  // Whole seconds and the remainder apart, so nanoseconds stay exact without overflow.
  t.duration = absl::Seconds(ticks / kPcrHz) +
               absl::Nanoseconds((ticks % kPcrHz) * 1000 / 27);
  t.bitrate_bps = static_cast<double>(t.bytes) * 8.0 * kPcrHz / static_cast<double>(ticks);
  return t;
}

}  // namespace smig::dataplane::media
