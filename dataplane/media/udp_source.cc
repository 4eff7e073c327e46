#include "dataplane/media/udp_source.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dataplane/media/fingerprint.h"
#include "dataplane/transport/address.h"

namespace smig::dataplane::media {
namespace {
// The largest UDP payload over IPv4; a bigger buffer would never fill.
constexpr size_t kMaxDatagram = 65507;
// Room for a burst while the loop is busy elsewhere (the kernel caps it at rmem_max).
constexpr int kReceiveBuffer = 4 << 20;
}  // namespace

absl::StatusOr<std::shared_ptr<UdpFeed>> UdpFeed::Bind(absl::string_view address,
                                                       size_t ring_chunks) {
  if (ring_chunks == 0) return absl::InvalidArgumentError("the ring must hold at least one chunk");
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress addr,
                        transport::SocketAddress::ParseHostPort(address));
  UniqueFd fd(::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("UDP socket for ", address));
  // No SO_REUSEADDR: two sockets on one UDP port would split the feed between them.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
  if (::bind(fd.get(), addr.sockaddr_ptr(), addr.length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind UDP ", address));
  }
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress bound,
                        transport::SocketAddress::LocalOf(fd.get(), absl::StrCat("UDP ", address)));
  return std::shared_ptr<UdpFeed>(new UdpFeed(std::move(fd), bound.port(), ring_chunks));
}

UdpFeed::UdpFeed(UniqueFd fd, uint16_t local_port, size_t ring_chunks)
    : fd_(std::move(fd)), local_port_(local_port), ring_chunks_(ring_chunks) {
  buffer_.resize(kMaxDatagram);
}

absl::Status UdpFeed::Drain() {
  // Never more than the ring holds, so that a flow reading right after a Drain misses none.
  for (size_t n = 0; n < std::min(kMaxDatagramsPerDrain, ring_chunks_);) {
    const ssize_t got = ::recv(fd_.get(), buffer_.data(), buffer_.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return absl::ErrnoToStatus(errno, absl::StrCat("recv UDP port ", local_port_));
    }
    ++n;
    if (got == 0) continue;
    std::string data(buffer_.data(), static_cast<size_t>(got));
    if (ring_.size() == ring_chunks_) ring_.pop_front();
    const uint64_t fp = ChunkFingerprint(data);
    ring_.push_back(Datagram{bytes_received_, fp, std::move(data)});
    ++datagrams_received_;
    bytes_received_ += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> UdpFeed::FindRun(const std::vector<uint64_t>& run) const {
  if (run.empty()) return absl::InvalidArgumentError("an empty run of fingerprints");
  // Whole matches first; a match cut short by the start of the ring counts only when no
  // whole one exists.
  std::vector<uint64_t> whole, cut;
  for (size_t end = 0; end < ring_.size(); ++end) {
    bool match = true;
    size_t k = 0;
    for (; match && k < run.size() && k <= end; ++k) {
      match = ring_[end - k].fingerprint == run[run.size() - 1 - k];
    }
    if (match) (k == run.size() ? whole : cut).push_back(first_index() + end);
  }
  const std::vector<uint64_t>& found = whole.empty() ? cut : whole;
  if (found.size() == 1) return found.front();
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "the run of ", run.size(), " datagrams ending with fingerprint ",
        absl::Hex(run.back(), absl::kZeroPad16), " is not among the last ", ring_.size(),
        " datagrams on UDP port ", local_port_));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the run of ", run.size(), " datagrams ending with fingerprint ",
      absl::Hex(run.back(), absl::kZeroPad16), " appears ", found.size(),
      " times among the last ", ring_.size(), " datagrams on UDP port ", local_port_,
      " (repeated datagrams such as padding): no single place to continue from"));
}

absl::StatusOr<std::unique_ptr<UdpSource>> UdpSource::Bind(absl::string_view address,
                                                           size_t ring_chunks) {
  SMIG_ASSIGN_OR_RETURN(std::shared_ptr<UdpFeed> feed, UdpFeed::Bind(address, ring_chunks));
  return std::unique_ptr<UdpSource>(new UdpSource(std::move(feed), true));
}

UdpSource::UdpSource(std::shared_ptr<UdpFeed> feed, bool owns_feed)
    : feed_(std::move(feed)), owns_feed_(owns_feed) {
  (void)feed_->Drain();  // what is already queued came before this flow started
  next_ = feed_->end_index();
}

absl::Status UdpSource::Poll(absl::Time, std::vector<Chunk>& out) {
  absl::Status status = owns_feed_ ? feed_->Drain() : absl::OkStatus();
  uint64_t missed = 0;
  if (next_ < feed_->first_index()) {
    missed = feed_->first_index() - next_;
    next_ = feed_->first_index();
  }
  for (; next_ < feed_->end_index(); ++next_) {
    const UdpFeed::Datagram& d = feed_->at(next_);
    out.push_back(Chunk{.offset = d.offset, .data = d.data, .fingerprint = d.fingerprint});
  }
  if (missed != 0 && status.ok()) {
    status = absl::DataLossError(absl::StrCat(missed, " datagrams on UDP port ",
                                              feed_->local_port(),
                                              " left the ring before this flow read them"));
  }
  return status;
}

absl::StatusOr<uint64_t> UdpSource::SeekAfter(const std::vector<uint64_t>& run) {
  SMIG_RETURN_IF_ERROR(feed_->Drain());
  SMIG_ASSIGN_OR_RETURN(const uint64_t at, feed_->FindRun(run));
  next_ = at + 1;
  const UdpFeed::Datagram& d = feed_->at(at);
  return d.offset + d.data.size();
}

absl::Status UdpSource::SeekTo(uint64_t offset) {
  if (owns_feed_) SMIG_RETURN_IF_ERROR(feed_->Drain());
  // Offsets grow with the index: a binary search over the ring.
  uint64_t lo = feed_->first_index(), hi = feed_->end_index();
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (feed_->at(mid).offset < offset) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == feed_->end_index() || feed_->at(lo).offset != offset) {
    return absl::NotFoundError(absl::StrCat("the datagram at offset ", offset, " of UDP port ",
                                            feed_->local_port(), " is no longer in the ring"));
  }
  next_ = lo;
  return absl::OkStatus();
}

}  // namespace smig::dataplane::media
