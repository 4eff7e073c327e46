#include "dataplane/media/tcp_source.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dataplane/transport/address.h"

namespace smig::dataplane::media {
namespace {
constexpr size_t kReadSize = 64 << 10;
}  // namespace

absl::StatusOr<std::unique_ptr<TcpSource>> TcpSource::Listen(absl::string_view address) {
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress addr,
                        transport::SocketAddress::ParseHostPort(address));
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("TCP socket for ", address));
  const int one = 1;
  // A restarted edge must get its port back while old connections sit in TIME_WAIT.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), addr.sockaddr_ptr(), addr.length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind TCP ", address));
  }
  if (::listen(fd.get(), 1) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen TCP ", address));
  }
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress bound,
                        transport::SocketAddress::LocalOf(fd.get(), absl::StrCat("TCP ", address)));
  return std::unique_ptr<TcpSource>(new TcpSource(std::move(fd), bound.port()));
}

TcpSource::TcpSource(UniqueFd listener, uint16_t local_port)
    : listener_(std::move(listener)), local_port_(local_port) {}

int TcpSource::fd() const {
  if (conn_.valid()) return conn_.get();
  return listener_.get();  // -1 once finished
}

absl::Status TcpSource::Poll(absl::Time, std::vector<Chunk>& out) {
  if (finished_) return absl::OkStatus();
  if (!conn_.valid()) {
    const int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      // ECONNABORTED: a client gave up while queued; keep waiting for the next.
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
        return absl::OkStatus();
      }
      return absl::ErrnoToStatus(errno, absl::StrCat("accept TCP port ", local_port_));
    }
    conn_ = UniqueFd(c);
    listener_.reset();
  }
  bool eof = false;
  absl::Status error;
  for (size_t total = 0; total < kMaxBytesPerPoll;) {
    const size_t old = pending_.size();
    pending_.resize(old + kReadSize);
    const ssize_t got = ::recv(conn_.get(), pending_.data() + old, kReadSize, 0);
    pending_.resize(old + (got > 0 ? static_cast<size_t>(got) : 0));
    if (got > 0) {
      total += static_cast<size_t>(got);
      continue;
    }
    if (got == 0) {
      eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      error = absl::ErrnoToStatus(errno, absl::StrCat("recv TCP port ", local_port_));
    }
    break;
  }
  size_t used = 0;
  for (; pending_.size() - used >= kChunkBytes; used += kChunkBytes) {
    out.push_back(Chunk{.offset = next_offset_, .data = pending_.substr(used, kChunkBytes)});
    next_offset_ += kChunkBytes;
  }
  pending_.erase(0, used);
  if (eof || !error.ok()) {
    // A reset stream still delivers what arrived, but does not claim a clean end: the
    // error tells the caller the flow broke off.
    if (eof || !pending_.empty()) {
      out.push_back(Chunk{.offset = next_offset_, .data = std::move(pending_), .end_of_flow = eof});
      next_offset_ += out.back().data.size();
    }
    pending_.clear();
    conn_.reset();
    finished_ = true;
  }
  return error;
}

}  // namespace smig::dataplane::media
