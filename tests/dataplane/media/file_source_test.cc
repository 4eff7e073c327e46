#include "dataplane/media/file_source.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/media/ts_builder.h"

namespace smig::dataplane::media {
namespace {

using ::smig::dataplane::media::testing::BuildCbrTs;
using ::smig::dataplane::media::testing::kCbrBitrate;
using ::testing::HasSubstr;

// At kCbrBitrate a packet lasts 1 ms, so a chunk of 7 packets lasts 7 ms.
constexpr absl::Duration kChunkTime = absl::Milliseconds(7);
// Due times come from floating-point seconds; probe this far either side of them.
constexpr absl::Duration kSlack = absl::Microseconds(1);

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

std::string WriteFile(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/smig_file_source_" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

std::vector<Chunk> PollAt(FileSource& src, absl::Time now) {
  std::vector<Chunk> out;
  absl::Status s = src.Poll(now, out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

class FileSourceTest : public ::testing::Test {
 protected:
  // 100 packets: 14 whole chunks and a last one of 2 packets; 100 ms at 1.504 Mbit/s.
  void SetUp() override {
    ts_ = BuildCbrTs({.packets = 100});
    path_ = WriteFile("cbr100.ts", ts_);
  }
  std::unique_ptr<FileSource> Open(uint64_t start_offset = 0, double catch_up = 1.0,
                                   absl::optional<absl::Time> start_due = absl::nullopt) {
    absl::StatusOr<std::unique_ptr<FileSource>> src =
        FileSource::Open(path_, start_offset, kStart, catch_up, start_due);
    EXPECT_TRUE(src.ok()) << src.status();
    return src.ok() ? std::move(*src) : nullptr;
  }

  std::string ts_;
  std::string path_;
};

TEST_F(FileSourceTest, CutsTheFileIntoFixedChunks) {
  std::unique_ptr<FileSource> src = Open();
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->fd(), -1);
  EXPECT_DOUBLE_EQ(src->bitrate_bps(), kCbrBitrate);
  EXPECT_EQ(src->size(), ts_.size());

  std::vector<Chunk> chunks = PollAt(*src, absl::InfiniteFuture());
  ASSERT_EQ(chunks.size(), 15u);
  std::string joined;
  for (size_t k = 0; k < chunks.size(); ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(chunks[k].offset, k * kChunkBytes);
    EXPECT_EQ(chunks[k].data.size(), k < 14 ? kChunkBytes : 2 * kTsPacket);
    EXPECT_EQ(chunks[k].end_of_flow, k == 14);
    joined += chunks[k].data;
  }
  EXPECT_EQ(joined, ts_);
  EXPECT_EQ(src->NextDue(), absl::InfiniteFuture());
  EXPECT_TRUE(PollAt(*src, absl::InfiniteFuture()).empty());
}

TEST_F(FileSourceTest, PacesChunksAtTheStreamRate) {
  std::unique_ptr<FileSource> src = Open();
  ASSERT_NE(src, nullptr);
  EXPECT_TRUE(PollAt(*src, kStart - absl::Milliseconds(1)).empty());
  EXPECT_EQ(src->NextDue(), kStart);

  std::vector<Chunk> first = PollAt(*src, kStart);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].offset, 0u);
  EXPECT_LT(absl::AbsDuration(src->NextDue() - (kStart + kChunkTime)), kSlack);
  EXPECT_TRUE(PollAt(*src, kStart + kChunkTime - kSlack).empty());

  std::vector<Chunk> second = PollAt(*src, kStart + kChunkTime + kSlack);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].offset, kChunkBytes);

  // A loop that wakes late gets everything that fell due meanwhile, in order.
  std::vector<Chunk> burst = PollAt(*src, kStart + 5 * kChunkTime + kSlack);
  ASSERT_EQ(burst.size(), 4u);
  EXPECT_EQ(burst.front().offset, 2 * kChunkBytes);
  EXPECT_EQ(burst.back().offset, 5 * kChunkBytes);

