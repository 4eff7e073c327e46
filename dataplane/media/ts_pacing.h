// MPEG-TS timing: how fast a transport stream must be sent, measured from its own clock.
//
//   absl::StatusOr<TsTiming> t = ScanTsTiming(file_bytes);
//   if (!t.ok()) return t.status();
//   absl::Duration send_time = absl::Seconds(file_bytes.size() * 8 / t->bitrate_bps);
//
// A VOD edge must not push a file faster than its decoder would play it (the vehicle's
// buffers are bounded) nor slower (the player stalls). The PCR, the 27 MHz clock the
// multiplexer stamps into the stream, says exactly which byte belongs at which instant.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace smig::dataplane::media {

constexpr size_t kTsPacket = 188;
// Seven packets: the payload ffmpeg and VLC put in one UDP datagram, and small enough for
// one SCTP message without fragmenting on a 1500-byte path.
constexpr size_t kChunkBytes = 7 * kTsPacket;
constexpr uint8_t kTsSyncByte = 0x47;
// 27 MHz ticks in one second.
constexpr uint64_t kPcrHz = 27'000'000;

struct TsTiming {
  // In 27 MHz ticks. last_pcr is unwrapped: after the 33-bit base wraps (every ~26.5 h)
  // it is larger than any PCR the stream can carry, so last_pcr - first_pcr stays true.
  uint64_t first_pcr = 0;
  uint64_t last_pcr = 0;
  uint64_t pcr_count = 0;  // PCRs seen on the PCR PID, the first and last included
  // The bytes the PCRs measure: from the packet carrying the first PCR to the packet
  // carrying the last. Not the whole buffer: the bytes before the first PCR and after the
  // last have no clock, and counting them would overstate the rate.
  uint64_t bytes = 0;
  absl::Duration duration;  // last_pcr - first_pcr
  double bitrate_bps = 0;   // bytes * 8 / duration: the multiplex rate
};

// Walks `data` packet by packet and measures the PCR of the first PID that carries one.
// Errors: INVALID_ARGUMENT naming the offset of the first packet without a sync byte (a
// trailing piece shorter than a packet is checked too, then ignored), or of a PCR that
// jumps backwards other than by the 33-bit wrap (a discontinuity: no single rate fits),
// or of a second wrap; FAILED_PRECONDITION if fewer than two PCRs (or no time) are found.
absl::StatusOr<TsTiming> ScanTsTiming(absl::string_view data);

}  // namespace smig::dataplane::media
