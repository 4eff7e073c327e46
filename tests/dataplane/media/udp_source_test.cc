#include "dataplane/media/udp_source.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dataplane/media/fingerprint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/media/socket_helpers.h"

namespace smig::dataplane::media {
namespace {

using ::smig::dataplane::media::testing::HasChunks;
using ::smig::dataplane::media::testing::PollUntil;
using ::smig::dataplane::media::testing::UdpSocketTo;
using ::testing::HasSubstr;

std::string Datagram(int i) { return absl::StrCat("datagram-", i, std::string(i % 5, '+')); }

class UdpSourceTest : public ::testing::Test {
 protected:
  void Open(size_t ring = UdpFeed::kDefaultRingChunks) {
    absl::StatusOr<std::unique_ptr<UdpSource>> src = UdpSource::Bind("127.0.0.1:0", ring);
    ASSERT_TRUE(src.ok()) << src.status();
    src_ = std::move(*src);
    ASSERT_NE(src_->feed().local_port(), 0);
    peer_ = UdpSocketTo(src_->feed().local_port());
  }
  void TearDown() override {
    if (peer_ >= 0) ::close(peer_);
  }
  void Send(const std::string& d) {
    ASSERT_EQ(::send(peer_, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  }
  // Sends datagrams [from, to) and reads them all.
  std::vector<Chunk> SendAndPoll(int from, int to) {
    for (int i = from; i < to; ++i) Send(Datagram(i));
    return PollUntil(*src_, HasChunks(static_cast<size_t>(to - from)));
  }

  std::unique_ptr<UdpSource> src_;
  int peer_ = -1;
};

TEST_F(UdpSourceTest, EachDatagramIsOneChunkAtItsByteOffset) {
  Open();
  EXPECT_GE(src_->fd(), 0);
  EXPECT_EQ(src_->NextDue(), absl::InfiniteFuture());
  std::vector<Chunk> none;
  ASSERT_TRUE(src_->Poll(absl::Now(), none).ok());
  EXPECT_TRUE(none.empty());

  std::vector<Chunk> got = SendAndPoll(0, 3);
  ASSERT_EQ(got.size(), 3u);
  uint64_t offset = 0;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].data, Datagram(i));
    EXPECT_EQ(got[i].offset, offset);
    EXPECT_FALSE(got[i].end_of_flow);
    offset += got[i].data.size();
  }
  EXPECT_EQ(src_->feed().bytes_received(), offset);
}

TEST_F(UdpSourceTest, DropsEmptyDatagrams) {
  Open();
  Send("");
  Send("x");
  std::vector<Chunk> got = PollUntil(*src_, HasChunks(1));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "x");
  EXPECT_EQ(got[0].offset, 0u);
}

TEST_F(UdpSourceTest, SeekAfterFingerprintReplaysTheRingFromThere) {
  Open();
  std::vector<Chunk> first = SendAndPoll(0, 6);
  ASSERT_EQ(first.size(), 6u);

  // The previous edge's last sent datagram was #2: continue with #3.
  absl::StatusOr<uint64_t> at = src_->SeekAfter({ChunkFingerprint(Datagram(2))});
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(*at, first[3].offset);

  Send(Datagram(6));
  std::vector<Chunk> replay = PollUntil(*src_, HasChunks(4));
  ASSERT_EQ(replay.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(replay[i].data, Datagram(3 + i));  // ringed #3..#5, then the new #6
  }
  EXPECT_EQ(replay[0].offset, *at);
  EXPECT_EQ(replay[3].offset, first[5].offset + first[5].data.size());

  // A replay happens once.
  std::vector<Chunk> none;
  ASSERT_TRUE(src_->Poll(absl::Now(), none).ok());
  EXPECT_TRUE(none.empty());
}

TEST_F(UdpSourceTest, SeekToTheNewestDatagramResumesWithLiveOnes) {
  Open();
  ASSERT_EQ(SendAndPoll(0, 3).size(), 3u);
  ASSERT_TRUE(src_->SeekAfter({ChunkFingerprint(Datagram(2))}).ok());
  std::vector<Chunk> next = SendAndPoll(3, 4);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].data, Datagram(3));
}

