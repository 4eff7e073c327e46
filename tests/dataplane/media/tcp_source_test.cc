#include "dataplane/media/tcp_source.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/media/socket_helpers.h"

namespace smig::dataplane::media {
namespace {

using ::smig::dataplane::media::testing::EndsFlow;
using ::smig::dataplane::media::testing::HasChunks;
using ::smig::dataplane::media::testing::PollUntil;
using ::smig::dataplane::media::testing::TcpConnect;

std::string Bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

void SendAll(int fd, const std::string& data) {
  ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
}

std::unique_ptr<TcpSource> Listen() {
  absl::StatusOr<std::unique_ptr<TcpSource>> src = TcpSource::Listen("127.0.0.1:0");
  EXPECT_TRUE(src.ok()) << src.status();
  if (!src.ok()) return nullptr;
  EXPECT_NE((*src)->local_port(), 0);
  return std::move(*src);
}

TEST(TcpSourceTest, CutsTheStreamIntoWholeChunksAndEndsWithTheRest) {
  std::unique_ptr<TcpSource> src = Listen();
  ASSERT_NE(src, nullptr);
  EXPECT_GE(src->fd(), 0);
  EXPECT_EQ(src->NextDue(), absl::InfiniteFuture());
  std::vector<Chunk> none;
  ASSERT_TRUE(src->Poll(absl::Now(), none).ok());  // nobody connected yet
  EXPECT_TRUE(none.empty());

  int peer = TcpConnect(src->local_port());
  ASSERT_GE(peer, 0);
  const std::string stream = Bytes(3 * kChunkBytes + 100);
  SendAll(peer, stream);
  ::close(peer);

  std::vector<Chunk> got = PollUntil(*src, EndsFlow);
  ASSERT_EQ(got.size(), 4u);
  std::string joined;
  for (size_t k = 0; k < got.size(); ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(got[k].offset, k * kChunkBytes);
    EXPECT_EQ(got[k].data.size(), k < 3 ? kChunkBytes : 100u);
    EXPECT_EQ(got[k].end_of_flow, k == 3);
    joined += got[k].data;
  }
  EXPECT_EQ(joined, stream);
  EXPECT_TRUE(src->finished());
  EXPECT_EQ(src->fd(), -1);
  ASSERT_TRUE(src->Poll(absl::Now(), none).ok());
  EXPECT_TRUE(none.empty());
}

TEST(TcpSourceTest, ChunkBoundariesDoNotFollowTheSendersWrites) {
  std::unique_ptr<TcpSource> src = Listen();
  ASSERT_NE(src, nullptr);
  int peer = TcpConnect(src->local_port());
  ASSERT_GE(peer, 0);
  const std::string stream = Bytes(2 * kChunkBytes);
  // Pieces that straddle the chunk boundary, each read before the next is sent.
  std::vector<Chunk> got;
  for (size_t at = 0; at < stream.size(); at += 500) {
    SendAll(peer, stream.substr(at, 500));
    const size_t want = (at + 500) / kChunkBytes;
    std::vector<Chunk> more = PollUntil(
        *src, [&](const std::vector<Chunk>& c) { return got.size() + c.size() >= want; },
        absl::Milliseconds(200));
    got.insert(got.end(), more.begin(), more.end());
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, stream.substr(0, kChunkBytes));
  EXPECT_EQ(got[1].offset, kChunkBytes);
  EXPECT_FALSE(got[1].end_of_flow);

  // Closing on a chunk boundary still says the flow ended, with an empty last chunk.
  ::close(peer);
  std::vector<Chunk> end = PollUntil(*src, EndsFlow);
  ASSERT_EQ(end.size(), 1u);
  EXPECT_TRUE(end[0].data.empty());
  EXPECT_EQ(end[0].offset, 2 * kChunkBytes);
}

TEST(TcpSourceTest, AcceptsOnlyOneConnection) {
  std::unique_ptr<TcpSource> src = Listen();
  ASSERT_NE(src, nullptr);
  int first = TcpConnect(src->local_port());
  ASSERT_GE(first, 0);
  SendAll(first, "x");
  PollUntil(*src, [&](const std::vector<Chunk>&) { return src->connected(); });
  ASSERT_TRUE(src->connected());
  const int second = TcpConnect(src->local_port());
  EXPECT_EQ(second, -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(first);
}

TEST(TcpSourceTest, ResetConnectionIsAnErrorThatEndsTheSource) {
  std::unique_ptr<TcpSource> src = Listen();
  ASSERT_NE(src, nullptr);
  int peer = TcpConnect(src->local_port());
  ASSERT_GE(peer, 0);
  PollUntil(*src, [&](const std::vector<Chunk>&) { return src->connected(); });
  ASSERT_TRUE(src->connected());
  SendAll(peer, "partial");
  testing::WaitReadable(src->fd(), absl::Seconds(2));
  std::vector<Chunk> got;
  ASSERT_TRUE(src->Poll(absl::Now(), got).ok());
  EXPECT_TRUE(got.empty());  // 7 bytes: not a chunk yet
  // SO_LINGER 0 makes close() send a RST instead of a FIN.
  linger l{.l_onoff = 1, .l_linger = 0};
  ASSERT_EQ(::setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  ::close(peer);
  testing::WaitReadable(src->fd(), absl::Seconds(2));
  absl::Status s = src->Poll(absl::Now(), got);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "partial");
  EXPECT_FALSE(got[0].end_of_flow);
  EXPECT_TRUE(src->finished());
  EXPECT_EQ(src->fd(), -1);
}

TEST(TcpSourceTest, RejectsMalformedAddress) {
  EXPECT_EQ(TcpSource::Listen("127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace smig::dataplane::media
