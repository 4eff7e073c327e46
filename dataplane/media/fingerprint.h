// ChunkFingerprint: a 64-bit name for a chunk's bytes that every edge computes alike.
//
//   flow_state.set_last_frame_fingerprint(ChunkFingerprint(last_sent.data));   // edge A
//   absl::StatusOr<uint64_t> at =
//       udp_source.SeekAfterFingerprint(flow_state.last_frame_fingerprint());  // edge B
//
// The checkpoint of a live flow travels between machines, so the hash must not depend on
// the process (absl::Hash is seeded per process). SHA-256 truncated to its first 8 bytes
// (big-endian) is stable, and collisions between distinct datagrams are negligible.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace smig::dataplane::media {

uint64_t ChunkFingerprint(absl::string_view data);

}  // namespace smig::dataplane::media
