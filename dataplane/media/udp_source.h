// Live UDP media at an edge: datagrams (MPEG-TS or RTP from ffmpeg, VLC, a camera), each
// one chunk, unchanged (RTP and TS-over-UDP receivers expect datagram boundaries).
//
// UdpFeed is the socket and a ring of the last datagrams with their fingerprints
// (ChunkFingerprint). UdpSource is one flow reading a feed. A feed either belongs to one
// flow (Source.udp_listen: UdpSource::Bind) or is a standing feed that the edge ingests
// whether or not anyone watches (Source.live_feed, DataplaneConfig.live_feeds), shared by
// every flow on it:
//
//   std::shared_ptr<UdpFeed> feed = *UdpFeed::Bind("0.0.0.0:5004");
//   UdpSource flow(feed);                                    // from the next datagram on
//   // Taking a flow over from another edge that ingests the same feed:
//   absl::StatusOr<uint64_t> at = flow.SeekAfter(fingerprints_before_the_checkpoint);
//   flow.Poll(absl::Now(), chunks);  // from the datagram after the checkpoint on
//
// Offsets count the bytes this feed has received, so they differ from edge to edge; what
// edges share is the datagrams themselves: a new edge finds the previous edge's last
// datagrams before the checkpoint among its own ringed ones and continues right after.
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
#include "common/unique_fd.h"

namespace smig::dataplane::media {

class UdpFeed {
 public:
  static constexpr size_t kDefaultRingChunks = 4096;
  // A Drain reads at most this many datagrams (and at most a ring's worth), so a flood
  // cannot hold the loop; the socket stays readable and the next Drain takes the rest.
  static constexpr size_t kMaxDatagramsPerDrain = 256;

  struct Datagram {
    uint64_t offset;  // bytes this feed received before it
    uint64_t fingerprint;
    std::string data;
  };

  // `address` is "ip:port" (port 0: any free port, see local_port()). The ring keeps the
  // last `ring_chunks` datagrams (>= 1). INVALID_ARGUMENT for a malformed address; the
  // errno's code if the socket cannot be bound.
  static absl::StatusOr<std::shared_ptr<UdpFeed>> Bind(absl::string_view address,
                                                       size_t ring_chunks = kDefaultRingChunks);

  // Moves what waits on the socket into the ring (never blocks).
  absl::Status Drain();
  int fd() const { return fd_.get(); }
  uint16_t local_port() const { return local_port_; }
  uint64_t bytes_received() const { return bytes_received_; }

  // Datagrams are numbered from 0 in arrival order; the ring holds [first_index, end_index).
  uint64_t first_index() const { return end_index() - ring_.size(); }
  uint64_t end_index() const { return datagrams_received_; }
  const Datagram& at(uint64_t index) const { return ring_[index - first_index()]; }
  // The index of the ringed datagram that ends the run of fingerprints `run` (oldest
  // first): the datagrams before it match the rest of the run (a match cut short by the
  // start of the ring counts when there is no whole one). NOT_FOUND if none does; FAILED_PRECONDITION if several do (a run of repeated
  // datagrams, e.g. padding, gives no single place); INVALID_ARGUMENT for an empty run.
  absl::StatusOr<uint64_t> FindRun(const std::vector<uint64_t>& run) const;

 private:
  UdpFeed(UniqueFd fd, uint16_t local_port, size_t ring_chunks);

  UniqueFd fd_;
  uint16_t local_port_;
  size_t ring_chunks_;
  std::deque<Datagram> ring_;
  uint64_t datagrams_received_ = 0;
  uint64_t bytes_received_ = 0;
  std::string buffer_;  // one datagram's worth, reused
};

class UdpSource final : public Source {
 public:
  // A flow with a feed of its own, bound to `address` (see UdpFeed::Bind); its Poll reads
  // the socket.
  static absl::StatusOr<std::unique_ptr<UdpSource>> Bind(
      absl::string_view address, size_t ring_chunks = UdpFeed::kDefaultRingChunks);
  // A flow on a shared feed, starting with the next datagram to arrive. The feed's owner
  // drains it (EdgeEngine::Pump, once for every flow on it); Poll only reads the ring.
  explicit UdpSource(std::shared_ptr<UdpFeed> feed) : UdpSource(std::move(feed), false) {}

  // Appends every datagram of the feed this flow has not had yet, in order. DATA_LOSS (after
  // appending what is left) if some left the ring before this flow read them.
  absl::Status Poll(absl::Time now, std::vector<Chunk>& out) override;
  int fd() const override { return feed_->fd(); }
  absl::Time NextDue() const override { return absl::InfiniteFuture(); }
  // A flow is found again in its feed's ring: after a reconnect here (SeekTo), and on a
  // shared (standing) feed at any edge that ingests the same feed. A feed of the flow's
  // own reaches this edge alone, so its flow cannot move.
  bool CanResume() const override { return true; }
  bool CanMove() const override { return !owns_feed_; }
  bool ResumesByFingerprint() const override { return true; }

  // Makes the next Poll start right after the ringed run of datagrams whose fingerprints
  // are `run` (UdpFeed::FindRun; the socket is read first) and returns the offset it
  // starts at. NOT_FOUND if the run is not in the ring: it has left it, or this edge has
  // not received it (yet); FAILED_PRECONDITION if it is there more than once.
  absl::StatusOr<uint64_t> SeekAfter(const std::vector<uint64_t>& run);
  // Makes the next Poll start at the ringed datagram at `offset` (this feed's numbering:
  // Chunk::offset as Poll gave it). NOT_FOUND if it has left the ring.
  absl::Status SeekTo(uint64_t offset) override;

  const UdpFeed& feed() const { return *feed_; }

 private:
  UdpSource(std::shared_ptr<UdpFeed> feed, bool owns_feed);

  std::shared_ptr<UdpFeed> feed_;
  bool owns_feed_;  // Poll drains the socket (a feed of this flow's own)
  uint64_t next_;   // the feed's index of the next datagram to hand out
};

}  // namespace smig::dataplane::media
