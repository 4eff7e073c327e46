#include "dataplane/transport/userland_endpoint.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <usrsctp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/transport/stack_endpoint.h"

namespace smig::transport {
namespace {

#include "dataplane/transport/sctp_api.inc"

// SCTP-PF thresholds (RFC 7829): usrsctp implements the option but its header omits it.
constexpr int kSctpPeerAddrThlds = 0x23;
// Note the field order: usrsctp puts the address first, unlike Linux.
struct UsrsctpPaddrThlds {
  sockaddr_storage spt_address;
  sctp_assoc_t spt_assoc_id;
  uint16_t spt_pathmaxrxt;
  uint16_t spt_pathpfthld;
  uint16_t spt_pathcpthld;  // usrsctp accepts only 0xffff
};
constexpr uint16_t kDefaultUdpPort = 9899;

// Binds a UDP socket to `port` on the wildcard address; true if the port was free.
absl::Status ProbeUdpPort(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  if (err == EADDRINUSE) {
    return absl::AlreadyExistsError(absl::StrCat(
        "UDP encapsulation port ", port, " is already in use; choose another port"));
  }
  return ErrnoStatus(err, absl::StrCat("probing UDP port ", port));
}

// usrsctp's UDP sockets are not close-on-exec; children must not inherit the port.
void MarkUsrsctpSocketsCloexec(uint16_t port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int type = 0;
    socklen_t tlen = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
    absl::StatusOr<SocketAddress> a =
        SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (a.ok() && a->port() == port) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  }
}

struct UsrsctpState {
  absl::Mutex mu;
  int port ABSL_GUARDED_BY(mu) = -1;
};
UsrsctpState& Usrsctp() {
  static UsrsctpState* state = new UsrsctpState;  // never destroyed: usrsctp outlives main
  return *state;
}

int PollFor(int fd, absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
}

void Drain(int efd) {
  uint64_t v;
  while (read(efd, &v, sizeof(v)) > 0) {
  }
}

class UserlandEndpoint final : public StackEndpoint {
 public:
  UserlandEndpoint(const EndpointOptions& options, struct socket* sock)
      : StackEndpoint(options),
        sock_(sock),
        readable_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        writable_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    usrsctp_set_upcall(sock_, &UserlandEndpoint::Upcall, this);
    Signal(readable_);  // data may have arrived before the upcall was set
  }

