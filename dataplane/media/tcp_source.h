// TcpSource: a live byte stream (e.g. `ffmpeg ... -f mpegts tcp://edge:port`) from one
// TCP connection accepted on "ip:port", cut into chunks of exactly kChunkBytes.
//
//   auto src = TcpSource::Listen("0.0.0.0:9000");
//   // poll (*src)->fd() for readability: first the listener, then the connection
//   (*src)->Poll(absl::Now(), chunks);
//
// TCP keeps no boundaries, so the source makes its own: whole TS packets, seven to a
// chunk, as they would have travelled over UDP. When the peer closes, what is left (maybe
// nothing) goes out as a final chunk marked end_of_flow, and fd() becomes -1. One
// connection per source: the listener is closed once it has accepted, so a second sender
// is refused rather than left waiting unread in the backlog.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/media/source.h"
#include "dataplane/media/ts_pacing.h"
#include "common/unique_fd.h"

namespace smig::dataplane::media {

class TcpSource final : public Source {
 public:
  // A Poll reads at most this many bytes, so a fast sender cannot hold the loop.
  static constexpr size_t kMaxBytesPerPoll = 1 << 20;

  // `address` is "ip:port" (port 0: any free port, see local_port()). INVALID_ARGUMENT
  // for a malformed address; the errno's code if it cannot listen there.
  static absl::StatusOr<std::unique_ptr<TcpSource>> Listen(absl::string_view address);

  // Accepts the connection if it is waiting, then appends every whole chunk read. A reset
  // connection is an error (its errno's code) that ends the source: what arrived before it
  // is appended, the last piece possibly short and without end_of_flow.
  absl::Status Poll(absl::Time now, std::vector<Chunk>& out) override;
  int fd() const override;
  absl::Time NextDue() const override { return absl::InfiniteFuture(); }
  // One connection to this edge, read once: nothing to serve again, nothing another edge
  // receives.
  bool CanResume() const override { return false; }
  bool CanMove() const override { return false; }

  uint16_t local_port() const { return local_port_; }
  bool connected() const { return conn_.valid(); }
  bool finished() const { return finished_; }

 private:
  TcpSource(UniqueFd listener, uint16_t local_port);

  UniqueFd listener_;
  UniqueFd conn_;
  uint16_t local_port_;
  bool finished_ = false;
  uint64_t next_offset_ = 0;  // of pending_'s first byte
  std::string pending_;       // bytes read but not yet a whole chunk
};

}  // namespace smig::dataplane::media