// Padding repeats: one fingerprint can name several datagrams, a run names one place.
TEST_F(UdpSourceTest, ARunOfFingerprintsPlacesTheCheckpointAmongRepeatedDatagrams) {
  Open();
  for (const char* d : {"a", "pad", "pad", "b", "pad", "pad", "c"}) Send(d);
  ASSERT_EQ(PollUntil(*src_, HasChunks(7)).size(), 7u);
  const uint64_t pad = ChunkFingerprint("pad");
  absl::StatusOr<uint64_t> alone = src_->SeekAfter({pad, pad});
  EXPECT_EQ(alone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(alone.status().message(), HasSubstr("appears 2 times"));

  absl::StatusOr<uint64_t> at = src_->SeekAfter({ChunkFingerprint("b"), pad, pad});
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(*at, 1u + 3 + 3 + 1 + 3 + 3);
  std::vector<Chunk> replay;
  ASSERT_TRUE(src_->Poll(absl::Now(), replay).ok());
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0].data, "c");
  EXPECT_EQ(src_->SeekAfter({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// After a reconnect the edge serves again from the datagram at an offset it sent before
// (its own numbering), on the same source: a feed of the flow's own cannot be bound twice.
TEST_F(UdpSourceTest, SeekToAnOffsetReplaysTheRingFromThatDatagram) {
  Open(/*ring=*/4);
  std::vector<Chunk> first = SendAndPoll(0, 6);
  ASSERT_EQ(first.size(), 6u);
  ASSERT_TRUE(src_->SeekTo(first[3].offset).ok());
  std::vector<Chunk> replay;
  ASSERT_TRUE(src_->Poll(absl::Now(), replay).ok());
  ASSERT_EQ(replay.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(replay[i].data, Datagram(3 + i)) << i;
  EXPECT_EQ(replay[0].offset, first[3].offset);
  // #1 has left the ring; an offset inside a datagram names none.
  EXPECT_EQ(src_->SeekTo(first[1].offset).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(src_->SeekTo(first[3].offset + 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(UdpSourceTest, RingKeepsOnlyTheLastNDatagrams) {
  Open(/*ring=*/4);
  ASSERT_EQ(SendAndPoll(0, 6).size(), 6u);
  EXPECT_EQ((src_->feed().end_index() - src_->feed().first_index()), 4u);
  absl::StatusOr<uint64_t> gone = src_->SeekAfter({ChunkFingerprint(Datagram(1))});
  ASSERT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gone.status().message(), HasSubstr("last 4 datagrams"));
  EXPECT_TRUE(src_->SeekAfter({ChunkFingerprint(Datagram(2))}).ok());
}

TEST_F(UdpSourceTest, UnknownFingerprintIsNotFound) {
  Open();
  ASSERT_EQ(SendAndPoll(0, 2).size(), 2u);
  EXPECT_EQ(src_->SeekAfter({0x0123456789abcdefULL}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(UdpSourceTest, ChunksCarryTheirFingerprint) {
  Open();
  std::vector<Chunk> got = SendAndPoll(0, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].fingerprint, ChunkFingerprint(Datagram(1)));
}

// A standing feed shared by several flows: each gets every datagram from when it started,
// and the feed keeps receiving (and ringing) whether or not anyone reads it. The test
// drains the feed as its owner (EdgeEngine::Pump) does; the flows only read the ring.
TEST(UdpFeedTest, FlowsOnOneFeedEachGetEveryDatagramFromTheirStart) {
  absl::StatusOr<std::shared_ptr<UdpFeed>> feed = UdpFeed::Bind("127.0.0.1:0", 8);
  ASSERT_TRUE(feed.ok()) << feed.status();
  int peer = testing::UdpSocketTo((*feed)->local_port());
  auto send = [&](int i) {
    std::string d = Datagram(i);
    ASSERT_EQ(::send(peer, d.data(), d.size(), 0), static_cast<ssize_t>(d.size()));
  };
  auto drain_until = [&](uint64_t n) {  // until the feed has received n datagrams
    for (int tries = 0; tries < 100 && (*feed)->end_index() < n; ++tries) {
      testing::WaitReadable((*feed)->fd(), absl::Milliseconds(20));
      ASSERT_TRUE((*feed)->Drain().ok());
    }
  };
  auto poll = [](UdpSource& flow) {
    std::vector<Chunk> out;
    EXPECT_TRUE(flow.Poll(absl::Now(), out).ok());
    return out;
  };
  send(0);
  drain_until(1);
  UdpSource first(*feed);  // #0 came before it
  send(1);
  drain_until(2);
  std::vector<Chunk> a = poll(first);
  UdpSource second(*feed);
  send(2);
  drain_until(3);
  a = poll(first);
  std::vector<Chunk> b = poll(second);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].data, Datagram(2));
  EXPECT_EQ(b[0].data, Datagram(2));
  EXPECT_EQ((*feed)->end_index(), 3u);

  // A flow that falls more than a ring behind says so, and goes on from the oldest kept.
  for (int i = 3; i < 13; ++i) send(i);
  drain_until(13);
  ASSERT_EQ((*feed)->end_index(), 13u);
  std::vector<Chunk> late;
  absl::Status st = first.Poll(absl::Now(), late);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("2 datagrams"));
  ASSERT_EQ(late.size(), 8u);
  EXPECT_EQ(late[0].data, Datagram(5));
  ::close(peer);
}

TEST(UdpSourceBindTest, RejectsMalformedAddressAndTakenPort) {
  EXPECT_EQ(UdpSource::Bind("localhost:5000").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UdpSource::Bind("127.0.0.1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UdpSource::Bind("127.0.0.1:0", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<UdpSource>> a = UdpSource::Bind("127.0.0.1:0");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<UdpSource>> b =
      UdpSource::Bind(absl::StrCat("127.0.0.1:", (*a)->feed().local_port()));
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr(absl::StrCat((*a)->feed().local_port())));
}

TEST(ChunkFingerprintTest, IsSha256TruncatedToItsFirstEightBytes) {
  // FIPS 180-2 test vector: SHA-256("abc") = ba7816bf 8f01cfea ...
  EXPECT_EQ(ChunkFingerprint("abc"), 0xba7816bf8f01cfeaULL);
  // SHA-256("") = e3b0c442 98fc1c14 ...
  EXPECT_EQ(ChunkFingerprint(""), 0xe3b0c44298fc1c14ULL);
}

}  // namespace
}  // namespace smig::dataplane::media
