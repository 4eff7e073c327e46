#include "dataplane/media/file_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace smig::dataplane::media {

absl::StatusOr<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path,
                                                             uint64_t start_offset,
                                                             absl::Time start, double catch_up,
                                                             absl::optional<absl::Time> start_due) {
  // `!(x >= 1)` also rejects NaN.
  if (!(catch_up >= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("catch-up factor ", catch_up, " must be at least 1"));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open \"", path, "\""));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("stat \"", path, "\""));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is not a regular file"));
  }
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is empty, not MPEG-TS"));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (start_offset > size) {
    return absl::OutOfRangeError(absl::StrCat("start offset ", start_offset, " is beyond the ",
                                              size, " bytes of \"", path, "\""));
  }
  // Chunks start at multiples of the chunk size; the end of the file is a valid place to
  // start too (a session that has sent everything can still move).
  if (start_offset % kChunkBytes != 0 && start_offset != size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "start offset ", start_offset, " is not a multiple of the chunk size ", kChunkBytes,
        " (", path, ")"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrCat("mmap \"", path, "\""));
  absl::string_view data(static_cast<const char*>(map), size);
  // The whole file is read once here; tell the kernel so it reads ahead.
  ::madvise(map, size, MADV_SEQUENTIAL);
  absl::StatusOr<TsTiming> timing = ScanTsTiming(data);
  if (!timing.ok()) {
    ::munmap(map, size);
    return absl::Status(timing.status().code(),
                        absl::StrCat("\"", path, "\": ", timing.status().message()));
  }
  return std::unique_ptr<FileSource>(new FileSource(data, *timing, start_offset, start,
                                                    catch_up, start_due.value_or(start)));
}

FileSource::FileSource(absl::string_view data, TsTiming timing, uint64_t start_offset,
                       absl::Time start, double catch_up, absl::Time start_due)
    : data_(data),
      timing_(timing),
      start_offset_(start_offset),
      next_offset_(start_offset),
      start_(start),
      catch_up_(catch_up),
      start_due_(start_due) {}

FileSource::~FileSource() {
  ::munmap(const_cast<char*>(data_.data()), data_.size());
}

absl::Time FileSource::DueAt(uint64_t offset) const {
  if (offset < start_offset_) return start_;  // before this edge's part: due already
  const double bits = static_cast<double>(offset - start_offset_) * 8.0;
  const absl::Time budget = start_ + absl::Seconds(bits / (catch_up_ * timing_.bitrate_bps));
  const absl::Time schedule = start_due_ + absl::Seconds(bits / timing_.bitrate_bps);
  return std::max(budget, schedule);
}

absl::Time FileSource::NextDue() const {
  return next_offset_ < data_.size() ? DueAt(next_offset_) : absl::InfiniteFuture();
}

absl::Status FileSource::Poll(absl::Time now, std::vector<Chunk>& out) {
  while (next_offset_ < data_.size() && DueAt(next_offset_) <= now) {
    const uint64_t end = std::min<uint64_t>(next_offset_ + kChunkBytes, data_.size());
    out.push_back(Chunk{.offset = next_offset_,
                        .data = std::string(data_.substr(next_offset_, end - next_offset_)),
                        .end_of_flow = end == data_.size()});
    next_offset_ = end;
  }
  return absl::OkStatus();
}

}  // namespace smig::dataplane::media
