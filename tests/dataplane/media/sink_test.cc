#include "dataplane/media/sink.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dataplane/media/file_source.h"
#include "dataplane/media/tcp_source.h"
#include "dataplane/media/udp_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/dataplane/media/socket_helpers.h"
#include "tests/dataplane/media/ts_builder.h"

namespace smig::dataplane::media {
namespace {

using ::smig::dataplane::media::testing::BoundSocket;
using ::smig::dataplane::media::testing::EndsFlow;
using ::smig::dataplane::media::testing::HasChunks;
using ::smig::dataplane::media::testing::PollUntil;
using ::smig::dataplane::media::testing::WaitReadable;
using ::testing::HasSubstr;

std::string Loopback(uint16_t port) { return absl::StrCat("127.0.0.1:", port); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- UdpSink

TEST(UdpSinkTest, EachWriteIsOneDatagram) {
  uint16_t port = 0;
  const int player = BoundSocket(SOCK_DGRAM, port);
  absl::StatusOr<std::unique_ptr<UdpSink>> sink = UdpSink::Connect(Loopback(port));
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::vector<std::string> sent = {"one", std::string(kChunkBytes, 'x'), "three"};
  for (const std::string& d : sent) ASSERT_TRUE((*sink)->Write(d).ok());
  for (const std::string& d : sent) {
    ASSERT_TRUE(WaitReadable(player, absl::Seconds(2)));
    std::string buf(65536, '\0');
    const ssize_t n = ::recv(player, buf.data(), buf.size(), 0);
    ASSERT_GE(n, 0);
    EXPECT_EQ(buf.substr(0, static_cast<size_t>(n)), d);
  }
  EXPECT_EQ((*sink)->dropped(), 0u);
  EXPECT_TRUE((*sink)->Close().ok());
  EXPECT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->Write("late").code(), absl::StatusCode::kFailedPrecondition);
  ::close(player);
}

TEST(UdpSinkTest, PlayerNotListeningYetDropsInsteadOfFailing) {
  uint16_t port = 0;
  ::close(BoundSocket(SOCK_DGRAM, port));  // a port with nobody on it
  absl::StatusOr<std::unique_ptr<UdpSink>> sink = UdpSink::Connect(Loopback(port));
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*sink)->Write("frame").ok());
  // The port-unreachable answer to one datagram surfaces on the next send.
  EXPECT_GE((*sink)->dropped(), 1u);
}

TEST(UdpSinkTest, FeedsAUdpSourceDatagramForDatagram) {
  absl::StatusOr<std::unique_ptr<UdpSource>> src = UdpSource::Bind("127.0.0.1:0");
  ASSERT_TRUE(src.ok()) << src.status();
  absl::StatusOr<std::unique_ptr<UdpSink>> sink =
      UdpSink::Connect(Loopback((*src)->feed().local_port()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*sink)->Write(absl::StrCat("d", i)).ok());
  std::vector<Chunk> got = PollUntil(**src, HasChunks(10));
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i].data, absl::StrCat("d", i));
  EXPECT_EQ(got[9].offset, 9u * 2);
}

// ---- TcpSink

TEST(TcpSinkTest, RoundTripThroughATcpSource) {
  absl::StatusOr<std::unique_ptr<TcpSource>> src = TcpSource::Listen("127.0.0.1:0");
  ASSERT_TRUE(src.ok()) << src.status();
  absl::StatusOr<std::unique_ptr<TcpSink>> sink =
      TcpSink::Connect(Loopback((*src)->local_port()));
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    const std::string piece = absl::StrCat("piece ", i, " ", std::string(i * 7, 'a' + i % 26));
    stream += piece;
    ASSERT_TRUE((*sink)->Write(piece).ok());
  }
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->Write("late").code(), absl::StatusCode::kFailedPrecondition);

  std::vector<Chunk> got = PollUntil(**src, EndsFlow);
  std::string joined;
  for (const Chunk& c : got) joined += c.data;
  EXPECT_EQ(joined, stream);
}

