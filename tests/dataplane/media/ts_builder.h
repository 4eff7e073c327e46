// Synthetic MPEG-TS for the media tests: packets whose PCRs sit at known values, so the
// expected rate and due times are exact numbers rather than whatever a muxer chose.
//
//   std::string ts = BuildCbrTs({.packets = 100});  // 1.504 Mbit/s: one packet per ms
//
// Written independently of ts_pacing.cc (bit layout from ISO/IEC 13818-1, 2.4.3.4-5).
#pragma once

#include <cstdint>
#include <string>

#include "absl/types/optional.h"

namespace smig::dataplane::media::testing {

constexpr uint16_t kPcrPid = 0x100;
constexpr uint16_t kVideoPid = 0x101;
// At this rate one 188-byte packet lasts exactly 1 ms = 27000 ticks of the 27 MHz clock.
constexpr double kCbrBitrate = 188.0 * 8 * 1000;
constexpr uint64_t kTicksPerPacket = 27000;

// One 188-byte packet; with a PCR, an adaptation field carries it.
inline std::string TsPacket(uint16_t pid, absl::optional<uint64_t> pcr = absl::nullopt,
                            uint8_t continuity = 0) {
  std::string p(188, '\xff');
  p[0] = 0x47;
  p[1] = static_cast<char>((pid >> 8) & 0x1f);
  p[2] = static_cast<char>(pid & 0xff);
  if (!pcr) {
    p[3] = static_cast<char>(0x10 | (continuity & 0xf));  // payload only
    return p;
  }
  p[3] = static_cast<char>(0x30 | (continuity & 0xf));  // adaptation field + payload
  p[4] = 7;                                             // flags byte + 6 PCR bytes
  p[5] = 0x10;                                          // PCR_flag
  const uint64_t base = *pcr / 300;
  const uint64_t ext = *pcr % 300;
  p[6] = static_cast<char>(base >> 25);
  p[7] = static_cast<char>(base >> 17);
  p[8] = static_cast<char>(base >> 9);
  p[9] = static_cast<char>(base >> 1);
  p[10] = static_cast<char>(((base & 1) << 7) | 0x7e | ((ext >> 8) & 1));
  p[11] = static_cast<char>(ext & 0xff);
  return p;
}

struct CbrTsOptions {
  int packets = 100;
  int pcr_every = 10;          // a PCR on packets 0, pcr_every, 2*pcr_every, ...
  uint64_t first_pcr = 27'000'000;
};

// A constant-rate stream at kCbrBitrate: packet i is at first_pcr + i * kTicksPerPacket.
inline std::string BuildCbrTs(const CbrTsOptions& o) {
  std::string ts;
  for (int i = 0; i < o.packets; ++i) {
    if (i % o.pcr_every == 0) {
      ts += TsPacket(kPcrPid, o.first_pcr + static_cast<uint64_t>(i) * kTicksPerPacket,
                     static_cast<uint8_t>(i));
    } else {
      ts += TsPacket(kVideoPid, absl::nullopt, static_cast<uint8_t>(i));
    }
  }
  return ts;
}

}  // namespace smig::dataplane::media::testing
