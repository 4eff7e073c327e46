#include "dataplane/media/ts_pacing.h"

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

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
using ::smig::dataplane::media::testing::kPcrPid;
using ::smig::dataplane::media::testing::kTicksPerPacket;
using ::smig::dataplane::media::testing::kVideoPid;
using ::smig::dataplane::media::testing::TsPacket;
using ::testing::HasSubstr;

constexpr uint64_t kModulus = (uint64_t{1} << 33) * 300;

TEST(ScanTsTimingTest, MeasuresPcrSpanOfConstantRateStream) {
  const std::string ts = BuildCbrTs({.packets = 100, .pcr_every = 10, .first_pcr = 27'000'000});
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->first_pcr, 27'000'000u);
  EXPECT_EQ(t->last_pcr, 27'000'000u + 90 * kTicksPerPacket);
  EXPECT_EQ(t->pcr_count, 10u);
  EXPECT_EQ(t->bytes, 90u * kTsPacket);  // first PCR packet to last, not the whole buffer
  EXPECT_EQ(t->duration, absl::Milliseconds(90));
  EXPECT_DOUBLE_EQ(t->bitrate_bps, kCbrBitrate);
}

TEST(ScanTsTimingTest, DecodesBaseAndExtension) {
  const uint64_t a = 12345 * 300 + 299;  // extension at its maximum
  const uint64_t b = a + 27'000'000;     // one second later
  const std::string ts = TsPacket(kPcrPid, a) + TsPacket(kVideoPid) + TsPacket(kPcrPid, b);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->first_pcr, a);
  EXPECT_EQ(t->last_pcr, b);
  EXPECT_EQ(t->duration, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(t->bitrate_bps, 2.0 * kTsPacket * 8);
}

TEST(ScanTsTimingTest, SubTickDurationsAreExactToTheNanosecond) {
  const std::string ts = TsPacket(kPcrPid, 0) + TsPacket(kPcrPid, 27);  // 27 ticks = 1 us
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->duration, absl::Microseconds(1));
}

TEST(ScanTsTimingTest, FollowsOnlyTheFirstPidThatCarriesAPcr) {
  std::string ts = TsPacket(kPcrPid, 1'000'000);
  ts += TsPacket(kVideoPid, 999'999'999);  // another program's clock: ignored
  ts += TsPacket(kPcrPid, 1'000'000 + 27'000'000);
  ts += TsPacket(kVideoPid, 5);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->pcr_count, 2u);
  EXPECT_EQ(t->duration, absl::Seconds(1));
  EXPECT_EQ(t->bytes, 2 * kTsPacket);
}

TEST(ScanTsTimingTest, IgnoresPcrInPacketFlaggedAsCorrupt) {
  std::string bad = TsPacket(kPcrPid, 5);
  bad[1] = static_cast<char>(bad[1] | 0x80);  // transport_error_indicator
  const std::string ts = bad + TsPacket(kPcrPid, 0) + TsPacket(kPcrPid, 27'000'000);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->first_pcr, 0u);
  EXPECT_EQ(t->pcr_count, 2u);
}

TEST(ScanTsTimingTest, UnwrapsThe33BitBaseOnce) {
  // Starts 50 ms before the clock wraps, runs 100 ms.
  const uint64_t first = kModulus - 50 * kTicksPerPacket;
  const std::string ts = BuildCbrTs({.packets = 101, .pcr_every = 10, .first_pcr = first});
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->first_pcr, first);
  EXPECT_EQ(t->last_pcr, first + 100 * kTicksPerPacket);
  EXPECT_GT(t->last_pcr, kModulus);
  EXPECT_EQ(t->duration, absl::Milliseconds(100));
  EXPECT_DOUBLE_EQ(t->bitrate_bps, kCbrBitrate);
}

TEST(ScanTsTimingTest, RejectsASecondWrap) {
  // top -> wrap -> (a forward run of ~26 h) -> top -> wrap again.
  const std::string ts = TsPacket(kPcrPid, kModulus - 1) + TsPacket(kPcrPid, 10) +
                         TsPacket(kPcrPid, kModulus - 10) + TsPacket(kPcrPid, 5);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("offset 564"));
}

