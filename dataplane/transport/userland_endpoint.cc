#include "dataplane/transport/userland_endpoint.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <usrsctp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "absl/synchronization/mutex.h"
#include "common/proto_time.h"
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

// Fixes up the sockets usrsctp_init opened, found by scanning our descriptors:
// - its UDP sockets are not close-on-exec: children must not inherit the port;
// - as root it also opens raw SCTP sockets and answers every SCTP packet the host gets,
//   aborting the kernel stack's associations in this network namespace. smig's userland
//   stack only speaks SCTP over UDP, so those sockets get a filter that drops everything.
void TameUsrsctpSockets(uint16_t udp_port) {
  sock_filter drop_all[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog prog{1, drop_all};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = std::atoi(entry.path().filename().c_str());
    int type = 0, protocol = 0;
    socklen_t tlen = sizeof(type), plen = sizeof(protocol);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &plen) != 0) {
      continue;
    }
    bool ours = false;
    if (type == SOCK_RAW && protocol == IPPROTO_SCTP) {
      setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
      ours = true;
    } else if (type == SOCK_DGRAM) {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        absl::StatusOr<SocketAddress> a =
            SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
        ours = a.ok() && a->port() == udp_port;
      }
    }
    if (ours) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
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

// usrsctp's default stream scheduler (round robin) loops forever, holding the
// association's lock, when every stream with queued data starts with a message sent to a
// path other than the one being filled (SCTP_ADDR_OVER: SendOptions::path) and its
// last-served stream has left the wheel, which is the case as soon as a stream empties
// (sctp_ss_default_select in usrsctp 0.9.5 and its master). First come, first served
// skips such messages correctly and sends in the order of the sends, which is also the
// kernel's default.
absl::Status UseFirstComeScheduler(auto& api) {
  sctp_assoc_value ss{};
  ss.assoc_id = SCTP_FUTURE_ASSOC;
  ss.assoc_value = SCTP_SS_FIRST_COME;
  return SetOpt(api, SCTP_PLUGGABLE_SS, ss, "SCTP_PLUGGABLE_SS");
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

class UserlandEndpoint final : public Rfc6458Endpoint<UserlandEndpoint> {
 public:
  UserlandEndpoint(const EndpointOptions& options, struct socket* sock)
      : Rfc6458Endpoint(options),
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
    int n = usrsctp_getladdrs(sock_, 0, &addrs);
    std::vector<SocketAddress> locals = UnpackAddresses(addrs, std::max(n, 0));
    if (addrs != nullptr) usrsctp_freeladdrs(addrs);
    return locals.empty() ? 0 : locals.front().port();
  }
  int wait_fd() const override { return readable_; }

  // The calls Rfc6458Endpoint builds on.
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
  ssize_t RecvV(void* buf, size_t len, sctp_rcvinfo* info, socklen_t* info_len,
                unsigned int* info_type, int* flags) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    return usrsctp_recvv(sock_, buf, len, reinterpret_cast<sockaddr*>(&from), &from_len, info,
                         info_len, info_type, flags);
  }
  ssize_t SendV(const void* data, size_t len, const sctp_sndinfo* info, int flags,
                const SocketAddress* to) {
    // usrsctp_sendv writes the association id it looks up for `to` back into the info.
    sctp_sndinfo copy = *info;
    return usrsctp_sendv(sock_, data, len,
                         to ? const_cast<sockaddr*>(to->sockaddr_ptr()) : nullptr, to ? 1 : 0,
                         &copy, sizeof(copy), SCTP_SENDV_SNDINFO, flags);
  }
  int ConnectX(sockaddr* packed, int count, sctp_assoc_t* id) {
    return usrsctp_connectx(sock_, packed, count, id);
  }
  int GetAddrs(bool peer, sctp_assoc_t assoc, sockaddr** addrs) {
    return peer ? usrsctp_getpaddrs(sock_, assoc, addrs) : usrsctp_getladdrs(sock_, assoc, addrs);
  }
  void FreeAddrs(bool peer, sockaddr* addrs) {
    peer ? usrsctp_freepaddrs(addrs) : usrsctp_freeladdrs(addrs);
  }
  bool Encapsulates() const { return true; }
  double SrttMs(uint32_t ms) const { return ms; }
  v1::PathState State(int32_t s) const {
    if (s & SCTP_UNCONFIRMED) return v1::PATH_STATE_UNCONFIRMED;
    if (s & SCTP_ACTIVE) return v1::PATH_STATE_ACTIVE;
    return v1::PATH_STATE_INACTIVE;
  }

 protected:
  // usrsctp counts a heartbeat timer that finds the path's last heartbeat unanswered as a
  // path error, and a path that only the handshake's path confirmed starts out as
  // unanswered. A path that carries data all the time is never sent a heartbeat, so each
  // of its heartbeat timers was an error: with the fast profile's threshold, an
  // unreachable/available pair every ~300 ms on any path but the first (seen with the
  // primary set to the second path, and with copies named to it). One heartbeat on every
  // path now, answered, sets that straight.
  void OnAssociationUp(AssocId assoc) override {
    absl::StatusOr<std::vector<SocketAddress>> peers = PeerAddresses(static_cast<sctp_assoc_t>(assoc));
    if (!peers.ok()) return;
    for (const SocketAddress& peer : *peers) (void)RequestHeartbeatRaw(assoc, peer);
  }

  // usrsctp does not reliably raise a write upcall when a one-to-many socket's send space
  // frees up (seen here: sends then waited for the full deadline), so retry every 1 ms.
  void WaitWritable(absl::Time deadline) override {
    Drain(writable_);
    want_write_.store(true);
    PollFor(writable_, std::min(deadline, absl::Now() + absl::Milliseconds(1)));
    want_write_.store(false);
  }
  void WaitReadable(absl::Time deadline) override {
    PollFor(readable_, deadline);
    Drain(readable_);
  }
  void ClearReadable() override { Drain(readable_); }

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
    // Only a waiting sender needs the write wake-up: it costs a syscall on this busy thread.
    if ((events & (SCTP_EVENT_WRITE | SCTP_EVENT_ERROR)) && self->want_write_.load()) {
      Signal(self->writable_);
    }
  }

  struct socket* sock_;
  int readable_;
  int writable_;
  std::atomic<bool> want_write_{false};
};

}  // namespace

