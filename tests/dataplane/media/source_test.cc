// The sources as the edge sees them: MakeSource picks the class a config names, and each
// source says what the edge may do with its flow (serve it again, move it) without the
// edge looking at the configured kind.
#include "dataplane/media/source.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/media/file_source.h"
#include "dataplane/media/tcp_source.h"
#include "dataplane/media/udp_source.h"
#include "gtest/gtest.h"
#include "tests/dataplane/media/ts_builder.h"

namespace smig::dataplane::media {
namespace {

std::string WriteTs(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << testing::BuildCbrTs({.packets = 100});
  return path;
}

TEST(MakeSourceTest, DispatchesOnTheOneofAndRejectsAnEmptyOne) {
  EXPECT_EQ(MakeSource(v1::Source(), 0, absl::Now()).status().code(),
            absl::StatusCode::kInvalidArgument);

  v1::Source udp;
  udp.set_udp_listen("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Source>> u = MakeSource(udp, 0, absl::Now());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_NE(dynamic_cast<UdpSource*>(u->get()), nullptr);
  EXPECT_GE((*u)->fd(), 0);

  v1::Source tcp;
  tcp.set_tcp_listen("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Source>> t = MakeSource(tcp, 0, absl::Now());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NE(dynamic_cast<TcpSource*>(t->get()), nullptr);

  const std::string path = WriteTs("smig_make_source.ts");
  v1::Source file;
  file.set_file(path);
  const absl::Time start = absl::FromUnixSeconds(1'000);
  absl::StatusOr<std::unique_ptr<Source>> f = MakeSource(file, 2 * kChunkBytes, start);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->fd(), -1);
  EXPECT_EQ((*f)->NextDue(), start);
  std::vector<Chunk> first;
  ASSERT_TRUE((*f)->Poll(start, first).ok());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].offset, 2 * kChunkBytes);

  // Catch-up passes through: 5 chunks (35 ms) behind schedule, at twice the rate.
  absl::StatusOr<std::unique_ptr<Source>> fast =
      MakeSource(file, 0, start, 2.0, start - absl::Milliseconds(35));
  ASSERT_TRUE(fast.ok()) << fast.status();
  std::vector<Chunk> burst;
  ASSERT_TRUE((*fast)->Poll(start + absl::Milliseconds(35) + absl::Microseconds(1), burst).ok());
  EXPECT_EQ(burst.size(), 11u);  // chunks 0..10 at 3.5 ms each

  file.set_file(path + ".missing");
  EXPECT_EQ(MakeSource(file, 0, start).status().code(), absl::StatusCode::kNotFound);
}

// Every edge cuts a file alike, so its offsets are checkpoints anywhere.
TEST(SourceCapabilitiesTest, AFileResumesAndMovesByOffset) {
  v1::Source file;
  file.set_file(WriteTs("smig_capabilities.ts"));
  absl::StatusOr<std::unique_ptr<Source>> f = MakeSource(file, 0, absl::Now());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->CanResume());
  EXPECT_TRUE((*f)->CanMove());
  EXPECT_FALSE((*f)->ResumesByFingerprint());
}

// udp_listen: a feed of the flow's own, bound on this edge; nobody else receives it. It
// resumes from its own ring (SeekTo) after a reconnect.
TEST(SourceCapabilitiesTest, AUdpFeedOfTheFlowsOwnResumesButDoesNotMove) {
  v1::Source udp;
  udp.set_udp_listen("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Source>> u = MakeSource(udp, 0, absl::Now());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE((*u)->CanResume());
  EXPECT_FALSE((*u)->CanMove());
  EXPECT_TRUE((*u)->ResumesByFingerprint());
}

// live_feed: a cursor on a standing feed that every edge ingests; a checkpoint is found in
// the feed's ring by the fingerprints before it.
TEST(SourceCapabilitiesTest, ACursorOnAStandingFeedResumesAndMovesByFingerprint) {
  absl::StatusOr<std::shared_ptr<UdpFeed>> feed = UdpFeed::Bind("127.0.0.1:0");
  ASSERT_TRUE(feed.ok()) << feed.status();
  UdpSource cursor(*feed);
  EXPECT_TRUE(cursor.CanResume());
  EXPECT_TRUE(cursor.CanMove());
  EXPECT_TRUE(cursor.ResumesByFingerprint());
}

TEST(SourceCapabilitiesTest, ATcpStreamNeitherResumesNorMoves) {
  v1::Source tcp;
  tcp.set_tcp_listen("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<Source>> t = MakeSource(tcp, 0, absl::Now());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE((*t)->CanResume());
  EXPECT_FALSE((*t)->CanMove());
}

TEST(DescribeSourceTest, NamesTheKindAndItsAddress) {
  v1::Source s;
  EXPECT_EQ(DescribeSource(s), "no source");
  s.set_file("/media/movie.ts");
  EXPECT_EQ(DescribeSource(s), "file /media/movie.ts");
  s.set_udp_listen("0.0.0.0:5004");
  EXPECT_EQ(DescribeSource(s), "udp_listen 0.0.0.0:5004");
  s.set_tcp_listen("127.0.0.1:9000");
  EXPECT_EQ(DescribeSource(s), "tcp_listen 127.0.0.1:9000");
  s.set_live_feed("channel-1");
  EXPECT_EQ(DescribeSource(s), "live_feed channel-1");
}

}  // namespace
}  // namespace smig::dataplane::media