  ~UserlandEndpoint() override {
    usrsctp_set_upcall(sock_, nullptr, nullptr);
    linger l{1, 0};  // abort what is left: close never waits on a dead peer
    usrsctp_setsockopt(sock_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    usrsctp_close(sock_);
    close(readable_);
    close(writable_);
  }

  v1::StackKind stack() const override { return v1::STACK_KIND_USERLAND; }
  uint16_t local_port() const override {
    sockaddr* addrs = nullptr;
    uint16_t port = 0;
    if (usrsctp_getladdrs(sock_, 0, &addrs) > 0) {
      socklen_t len = addrs->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      port = SocketAddress::FromSockaddr(addrs, len).value_or(SocketAddress()).port();
    }
    if (addrs != nullptr) usrsctp_freeladdrs(addrs);
    return port;
  }
  int wait_fd() const override { return readable_; }

  // The Api of sctp_api.inc.
  absl::Status SetOpt(int level, int name, const void* v, socklen_t len) {
    if (usrsctp_setsockopt(sock_, level, name, v, len) != 0) {
      return ErrnoStatus(errno, "usrsctp_setsockopt");
    }
    return absl::OkStatus();
  }
  absl::Status GetOpt(int level, int name, void* v, socklen_t* len) {
    if (usrsctp_getsockopt(sock_, level, name, v, len) != 0) {
      return ErrnoStatus(errno, "usrsctp_getsockopt");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<SocketAddress>> PeerAddresses(sctp_assoc_t assoc) {
    return Addresses(assoc, usrsctp_getpaddrs, usrsctp_freepaddrs, "usrsctp_getpaddrs");
  }
  absl::StatusOr<std::vector<SocketAddress>> LocalAddresses(sctp_assoc_t assoc) {
    return Addresses(assoc, usrsctp_getladdrs, usrsctp_freeladdrs, "usrsctp_getladdrs");
  }
  double SrttMs(uint32_t ms) const { return ms; }
  v1::PathState State(int32_t s) const {
    if (s & SCTP_UNCONFIRMED) return v1::PATH_STATE_UNCONFIRMED;
    if (s & SCTP_ACTIVE) return v1::PATH_STATE_ACTIVE;
    return v1::PATH_STATE_INACTIVE;
  }

 protected:
  absl::StatusOr<std::optional<Piece>> ReadPiece(char* buffer, size_t capacity) override {
    sctp_rcvinfo info{};
    socklen_t info_len = sizeof(info);
    unsigned int info_type = 0;
    int flags = MSG_DONTWAIT;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = usrsctp_recvv(sock_, buffer, capacity, reinterpret_cast<sockaddr*>(&from),
                              &from_len, &info, &info_len, &info_type, &flags);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return std::nullopt;
      return ErrnoStatus(errno, "usrsctp_recvv");
    }
    Piece p;
    p.length = static_cast<size_t>(n);
    p.notification = (flags & MSG_NOTIFICATION) != 0;
    p.end_of_record = (flags & MSG_EOR) != 0;
    if (!p.notification && info_type == SCTP_RECVV_RCVINFO) {
      p.assoc = info.rcv_assoc_id;
      p.stream = info.rcv_sid;
      p.ppid = ntohl(info.rcv_ppid);
      p.unordered = (info.rcv_flags & SCTP_UNORDERED) != 0;
    }
    return p;
  }

  std::optional<v1::Event> TranslateNotification(const char* data, size_t length) override {
    return TranslateRfc6458Notification(data, length);
  }

  absl::StatusOr<SendResult> SendRaw(AssocId assoc, const SendOptions& o,
                                     absl::string_view data) override {
    sctp_sndinfo info{};
    info.snd_sid = o.stream;
    info.snd_ppid = htonl(o.ppid);
    info.snd_flags = o.unordered ? SCTP_UNORDERED : 0;
    info.snd_assoc_id = assoc;
    Drain(writable_);
    if (usrsctp_sendv(sock_, data.data(), data.size(), nullptr, 0, &info, sizeof(info),
                      SCTP_SENDV_SNDINFO, 0) >= 0) {
      return SendResult::kSent;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return SendResult::kWouldBlock;
    return ErrnoStatus(errno, absl::StrCat("send on association ", assoc));
  }

  // usrsctp does not reliably raise a write upcall when a one-to-many socket's send space
  // frees up (seen here: sends then waited for the full deadline), so retry every 1 ms.
  void WaitWritable(absl::Time deadline) override {
    PollFor(writable_, std::min(deadline, absl::Now() + absl::Milliseconds(1)));
  }
  void WaitReadable(absl::Time deadline) override {
    PollFor(readable_, deadline);
    Drain(readable_);
  }

  absl::StatusOr<AssocId> ConnectRaw(const std::vector<SocketAddress>& peers) override {
    // Only the connecting side names the peer's UDP port; a listener learns it from packets.
    sctp_udpencaps encaps{};
    encaps.sue_assoc_id = SCTP_FUTURE_ASSOC;
    encaps.sue_port = htons(options().remote_udp_encaps_port ? options().remote_udp_encaps_port
                                                             : kDefaultUdpPort);
    if (absl::Status s = ::smig::transport::SetOpt(*this, SCTP_REMOTE_UDP_ENCAPS_PORT, encaps,
                                                   "SCTP_REMOTE_UDP_ENCAPS_PORT");
        !s.ok()) {
      return s;
    }
    std::string packed = PackAddresses(peers);
    sctp_assoc_t id = 0;
    if (usrsctp_connectx(sock_, reinterpret_cast<sockaddr*>(packed.data()),
                         static_cast<int>(peers.size()), &id) < 0 &&
        errno != EINPROGRESS) {
      return ErrnoStatus(errno, absl::StrCat("connecting to ", peers.front().ToString()));
    }
    return static_cast<AssocId>(id);
  }

  absl::Status SetPrimaryRaw(AssocId assoc, const SocketAddress& peer) override {
    sctp_setprim prim{};
    prim.ssp_assoc_id = assoc;
    std::memcpy(&prim.ssp_addr, peer.sockaddr_ptr(), peer.length());
    return ::smig::transport::SetOpt(*this, SCTP_PRIMARY_ADDR, prim,
                                     absl::StrCat("primary ", peer.ToString()));
  }

  absl::Status EndRaw(AssocId assoc, EndKind kind) override {
    sctp_sndinfo info{};
    info.snd_flags = kind == EndKind::kGraceful ? SCTP_EOF : SCTP_ABORT;
    info.snd_assoc_id = assoc;
    static const char kNothing = 0;  // usrsctp rejects a null buffer even for 0 bytes
    if (usrsctp_sendv(sock_, &kNothing, 0, nullptr, 0, &info, sizeof(info), SCTP_SENDV_SNDINFO,
                      0) < 0) {
      return ErrnoStatus(errno, absl::StrCat("ending association ", assoc));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::AssociationInfo> QueryRaw(AssocId assoc) override {
    return QueryAssociation(*this, assoc);
  }

 private:
  static void Signal(int efd) {
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof(one));
  }
  // Runs on usrsctp's threads: only wakes the endpoint's waiters.
  static void Upcall(struct socket* sock, void* arg, int) {
    auto* self = static_cast<UserlandEndpoint*>(arg);
    int events = usrsctp_get_events(sock);
    if (events & (SCTP_EVENT_READ | SCTP_EVENT_ERROR)) Signal(self->readable_);
    if (events & (SCTP_EVENT_WRITE | SCTP_EVENT_ERROR)) Signal(self->writable_);
  }

  template <typename Get, typename Free>
  absl::StatusOr<std::vector<SocketAddress>> Addresses(sctp_assoc_t assoc, Get get, Free release,
                                                       const char* what) {
    sockaddr* addrs = nullptr;
    int n = get(sock_, assoc, &addrs);
    if (n < 0) return ErrnoStatus(errno, what);
    std::vector<SocketAddress> out;
    const char* cursor = reinterpret_cast<const char*>(addrs);
    for (int i = 0; i < n; ++i) {
      const auto* sa = reinterpret_cast<const sockaddr*>(cursor);
      socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      if (absl::StatusOr<SocketAddress> a = SocketAddress::FromSockaddr(sa, len); a.ok()) {
        out.push_back(*a);
      }
      cursor += len;
    }
    if (addrs != nullptr) release(addrs);
    return out;
  }

  struct socket* sock_;
  int readable_;
  int writable_;
};

}  // namespace

absl::Status StartUsrsctp(uint16_t udp_port) {
  if (udp_port == 0) udp_port = kDefaultUdpPort;
  UsrsctpState& st = Usrsctp();
  absl::MutexLock lock(&st.mu);
  if (st.port == udp_port) return absl::OkStatus();
  if (st.port >= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("usrsctp already runs on UDP port ", st.port, " in this process; it cannot "
                     "also use port ", udp_port, " (one encapsulation port per process)"));
  }
  if (absl::Status s = ProbeUdpPort(udp_port); !s.ok()) return s;
  usrsctp_init(udp_port, nullptr, nullptr);
  // usrsctp starts even when it could not bind; only the port being taken now proves it holds it.
  if (ProbeUdpPort(udp_port).ok()) {
    return absl::InternalError(
        absl::StrCat("usrsctp started but does not hold UDP port ", udp_port));
  }
  MarkUsrsctpSocketsCloexec(udp_port);
  st.port = udp_port;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Endpoint>> CreateUserlandEndpoint(const EndpointOptions& options) {
  absl::StatusOr<std::vector<SocketAddress>> locals =
      ParseAddressList(options.local_addresses, options.port);
  if (!locals.ok()) return locals.status();
  if (absl::Status s = StartUsrsctp(options.udp_encaps_port); !s.ok()) return s;
  if (locals->empty()) locals->push_back(*SocketAddress::Parse("0.0.0.0", options.port));
  bool v6 = std::any_of(locals->begin(), locals->end(),
                        [](const SocketAddress& a) { return a.family() == AF_INET6; });
  struct socket* sock = usrsctp_socket(v6 ? AF_INET6 : AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, nullptr,
                                nullptr, 0, nullptr);
  if (sock == nullptr) return ErrnoStatus(errno, "usrsctp_socket");
  auto fail = [sock](absl::Status s) {
    usrsctp_close(sock);
    return s;
  };
  usrsctp_set_non_blocking(sock, 1);
  if (usrsctp_bind(sock, const_cast<sockaddr*>(locals->front().sockaddr_ptr()),
                   locals->front().length()) != 0) {
    return fail(ErrnoStatus(errno, absl::StrCat("binding ", locals->front().ToString())));
  }
  auto ep = std::make_unique<UserlandEndpoint>(options, sock);
  uint16_t port = ep->local_port();
  if (locals->size() > 1) {
    std::vector<SocketAddress> rest(locals->begin() + 1, locals->end());
    for (SocketAddress& a : rest) a.set_port(port);
    std::string packed = PackAddresses(rest);
    if (usrsctp_bindx(sock, reinterpret_cast<sockaddr*>(packed.data()),
                      static_cast<int>(rest.size()), SCTP_BINDX_ADD_ADDR) != 0) {
      return ErrnoStatus(errno, "binding the extra local addresses");
    }
  }
  if (absl::Status s = ApplyEndpointOptions(*ep, options); !s.ok()) return s;

  const v1::FailoverProfile& p = options.profile;
  UsrsctpPaddrThlds th{};
  th.spt_assoc_id = SCTP_FUTURE_ASSOC;
  th.spt_address.ss_family = static_cast<sa_family_t>(v6 ? AF_INET6 : AF_INET);
  th.spt_pathmaxrxt = static_cast<uint16_t>(p.path_max_retrans());
  th.spt_pathpfthld =
      static_cast<uint16_t>(p.has_pf_threshold() ? p.pf_threshold() : p.path_max_retrans());
  th.spt_pathcpthld = 0xffff;
  if (absl::Status s = SetOpt(*ep, kSctpPeerAddrThlds, th, "SCTP_PEER_ADDR_THLDS"); !s.ok()) {
    return s;
  }
  int buf = static_cast<int>(std::max<size_t>(4 * options.max_message_size, 4 << 20));
  usrsctp_setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  usrsctp_setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  if (options.listen && usrsctp_listen(sock, 128) != 0) return ErrnoStatus(errno, "listen");
  return ep;
}

}  // namespace smig::transport