TEST(TcpSinkTest, NobodyListeningIsUnavailableAndNamesTheAddress) {
  uint16_t port = 0;
  ::close(BoundSocket(SOCK_STREAM, port));
  absl::StatusOr<std::unique_ptr<TcpSink>> sink = TcpSink::Connect(Loopback(port));
  ASSERT_EQ(sink.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(sink.status().message(), HasSubstr(Loopback(port)));
}

TEST(TcpSinkTest, PlayerThatStopsReadingIsResourceExhaustedNotAStall) {
  uint16_t port = 0;
  const int listener = BoundSocket(SOCK_STREAM, port);
  ASSERT_EQ(::listen(listener, 1), 0);  // accepts in the kernel, never reads
  absl::StatusOr<std::unique_ptr<TcpSink>> sink =
      TcpSink::Connect(Loopback(port), absl::Milliseconds(100), /*max_pending_bytes=*/64 << 10);
  ASSERT_TRUE(sink.ok()) << sink.status();
  const std::string block(1 << 20, 'm');
  absl::Status s;
  const absl::Time began = absl::Now();
  for (int i = 0; i < 256 && s.ok(); ++i) s = (*sink)->Write(block);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr(Loopback(port)));
  EXPECT_LT(absl::Now() - began, absl::Seconds(2));
  EXPECT_GT((*sink)->pending_bytes(), 0u);
  absl::Status closed = (*sink)->Close();  // gives up after the timeout
  EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable) << closed;
  ::close(listener);
}

// ---- FileSink

TEST(FileSinkTest, WritesTruncatesAndCloses) {
  const std::string path = ::testing::TempDir() + "/smig_file_sink.ts";
  std::ofstream(path) << "old content that must go away";
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(path);
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->Write("hello ").ok());
  ASSERT_TRUE((*sink)->Write("").ok());
  ASSERT_TRUE((*sink)->Write("world").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(ReadFile(path), "hello world");
  absl::Status late = (*sink)->Write("!");
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr(path));
}

TEST(FileSinkTest, UnwritablePathIsAnErrorNamingIt) {
  const std::string path = ::testing::TempDir() + "/smig_no_such_dir/out.ts";
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(path);
  ASSERT_EQ(sink.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(sink.status().message(), HasSubstr(path));
}

TEST(FileSinkTest, FileSourceToFileSinkCopiesTheFile) {
  const std::string ts = testing::BuildCbrTs({.packets = 100});
  const std::string in = ::testing::TempDir() + "/smig_copy_in.ts";
  const std::string out = ::testing::TempDir() + "/smig_copy_out.ts";
  std::ofstream(in, std::ios::binary) << ts;
  absl::StatusOr<std::unique_ptr<FileSource>> src = FileSource::Open(in, 0, absl::UnixEpoch());
  ASSERT_TRUE(src.ok()) << src.status();
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(out);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<Chunk> chunks;
  ASSERT_TRUE((*src)->Poll(absl::InfiniteFuture(), chunks).ok());
  for (const Chunk& c : chunks) ASSERT_TRUE((*sink)->Write(c.data).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(ReadFile(out), ts);
}

// ---- factories

TEST(MakeSinkTest, DispatchesOnTheOneofAndRejectsAnEmptyOne) {
  EXPECT_EQ(MakeSink(v1::Sink()).status().code(), absl::StatusCode::kInvalidArgument);

  v1::Sink file;
  file.set_file(::testing::TempDir() + "/smig_make_sink.ts");
  absl::StatusOr<std::unique_ptr<Sink>> f = MakeSink(file);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NE(dynamic_cast<FileSink*>(f->get()), nullptr);

  uint16_t port = 0;
  const int player = BoundSocket(SOCK_DGRAM, port);
  v1::Sink udp;
  udp.set_udp(Loopback(port));
  absl::StatusOr<std::unique_ptr<Sink>> u = MakeSink(udp);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_NE(dynamic_cast<UdpSink*>(u->get()), nullptr);
  ::close(player);

  v1::Sink tcp;
  tcp.set_tcp("not-an-address");
  EXPECT_EQ(MakeSink(tcp).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace smig::dataplane::media