absl::Status StartUsrsctp(uint16_t udp_port) {
  if (udp_port == 0) udp_port = kDefaultUdpEncapsPort;
  UsrsctpState& st = Usrsctp();
  absl::MutexLock lock(&st.mu);
  if (st.port == udp_port) return absl::OkStatus();
  if (st.port >= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("usrsctp already runs on UDP port ", st.port, " in this process; it cannot "
                     "also use port ", udp_port, " (one encapsulation port per process)"));
  }
  SMIG_RETURN_IF_ERROR(ProbeUdpPort(udp_port));
  usrsctp_init(udp_port, nullptr, nullptr);
  // usrsctp starts even when it could not bind; only the port being taken now proves it holds it.
  if (ProbeUdpPort(udp_port).ok()) {
    return absl::InternalError(
        absl::StrCat("usrsctp started but does not hold UDP port ", udp_port));
  }
  TameUsrsctpSockets(udp_port);
  st.port = udp_port;
  return absl::OkStatus();
}

StackCounters UserlandStackCounters() {
  {
    UsrsctpState& st = Usrsctp();
    absl::MutexLock lock(&st.mu);
    if (st.port < 0) return {};
  }
  sctpstat s{};
  usrsctp_get_stat(&s);
  return {.t3_timeouts = s.sctps_timodata,
          .fast_retransmits = s.sctps_sendfastretrans,
          .retransmitted_chunks = s.sctps_sendretransdata};
}