  // The last chunk is due 98 ms in; the file's 100 packets last 100 ms.
  EXPECT_TRUE(PollAt(*src, kStart + 14 * kChunkTime - kSlack).size() == 8u);
  std::vector<Chunk> rest = PollAt(*src, kStart + absl::Milliseconds(100));
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_TRUE(rest[0].end_of_flow);
  EXPECT_EQ(src->NextDue(), absl::InfiniteFuture());
}

TEST_F(FileSourceTest, AllChunksAreDueAfterTheWholeDuration) {
  std::unique_ptr<FileSource> src = Open();
  ASSERT_NE(src, nullptr);
  const absl::Duration whole = absl::Seconds(ts_.size() * 8 / kCbrBitrate);
  EXPECT_EQ(whole, absl::Milliseconds(100));
  std::vector<Chunk> all = PollAt(*src, kStart + whole);
  ASSERT_EQ(all.size(), 15u);
  EXPECT_TRUE(all.back().end_of_flow);
}

TEST_F(FileSourceTest, StartOffsetResumesWithTheSameChunks) {
  std::unique_ptr<FileSource> whole = Open();
  std::unique_ptr<FileSource> resumed = Open(5 * kChunkBytes);
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(resumed, nullptr);
  EXPECT_EQ(resumed->next_offset(), 5 * kChunkBytes);
  std::vector<Chunk> a = PollAt(*whole, absl::InfiniteFuture());
  // The resumed flow is on its own clock: its first chunk is due at its start.
  std::vector<Chunk> b = PollAt(*resumed, kStart);
  ASSERT_EQ(b.size(), 1u);
  std::vector<Chunk> rest = PollAt(*resumed, kStart + 9 * kChunkTime + kSlack);
  b.insert(b.end(), rest.begin(), rest.end());
  ASSERT_EQ(b.size(), 10u);
  for (size_t i = 0; i < b.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(b[i].offset, a[i + 5].offset);
    EXPECT_EQ(b[i].data, a[i + 5].data);
    EXPECT_EQ(b[i].end_of_flow, a[i + 5].end_of_flow);
  }
}

TEST_F(FileSourceTest, RejectsStartOffsetOffTheChunkGrid) {
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path_, 188, kStart);
  ASSERT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(src.status().message(), HasSubstr("multiple"));
}

TEST_F(FileSourceTest, RejectsStartOffsetBeyondTheEnd) {
  absl::StatusOr<std::unique_ptr<FileSource>> src =
      FileSource::Open(path_, 20 * kChunkBytes, kStart);
  EXPECT_EQ(src.status().code(), absl::StatusCode::kOutOfRange);
}

TEST(FileSourceExactTest, FileOfWholeChunksEndsWithAFullChunkAndMayStartAtItsEnd) {
  const std::string ts = BuildCbrTs({.packets = 70});  // exactly 10 chunks
  const std::string path = WriteFile("cbr70.ts", ts);
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path, 0, kStart);
  ASSERT_TRUE(src.ok()) << src.status();
  std::vector<Chunk> all = PollAt(**src, absl::InfiniteFuture());
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all.back().data.size(), kChunkBytes);
  EXPECT_TRUE(all.back().end_of_flow);

  // A checkpoint taken after the last chunk: a finished flow, nothing more to send.
  absl::StatusOr<std::unique_ptr<FileSource>> done = FileSource::Open(path, ts.size(), kStart);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ((*done)->NextDue(), absl::InfiniteFuture());
  EXPECT_TRUE(PollAt(**done, absl::InfiniteFuture()).empty());
}

// A file whose size is not a multiple of the chunk size may also start at its very end:
// a session that sent everything can still migrate.
TEST(FileSourceExactTest, FileWithAShortLastChunkMayStartAtItsEnd) {
  const std::string ts = BuildCbrTs({.packets = 75});  // 10 chunks and 5 packets
  const std::string path = WriteFile("cbr75.ts", ts);
  ASSERT_NE(ts.size() % kChunkBytes, 0u);
  absl::StatusOr<std::unique_ptr<FileSource>> done = FileSource::Open(path, ts.size(), kStart);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(PollAt(**done, absl::InfiniteFuture()).empty());
}

