// Sink: where one flow's media leaves the vehicle's data plane for an unmodified player.
//
//   absl::StatusOr<std::unique_ptr<Sink>> sink = MakeSink(flow.sink());  // e.g. udp "127.0.0.1:1234"
//   if (!sink.ok()) return sink.status();
//   for (const std::string& payload : in_order) RETURN_IF_ERROR((*sink)->Write(payload));
//   (*sink)->Close();  // at end of flow
//
// The reassembler hands over each payload exactly once and in order, so sinks just move
// bytes. None of them ever blocks for long: one loop feeds every flow's sink, and a
// player that stops reading must not stall the others (DESIGN.md: flows never block each
// other). Not thread-safe; owned by the loop. Write after Close is FAILED_PRECONDITION.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "smig/dataplane/v1/session.pb.h"

namespace smig::dataplane::media {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::Status Write(absl::string_view data) = 0;
  // Delivers what is still buffered, then releases the descriptor. Idempotent.
  virtual absl::Status Close() = 0;
};

// Each Write is one datagram to the player's "ip:port" (TS-over-UDP and RTP players
// expect the sender's boundaries). As UDP would, a datagram the kernel cannot take now
// (full buffer) or that meets a closed port (the player has not started yet) is dropped
// and counted, not an error: the stream goes on and a player started later picks it up.
class UdpSink final : public Sink {
 public:
  static absl::StatusOr<std::unique_ptr<UdpSink>> Connect(absl::string_view address);
  absl::Status Write(absl::string_view data) override;
  absl::Status Close() override;
  uint64_t dropped() const { return dropped_; }

 private:
  UdpSink(UniqueFd fd, std::string address) : fd_(std::move(fd)), address_(std::move(address)) {}
  UniqueFd fd_;
  std::string address_;
  uint64_t dropped_ = 0;
};

// Connects to the player's "ip:port" and writes the byte stream. What the socket cannot
// take at once waits in a buffer that later Writes (and Close) drain first. If, after that
// drain, more than max_pending_bytes still wait, the player is not keeping up: Write fails
// with RESOURCE_EXHAUSTED and takes none of `data`, instead of stalling the loop. A Write
// is taken whole or not at all, so the player never sees a torn chunk. No reconnect.
class TcpSink final : public Sink {
 public:
  static constexpr size_t kDefaultMaxPending = 8 << 20;
  // UNAVAILABLE naming the address if nothing accepts within `timeout` (also the longest
  // Close waits to drain the buffer).
  static absl::StatusOr<std::unique_ptr<TcpSink>> Connect(
      absl::string_view address, absl::Duration timeout = absl::Seconds(5),
      size_t max_pending_bytes = kDefaultMaxPending);
  absl::Status Write(absl::string_view data) override;
  // UNAVAILABLE if buffered bytes could not be delivered within the timeout.
  absl::Status Close() override;
  size_t pending_bytes() const { return pending_.size(); }

 private:
  TcpSink(UniqueFd fd, std::string address, absl::Duration timeout, size_t max_pending)
      : fd_(std::move(fd)), address_(std::move(address)), timeout_(timeout),
        max_pending_(max_pending) {}
  // Sends as much of pending_ as the socket takes now.
  absl::Status Drain();

  UniqueFd fd_;
  std::string address_;
  absl::Duration timeout_;
  size_t max_pending_;
  std::string pending_;
};

// Writes the flow to a file, created or truncated on open (a recording, or a test's
// evidence). Errors name the path.
class FileSink final : public Sink {
 public:
  static absl::StatusOr<std::unique_ptr<FileSink>> Open(const std::string& path);
  absl::Status Write(absl::string_view data) override;
  absl::Status Close() override;

 private:
  FileSink(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

// The sink a FlowState names; INVALID_ARGUMENT if no kind is set.
absl::StatusOr<std::unique_ptr<Sink>> MakeSink(const v1::Sink& sink);

}  // namespace smig::dataplane::media
