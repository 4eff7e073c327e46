// Loopback helpers for the media tests: plain sockets playing feeders and players, and a
// poll loop that drives a Source the way an edge's loop would.
//
//   int peer = UdpSocketTo(src->local_port());
//   send(peer, "x", 1, 0);
//   std::vector<Chunk> got = PollUntil(*src, [](auto& c) { return c.size() == 1; });
//
// Every wait is bounded so a broken test fails instead of hanging ctest.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/media/source.h"
#include "gtest/gtest.h"

namespace smig::dataplane::media::testing {

inline sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A connected UDP socket to 127.0.0.1:port (blocking); the caller closes it.
inline int UdpSocketTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// A TCP connection to 127.0.0.1:port (blocking), or -1 with errno set.
inline int TcpConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// A socket bound to 127.0.0.1 on a free port; `port` receives it.
inline int BoundSocket(int type, uint16_t& port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  port = ntohs(a.sin_port);
  return fd;
}

inline bool WaitReadable(int fd, absl::Duration timeout) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
}

// Polls `src` whenever its fd is readable until `done(chunks)` or `timeout`.
inline std::vector<Chunk> PollUntil(Source& src,
                                    const std::function<bool(const std::vector<Chunk>&)>& done,
                                    absl::Duration timeout = absl::Seconds(5)) {
  std::vector<Chunk> chunks;
  const absl::Time deadline = absl::Now() + timeout;
  while (!done(chunks) && absl::Now() < deadline) {
    if (src.fd() >= 0) WaitReadable(src.fd(), absl::Milliseconds(50));
    absl::Status s = src.Poll(absl::Now(), chunks);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
  }
  return chunks;
}

inline std::function<bool(const std::vector<Chunk>&)> HasChunks(size_t n) {
  return [n](const std::vector<Chunk>& c) { return c.size() >= n; };
}

inline bool EndsFlow(const std::vector<Chunk>& c) { return !c.empty() && c.back().end_of_flow; }

}  // namespace smig::dataplane::media::testing
