// UdpSource: a live feed of datagrams (MPEG-TS or RTP from ffmpeg, VLC, a camera) that
// arrives at this edge; each datagram becomes one chunk, unchanged.
//
//   auto src = UdpSource::Bind("0.0.0.0:5004");
//   // Taking a flow over from another edge that ingests the same feed:
//   absl::StatusOr<uint64_t> at = (*src)->SeekAfterFingerprint(flow.last_frame_fingerprint());
//   (*src)->Poll(absl::Now(), chunks);  // from the datagram after the checkpoint on
//
// Datagrams keep their boundaries because RTP and TS-over-UDP receivers expect them to.
// Offsets count the bytes this source has received, so they differ from edge to edge;
// what edges share is the datagrams themselves, hence the ring of recent datagrams and
// their fingerprints (ChunkFingerprint): a new edge finds the previous edge's last sent
// datagram among its own and continues right after it, and replays what it already holds.
// Empty datagrams carry nothing to play and are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/media/source.h"
#include "dataplane/media/unique_fd.h"

namespace smig::dataplane::media {

class UdpSource final : public Source {
 public:
  static constexpr size_t kDefaultRingChunks = 4096;
  // A Poll reads at most this many datagrams, so a flood cannot hold the loop; the socket
  // stays readable and the next Poll takes the rest.
  static constexpr size_t kMaxDatagramsPerPoll = 256;

  // `address` is "ip:port" (port 0: any free port, see local_port()). The ring keeps the
  // last `ring_chunks` datagrams (>= 1). INVALID_ARGUMENT for a malformed address; the
  // errno's code if the socket cannot be bound.
  static absl::StatusOr<std::unique_ptr<UdpSource>> Bind(
      absl::string_view address, size_t ring_chunks = kDefaultRingChunks);

  // Appends, in order, the ring's chunks after a seek point (if a seek is pending), then
  // every datagram waiting on the socket (up to kMaxDatagramsPerPoll).
  absl::Status Poll(absl::Time now, std::vector<Chunk>& out) override;
  int fd() const override { return fd_.get(); }
  absl::Time NextDue() const override { return absl::InfiniteFuture(); }

  // Makes the next Poll start right after the ringed datagram whose fingerprint is `fp`
  // and returns the offset it starts at. The newest match wins: the checkpoint is recent,
  // and an identical older datagram is more likely a repeat (e.g. padding) than the one
  // the previous edge sent. NOT_FOUND if no ringed datagram has it (it has left the ring,
  // or this edge has not received it yet; reading the socket first can help).
  absl::StatusOr<uint64_t> SeekAfterFingerprint(uint64_t fp);

  uint16_t local_port() const { return local_port_; }
  uint64_t bytes_received() const { return bytes_received_; }
  size_t ring_size() const { return ring_.size(); }

 private:
  struct Ringed {
    uint64_t offset;
    uint64_t fingerprint;
    std::string data;
  };
  UdpSource(UniqueFd fd, uint16_t local_port, size_t ring_chunks);

  UniqueFd fd_;
  uint16_t local_port_;
  size_t ring_chunks_;
  std::deque<Ringed> ring_;
  // Index in ring_ of the first datagram the next Poll replays; ring_.size() when none.
  size_t replay_from_ = 0;
  uint64_t bytes_received_ = 0;
  std::string buffer_;  // one datagram's worth, reused
};

}  // namespace smig::dataplane::media
