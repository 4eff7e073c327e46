// FileSource: an MPEG-TS file served as VOD, paced at the rate its PCRs give.
//
//   // First edge: from the top, in real time.
//   auto a = FileSource::Open("/media/movie.ts", 0, absl::Now());
//   // Next edge, taking over at the checkpoint that edge A exported at `exported_at`:
//   // send twice as fast as the stream until back on the schedule the player is on.
//   auto b = FileSource::Open("/media/movie.ts", flow.source_offset(), absl::Now(),
//                             /*catch_up=*/2.0, /*start_due=*/exported_at);
//
// Chunk k is always bytes [k*kChunkBytes, (k+1)*kChunkBytes) of the file, the last one
// shorter and marked end_of_flow: any edge cuts the same file into the same chunks, so a
// checkpoint's offset names the same bytes everywhere.
//
// Pacing. With R the file's bitrate and d(o) = (o - start_offset) * 8 the bits between
// the start and the chunk at offset o, that chunk is due at the later of
//   start + d(o) / (catch_up * R)    how fast this edge may send (the catch-up budget)
//   start_due + d(o) / R             the flow's real-time schedule
// With start_due == start (the default) and catch_up == 1 both lines are the same: real
// time. When the checkpoint was due earlier than `start` (the migration took a while), the
// first line binds: the edge sends at catch_up x R until it meets the real-time line, then
// stays on it, so the vehicle's buffer refills without growing beyond what it had. A
// catch_up of +infinity sends everything behind schedule at once.
//
// The file is memory-mapped and must not be truncated while the source is open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "dataplane/media/source.h"
#include "dataplane/media/ts_pacing.h"

namespace smig::dataplane::media {

class FileSource final : public Source {
 public:
  // Errors: NOT_FOUND (or another errno-derived code) naming the path if it cannot be
  // opened; INVALID_ARGUMENT if it is not a regular, non-empty MPEG-TS file, if
  // start_offset is not a multiple of kChunkBytes, or if catch_up < 1; OUT_OF_RANGE if
  // start_offset lies beyond the end (start_offset == size is a finished flow: Poll
  // returns nothing); FAILED_PRECONDITION if the file has too few PCRs to be paced.
  static absl::StatusOr<std::unique_ptr<FileSource>> Open(
      const std::string& path, uint64_t start_offset, absl::Time start, double catch_up = 1.0,
      absl::optional<absl::Time> start_due = absl::nullopt);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  absl::Status Poll(absl::Time now, std::vector<Chunk>& out) override;
  int fd() const override { return -1; }
  absl::Time NextDue() const override;
  // Every edge cuts the same file into the same chunks, so an offset is a checkpoint
  // anywhere.
  bool CanResume() const override { return true; }
  bool CanMove() const override { return true; }
  bool ResumesByFingerprint() const override { return false; }

  // When the chunk at `offset` is due (`start` for offsets before start_offset).
  absl::Time DueAt(uint64_t offset) const;
  const TsTiming& timing() const { return timing_; }
  double bitrate_bps() const { return timing_.bitrate_bps; }
  uint64_t size() const { return data_.size(); }
  uint64_t next_offset() const { return next_offset_; }

 private:
  FileSource(absl::string_view data, TsTiming timing, uint64_t start_offset, absl::Time start,
             double catch_up, absl::Time start_due);

  absl::string_view data_;  // the mapping, owned; unmapped by the destructor
  TsTiming timing_;
  uint64_t start_offset_;
  uint64_t next_offset_;
  absl::Time start_;
  double catch_up_;
  absl::Time start_due_;
};

}  // namespace smig::dataplane::media