absl::StatusOr<std::unique_ptr<Endpoint>> CreateUserlandEndpoint(const EndpointOptions& options) {
  SMIG_ASSIGN_OR_RETURN(std::vector<SocketAddress> locals,
                        ParseAddressList(options.local_addresses, options.port));
  SMIG_RETURN_IF_ERROR(StartUsrsctp(options.udp_encaps_port));
  if (locals.empty()) locals.push_back(*SocketAddress::Parse("0.0.0.0", options.port));
  bool v6 = std::any_of(locals.begin(), locals.end(),
                        [](const SocketAddress& a) { return a.family() == AF_INET6; });
  struct socket* sock = usrsctp_socket(v6 ? AF_INET6 : AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, nullptr,
                                nullptr, 0, nullptr);
  if (sock == nullptr) return ErrnoStatus(errno, "usrsctp_socket");
  auto fail = [sock](absl::Status s) {
    usrsctp_close(sock);
    return s;
  };
  usrsctp_set_non_blocking(sock, 1);
  if (usrsctp_bind(sock, const_cast<sockaddr*>(locals.front().sockaddr_ptr()),
                   locals.front().length()) != 0) {
    return fail(ErrnoStatus(errno, absl::StrCat("binding ", locals.front().ToString())));
  }
  auto ep = std::make_unique<UserlandEndpoint>(options, sock);
  uint16_t port = ep->local_port();
  if (locals.size() > 1) {
    std::vector<SocketAddress> rest(locals.begin() + 1, locals.end());
    for (SocketAddress& a : rest) a.set_port(port);
    std::string packed = PackAddresses(rest);
    if (usrsctp_bindx(sock, reinterpret_cast<sockaddr*>(packed.data()),
                      static_cast<int>(rest.size()), SCTP_BINDX_ADD_ADDR) != 0) {
      return ErrnoStatus(errno, "binding the extra local addresses");
    }
  }
  SMIG_RETURN_IF_ERROR(ApplyEndpointOptions(*ep, options));

  const v1::FailoverProfile& p = options.profile;
  UsrsctpPaddrThlds th{};
  th.spt_assoc_id = SCTP_FUTURE_ASSOC;
  th.spt_address.ss_family = static_cast<sa_family_t>(v6 ? AF_INET6 : AF_INET);
  th.spt_pathmaxrxt = static_cast<uint16_t>(p.path_max_retrans());
  // One error more than the profile asks before a path is potentially failed. usrsctp
  // 0.9.5's fast SACK path starts a path's T3-rtx timer only when none runs and never
  // restarts it (against RFC 4960 6.3.2 R3), so a path whose data never drains (any path
  // whose round trip exceeds the gap between two sends) times out one RTO after the timer
  // started, however healthy: 141 times in 20 s on a lossless 60 ms cell path. At the
  // profile's threshold of 0 each such timeout stopped new data on the path (usrsctp puts
  // none on a PF path that is not its alternate): a 30-60 ms gap every ~200 ms. Two
  // timeouts with no SACK between them (every SACK clears the count) only a dead path
  // gives.
  th.spt_pathpfthld = static_cast<uint16_t>(
      p.has_pf_threshold() ? std::min(p.pf_threshold() + 1, p.path_max_retrans())
                           : p.path_max_retrans());
  th.spt_pathcpthld = 0xffff;
  if (absl::Status s = SetOpt(*ep, kSctpPeerAddrThlds, th, "SCTP_PEER_ADDR_THLDS"); !s.ok()) {
    return s;
  }
  int buf = static_cast<int>(std::max<size_t>(4 * options.max_message_size, 4 << 20));
  usrsctp_setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  usrsctp_setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  SMIG_RETURN_IF_ERROR(UseFirstComeScheduler(*ep));
  if (options.listen && usrsctp_listen(sock, 128) != 0) return ErrnoStatus(errno, "listen");
  return ep;
}

}  // namespace smig::transport