TEST(ScanTsTimingTest, RejectsSmallBackwardJumpAsDiscontinuity) {
  const std::string ts = TsPacket(kPcrPid, 27'000'000) + TsPacket(kPcrPid, 54'000'000) +
                         TsPacket(kPcrPid, 27'000'001);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("discontinuity at offset 376"));
}

TEST(ScanTsTimingTest, NamesOffsetOfFirstBadSyncByte) {
  std::string ts = BuildCbrTs({.packets = 10});
  ts[3 * kTsPacket] = 0x46;
  ts[5 * kTsPacket] = 0x00;
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("offset 564"));
  EXPECT_THAT(t.status().message(), HasSubstr("0x46"));
}

TEST(ScanTsTimingTest, RejectsNonTsAtOffsetZero) {
  absl::StatusOr<TsTiming> t = ScanTsTiming("hello, this is not a transport stream");
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("offset 0"));
}

TEST(ScanTsTimingTest, RejectsM2tsStyle192BytePackets) {
  // Blu-ray M2TS prefixes each packet with 4 bytes: the second "packet" is misaligned.
  std::string ts;
  for (int i = 0; i < 3; ++i) ts += std::string(4, '\0') + TsPacket(kPcrPid, i * 27000u);
  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("offset 0"));
}

TEST(ScanTsTimingTest, TrailingPartialPacketIsCheckedThenIgnored) {
  const std::string ts = BuildCbrTs({.packets = 21});
  absl::StatusOr<TsTiming> good = ScanTsTiming(ts + "\x47\x01\x00");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->duration, absl::Milliseconds(20));
  absl::StatusOr<TsTiming> bad = ScanTsTiming(ts + "xyz");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(absl::StrCat("offset ", 21 * kTsPacket)));
}

TEST(ScanTsTimingTest, NeedsTwoPcrs) {
  for (const std::string& ts :
       {std::string(), TsPacket(kVideoPid) + TsPacket(kVideoPid),
        TsPacket(kPcrPid, 100) + TsPacket(kVideoPid) + TsPacket(kVideoPid, 200)}) {
    absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << t.status();
  }
}

TEST(ScanTsTimingTest, NeedsTheClockToAdvance) {
  absl::StatusOr<TsTiming> t = ScanTsTiming(TsPacket(kPcrPid, 100) + TsPacket(kPcrPid, 100));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition) << t.status();
}

// A real multiplexer's output: ffmpeg's CBR mux at 2000 kbit/s, 2 s of video.
TEST(ScanTsTimingTest, RealFfmpegStreamAtTwoMegabits) {
  if (std::system("command -v ffmpeg >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "ffmpeg is not installed (Debian package ffmpeg)";
  }
  const std::string path = ::testing::TempDir() + "/smig_ts_pacing_ffmpeg.ts";
  const std::string cmd = absl::StrCat(
      "ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi "
      "-i testsrc2=size=320x240:rate=25 -t 2 -c:v mpeg2video -f mpegts -muxrate 2000k '",
      path, "'");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string ts = buf.str();
  std::remove(path.c_str());
  ASSERT_GT(ts.size(), 100 * kTsPacket);

  absl::StatusOr<TsTiming> t = ScanTsTiming(ts);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NEAR(t->bitrate_bps, 2'000'000, 2'000'000 * 0.01);
  EXPECT_NEAR(absl::ToDoubleSeconds(t->duration), 2.0, 0.15);
  EXPECT_GT(t->pcr_count, 20u);  // ffmpeg stamps a PCR at least every 20 ms or so
  // Paced at that rate, the whole file lasts about as long as the video.
  EXPECT_NEAR(ts.size() * 8 / t->bitrate_bps, 2.0, 0.15);
}

}  // namespace
}  // namespace smig::dataplane::media