TEST_F(FileSourceTest, CatchUpRunsFasterUntilBackOnSchedule) {
  // The checkpoint was due 35 ms (5 chunks) before this edge starts. At twice the rate the
  // edge meets the real-time schedule 70 ms of media (10 chunks) later, at start + 35 ms.
  const absl::Time due = kStart - 5 * kChunkTime;
  std::unique_ptr<FileSource> src = Open(0, 2.0, due);
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(PollAt(*src, kStart).size(), 1u);
  EXPECT_LT(absl::AbsDuration(src->NextDue() - (kStart + kChunkTime / 2)), kSlack);
  // Chunks 1..10 at 3.5 ms each.
  EXPECT_EQ(PollAt(*src, kStart + 10 * kChunkTime / 2 + kSlack).size(), 10u);
  // Then real time again: chunk 11 at (11 - 5) * 7 ms = 42 ms, not 38.5 ms.
  EXPECT_LT(absl::AbsDuration(src->DueAt(11 * kChunkBytes) - (kStart + 6 * kChunkTime)), kSlack);
  EXPECT_TRUE(PollAt(*src, kStart + 6 * kChunkTime - kSlack).empty());
  EXPECT_EQ(PollAt(*src, kStart + 6 * kChunkTime + kSlack).size(), 1u);
}

TEST_F(FileSourceTest, UnlimitedCatchUpSendsEverythingBehindScheduleAtOnce) {
  std::unique_ptr<FileSource> src =
      Open(0, std::numeric_limits<double>::infinity(), kStart - 5 * kChunkTime);
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(PollAt(*src, kStart).size(), 6u);  // chunks 0..5 were all due by now
  EXPECT_LT(absl::AbsDuration(src->NextDue() - (kStart + kChunkTime)), kSlack);
}

TEST_F(FileSourceTest, CatchUpAheadOfScheduleStillWaitsForRealTime) {
  // start_due later than start: the schedule line binds, whatever the catch-up factor.
  std::unique_ptr<FileSource> src = Open(0, 4.0, kStart + absl::Milliseconds(10));
  ASSERT_NE(src, nullptr);
  EXPECT_TRUE(PollAt(*src, kStart).empty());
  EXPECT_EQ(src->NextDue(), kStart + absl::Milliseconds(10));
}

TEST_F(FileSourceTest, RejectsCatchUpBelowOne) {
  for (double c : {0.5, 0.0, -1.0, std::nan("")}) {
    absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path_, 0, kStart, c);
    EXPECT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument) << c;
  }
}

TEST(FileSourceErrorsTest, MissingFileIsNotFoundAndNamesThePath) {
  const std::string path = ::testing::TempDir() + "/smig_no_such_dir/movie.ts";
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path, 0, kStart);
  ASSERT_EQ(src.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(src.status().message(), HasSubstr(path));
}

TEST(FileSourceErrorsTest, NonTsFileIsInvalidArgument) {
  const std::string path = WriteFile("notes.txt", std::string(4096, 'a'));
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path, 0, kStart);
  ASSERT_EQ(src.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(src.status().message(), HasSubstr(path));
  EXPECT_THAT(src.status().message(), HasSubstr("offset 0"));
}

TEST(FileSourceErrorsTest, EmptyFileAndDirectoryAreInvalidArgument) {
  const std::string empty = WriteFile("empty.ts", "");
  EXPECT_EQ(FileSource::Open(empty, 0, kStart).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FileSource::Open(::testing::TempDir(), 0, kStart).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FileSourceErrorsTest, TsWithoutPcrCannotBePaced) {
  const std::string path =
      WriteFile("nopcr.ts", BuildCbrTs({.packets = 20, .pcr_every = 1000}));  // only packet 0
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(path, 0, kStart);
  ASSERT_EQ(src.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(src.status().message(), HasSubstr(path));
}

}  // namespace
}  // namespace smig::dataplane::media
