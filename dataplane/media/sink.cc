#include "dataplane/media/sink.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dataplane/transport/address.h"

namespace smig::dataplane::media {
namespace {

absl::Status Closed(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(what, " is closed"));
}

// Milliseconds left until `deadline` for poll(), at least 0.
int PollTimeout(absl::Time deadline) {
  const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

}  // namespace

// ---- UdpSink

absl::StatusOr<std::unique_ptr<UdpSink>> UdpSink::Connect(absl::string_view address) {
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress addr,
                        transport::SocketAddress::ParseHostPort(address));
  UniqueFd fd(::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("UDP socket for ", address));
  // Connected, so each Write is a plain send and the kernel fixes the route once.
  if (::connect(fd.get(), addr.sockaddr_ptr(), addr.length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("UDP sink to ", address));
  }
  return std::unique_ptr<UdpSink>(new UdpSink(std::move(fd), std::string(address)));
}

absl::Status UdpSink::Write(absl::string_view data) {
  if (!fd_.valid()) return Closed(absl::StrCat("UDP sink to ", address_));
  for (;;) {
    if (::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL) >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == ECONNREFUSED) {
      ++dropped_;
      return absl::OkStatus();
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("send ", data.size(), " bytes to ", address_));
  }
}

absl::Status UdpSink::Close() {
  fd_.reset();
  return absl::OkStatus();
}

// ---- TcpSink

absl::StatusOr<std::unique_ptr<TcpSink>> TcpSink::Connect(absl::string_view address,
                                                          absl::Duration timeout,
                                                          size_t max_pending_bytes) {
  SMIG_ASSIGN_OR_RETURN(const transport::SocketAddress addr,
                        transport::SocketAddress::ParseHostPort(address));
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("TCP socket for ", address));
  auto unavailable = [&](int err) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the player at ", address, ": ", strerror(err)));
  };
  const absl::Time deadline = absl::Now() + timeout;
  if (::connect(fd.get(), addr.sockaddr_ptr(), addr.length()) != 0) {
    if (errno != EINPROGRESS) return unavailable(errno);
    pollfd p{.fd = fd.get(), .events = POLLOUT, .revents = 0};
    int ready;
    while ((ready = ::poll(&p, 1, PollTimeout(deadline))) < 0 && errno == EINTR) {
    }
    if (ready == 0) return unavailable(ETIMEDOUT);
    if (ready < 0) return unavailable(errno);
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return unavailable(errno);
    if (err != 0) return unavailable(err);
  }
  const int one = 1;
  // Chunks are small and the player should see them now, not after Nagle's wait.
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return std::unique_ptr<TcpSink>(
      new TcpSink(std::move(fd), std::string(address), timeout, max_pending_bytes));
}

absl::Status TcpSink::Drain() {
  size_t sent = 0;
  absl::Status status;
  while (sent < pending_.size()) {
    const ssize_t n =
        ::send(fd_.get(), pending_.data() + sent, pending_.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      status = absl::UnavailableError(
          absl::StrCat("send to the player at ", address_, ": ", strerror(errno)));
    }
    break;
  }
  pending_.erase(0, sent);
  return status;
}

absl::Status TcpSink::Write(absl::string_view data) {
  if (!fd_.valid()) return Closed(absl::StrCat("TCP sink to ", address_));
  // The player may have read since the previous Write.
  SMIG_RETURN_IF_ERROR(Drain());
  // Refuse whole writes only: a torn chunk would corrupt the player's stream, whereas a
  // refused one leaves the caller a clean place to stop or skip.
  if (pending_.size() > max_pending_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the player at ", address_, " is not reading: ", pending_.size(),
        " bytes are still waiting (limit ", max_pending_, ")"));
  }
  pending_.append(data.data(), data.size());
  return Drain();
}

absl::Status TcpSink::Close() {
  if (!fd_.valid()) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + timeout_;
  absl::Status status;
  while (status.ok() && !pending_.empty()) {
    status = Drain();
    if (!status.ok() || pending_.empty()) break;
    pollfd p{.fd = fd_.get(), .events = POLLOUT, .revents = 0};
    const int ready = ::poll(&p, 1, PollTimeout(deadline));
    if (ready == 0) {
      status = absl::UnavailableError(absl::StrCat("the player at ", address_, " did not take the last ",
                                                   pending_.size(), " bytes in time"));
    } else if (ready < 0 && errno != EINTR) {
      status = absl::ErrnoToStatus(errno, absl::StrCat("poll TCP sink to ", address_));
    }
  }
  pending_.clear();
  fd_.reset();
  return status;
}

// ---- FileSink

absl::StatusOr<std::unique_ptr<FileSink>> FileSink::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("open \"", path, "\" for writing"));
  return std::unique_ptr<FileSink>(new FileSink(std::move(fd), path));
}

absl::Status FileSink::Write(absl::string_view data) {
  if (!fd_.valid()) return Closed(absl::StrCat("file sink \"", path_, "\""));
  while (!data.empty()) {
    const ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("write \"", path_, "\""));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FileSink::Close() {
  if (!fd_.valid()) return absl::OkStatus();
  if (const int err = fd_.reset(); err != 0) {
    return absl::ErrnoToStatus(err, absl::StrCat("close \"", path_, "\""));
  }
  return absl::OkStatus();
}

// ---- factory

absl::StatusOr<std::unique_ptr<Sink>> MakeSink(const v1::Sink& sink) {
  switch (sink.kind_case()) {
    case v1::Sink::kUdp:
      return UdpSink::Connect(sink.udp());
    case v1::Sink::kTcp:
      return TcpSink::Connect(sink.tcp());
    case v1::Sink::kFile:
      return FileSink::Open(sink.file());
    case v1::Sink::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("the flow's sink names no kind (udp, tcp or file)");
}

}  // namespace smig::dataplane::media
