// Source: one flow's media as it enters an edge, cut into chunks that each become one
// DATA frame. The edge's loop polls every source and sends what is due:
//
//   std::unique_ptr<Source> src = *MakeSource(flow.source(), flow.source_offset(), absl::Now());
//   std::vector<Chunk> chunks;
//   for (;;) {
//     // wait until src->fd() is readable or src->NextDue(), whichever comes first
//     if (absl::Status s = src->Poll(absl::Now(), chunks); !s.ok()) return s;
//     for (Chunk& c : chunks) Send(c);  // c.offset -> FrameHeader::source_offset
//     chunks.clear();
//   }
//
// Sources never block, so one thread can drive every flow of every session, and a flow
// whose source is late holds up no other (DESIGN.md: flows never block each other).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "smig/dataplane/v1/session.pb.h"

namespace smig::dataplane::media {

struct Chunk {
  uint64_t offset;  // where `data` starts in the flow's source
  std::string data;
  bool end_of_flow = false;  // nothing follows; may come with empty data (a closed stream)
  // Live datagrams: ChunkFingerprint(data), by which the next edge finds a checkpoint in
  // the same feed; 0 for other sources.
  uint64_t fingerprint = 0;
};

class Source {  // one flow's media at an edge; not thread-safe; driven by one loop
 public:
  virtual ~Source() = default;
  // Appends every chunk that is due at `now` (never blocks).
  virtual absl::Status Poll(absl::Time now, std::vector<Chunk>& out) = 0;
  // A descriptor that becomes readable when Poll may have live data; -1 for time-driven
  // sources. It may change after a Poll (TcpSource: listener, then connection), so ask
  // again before every wait.
  virtual int fd() const = 0;
  // The earliest time Poll would return more for a time-driven source (InfiniteFuture if none).
  virtual absl::Time NextDue() const = 0;

  // What the edge may do with the flow besides sending what Poll gives. The edge asks the
  // source rather than the configured kind, so a new kind says for itself. The defaults
  // describe a source its factory can open again at any chunk offset and find the same
  // bytes there (a VOD file, a test stream); live sources override them.
  //
  // Can serve the flow again from a checkpoint (an offset, or the fingerprints of the
  // chunks before it): after a reconnect lost frames, the edge serves the flow again from
  // the vehicle's position, on this source (SeekTo) or on one it opens at the checkpoint.
  // False: the flow goes on and the vehicle counts the hole.
  virtual bool CanResume() const { return true; }
  // Serves again from the chunk this source handed out at `offset` (Chunk::offset), on
  // this very source: what a source its factory cannot open twice (a socket of its own)
  // uses to resume. UNIMPLEMENTED (the default): the edge opens a new source instead;
  // NOT_FOUND when that chunk is no longer kept.
  virtual absl::Status SeekTo(uint64_t /*offset*/) {
    return absl::UnimplementedError("this source resumes through its factory");
  }
  // Another edge can continue the flow from this edge's checkpoint because it receives the
  // same media. False for media that only this edge receives.
  virtual bool CanMove() const { return true; }
  // A checkpoint finds its place by the fingerprints of the chunks before it, not by offset:
  // live datagrams, whose offsets count what each edge itself received.
  virtual bool ResumesByFingerprint() const { return false; }
};

// A source as its config names it, for messages: "udp_listen 0.0.0.0:5004",
// "file /media/movie.ts", "live_feed channel-1"; "no source" if no kind is set.
std::string DescribeSource(const v1::Source& source);

// The source a FlowState names. `start_offset`, `start`, `catch_up` and `start_due` place
// a VOD file on the timeline (FileSource::Open has the pacing rule); live sources ignore
// them: their offsets count the bytes this edge has received, and a new edge lines up
// with the previous one by fingerprint (UdpSource::SeekAfter), not by offset.
// INVALID_ARGUMENT if no kind is set, or for a live_feed: those are the edge's standing
// feeds, which EdgeEngine serves itself.
absl::StatusOr<std::unique_ptr<Source>> MakeSource(
    const v1::Source& source, uint64_t start_offset, absl::Time start, double catch_up = 1.0,
    absl::optional<absl::Time> start_due = absl::nullopt);

}  // namespace smig::dataplane::media
