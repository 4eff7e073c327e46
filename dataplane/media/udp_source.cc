#include "dataplane/media/udp_source.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/media/fingerprint.h"
#include "dataplane/transport/address.h"

namespace smig::dataplane::media {
namespace {
// The largest UDP payload over IPv4; a bigger buffer would never fill.
constexpr size_t kMaxDatagram = 65507;
// Room for a burst while the loop is busy elsewhere (the kernel caps it at rmem_max).
constexpr int kReceiveBuffer = 4 << 20;
}  // namespace

absl::StatusOr<std::unique_ptr<UdpSource>> UdpSource::Bind(absl::string_view address,
                                                           size_t ring_chunks) {
  if (ring_chunks == 0) return absl::InvalidArgumentError("the ring must hold at least one chunk");
  absl::StatusOr<transport::SocketAddress> addr =
      transport::SocketAddress::ParseHostPort(address);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(addr->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("UDP socket for ", address));
  // No SO_REUSEADDR: two sockets on one UDP port would split the feed between them.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
  if (::bind(fd.get(), addr->sockaddr_ptr(), addr->length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind UDP ", address));
  }
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockname UDP ", address));
  }
  absl::StatusOr<transport::SocketAddress> bound =
      transport::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&local), len);
  if (!bound.ok()) return bound.status();
  return std::unique_ptr<UdpSource>(new UdpSource(std::move(fd), bound->port(), ring_chunks));
}

UdpSource::UdpSource(UniqueFd fd, uint16_t local_port, size_t ring_chunks)
    : fd_(std::move(fd)), local_port_(local_port), ring_chunks_(ring_chunks) {
  buffer_.resize(kMaxDatagram);
}

absl::Status UdpSource::Poll(absl::Time, std::vector<Chunk>& out) {
  for (size_t i = replay_from_; i < ring_.size(); ++i) {
    out.push_back(Chunk{.offset = ring_[i].offset, .data = ring_[i].data});
  }
  for (size_t n = 0; n < kMaxDatagramsPerPoll;) {
    const ssize_t got = ::recv(fd_.get(), buffer_.data(), buffer_.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      replay_from_ = ring_.size();
      return absl::ErrnoToStatus(errno, absl::StrCat("recv UDP port ", local_port_));
    }
    ++n;
    if (got == 0) continue;
    std::string data(buffer_.data(), static_cast<size_t>(got));
    if (ring_.size() == ring_chunks_) ring_.pop_front();
    ring_.push_back(Ringed{bytes_received_, ChunkFingerprint(data), data});
    out.push_back(Chunk{.offset = bytes_received_, .data = std::move(data)});
    bytes_received_ += static_cast<uint64_t>(got);
  }
  replay_from_ = ring_.size();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> UdpSource::SeekAfterFingerprint(uint64_t fp) {
  for (size_t i = ring_.size(); i-- > 0;) {
    if (ring_[i].fingerprint == fp) {
      replay_from_ = i + 1;
      return ring_[i].offset + ring_[i].data.size();
    }
  }
  return absl::NotFoundError(absl::StrCat("fingerprint ", absl::Hex(fp, absl::kZeroPad16),
                                          " is not among the last ", ring_.size(),
                                          " datagrams on UDP port ", local_port_));
}

}  // namespace smig::dataplane::media
