#include "dataplane/transport/kernel_endpoint.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/sctp.h>
#include <poll.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "dataplane/transport/stack_endpoint.h"

namespace smig::transport {
namespace {

#include "dataplane/transport/sctp_api.inc"

int PollFor(int fd, short events, absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  pollfd p{fd, events, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
}

// The UDP port of the kernel's SCTP encapsulation, per network namespace (Linux >= 5.11).
absl::Status EnableKernelUdpEncapsulation(uint16_t port) {
  const char* path = "/proc/sys/net/sctp/udp_port";
  std::ifstream in(path);
  if (!in) {
    return absl::UnimplementedError(
        "this kernel has no SCTP UDP encapsulation (net.sctp.udp_port; needs Linux >= 5.11)");
  }
  int current = -1;
  in >> current;
  if (current == port) return absl::OkStatus();
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("opening ", path));
  std::string value = absl::StrCat(port, "\n");
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) {
    if (err == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrCat("UDP encapsulation port ", port, " is already in use"));
    }
    return ErrnoStatus(err, absl::StrCat("setting net.sctp.udp_port to ", port));
  }
  return absl::OkStatus();
}

class KernelEndpoint final : public Rfc6458Endpoint<KernelEndpoint> {
 public:
  KernelEndpoint(const EndpointOptions& options, int fd, uint16_t port)
      : Rfc6458Endpoint(options), fd_(fd), port_(port), hz_(KernelHz()) {}

  ~KernelEndpoint() override {
    linger l{1, 0};  // abort what is left: close never waits on a dead peer
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd_);
  }

  v1::StackKind stack() const override { return v1::STACK_KIND_KERNEL; }
  uint16_t local_port() const override { return port_; }
  int wait_fd() const override { return fd_; }

  // The calls Rfc6458Endpoint builds on.
  absl::Status SetOpt(int level, int name, const void* v, socklen_t len) {
    if (setsockopt(fd_, level, name, v, len) != 0) return ErrnoStatus(errno, "setsockopt");
    return absl::OkStatus();
  }
  absl::Status GetOpt(int level, int name, void* v, socklen_t* len) {
    if (getsockopt(fd_, level, name, v, len) != 0) return ErrnoStatus(errno, "getsockopt");
    return absl::OkStatus();
  }
  ssize_t RecvV(void* buf, size_t len, sctp_rcvinfo* info, socklen_t* info_len,
                unsigned int* info_type, int* flags) {
    iovec iov{buf, len};
    return sctp_recvv(fd_, &iov, 1, nullptr, nullptr, info, info_len, info_type, flags);
  }
  ssize_t SendV(const void* data, size_t len, const sctp_sndinfo* info, int flags,
                const SocketAddress* to) {
    iovec iov{const_cast<void*>(data), len};
    return sctp_sendv(fd_, &iov, len == 0 ? 0 : 1,
                      to ? const_cast<sockaddr*>(to->sockaddr_ptr()) : nullptr, to ? 1 : 0,
                      const_cast<sctp_sndinfo*>(info), sizeof(*info), SCTP_SENDV_SNDINFO, flags);
  }
  int ConnectX(sockaddr* packed, int count, sctp_assoc_t* id) {
    return sctp_connectx(fd_, packed, count, id);
  }
  int GetAddrs(bool peer, sctp_assoc_t assoc, sockaddr** addrs) {
    return peer ? sctp_getpaddrs(fd_, assoc, addrs) : sctp_getladdrs(fd_, assoc, addrs);
  }
  void FreeAddrs(bool peer, sockaddr* addrs) {
    peer ? sctp_freepaddrs(addrs) : sctp_freeladdrs(addrs);
  }
  bool Encapsulates() const { return options().udp_encaps_port != 0; }
  double SrttMs(uint32_t jiffies) const { return jiffies * 1000.0 / hz_; }
  v1::PathState State(int32_t s) const {
    switch (s) {
      case SCTP_ACTIVE: return v1::PATH_STATE_ACTIVE;
      case SCTP_INACTIVE: return v1::PATH_STATE_INACTIVE;
      case SCTP_PF: return v1::PATH_STATE_POTENTIALLY_FAILED;
      case SCTP_UNCONFIRMED: return v1::PATH_STATE_UNCONFIRMED;
      default: return v1::PATH_STATE_UNSPECIFIED;
    }
  }

 protected:
  void WaitWritable(absl::Time deadline) override { PollFor(fd_, POLLOUT, deadline); }
  void WaitReadable(absl::Time deadline) override { PollFor(fd_, POLLIN, deadline); }

 private:
  int fd_;
  uint16_t port_;
  int hz_;
};

}  // namespace

int KernelHz() {
  if (const char* env = std::getenv("SMIG_KERNEL_HZ")) {
    int hz = 0;
    if (absl::SimpleAtoi(env, &hz) && hz > 0) return hz;
  }
  utsname u{};
  if (uname(&u) == 0) {
    std::ifstream config(absl::StrCat("/boot/config-", u.release));
    std::string line;
    while (std::getline(config, line)) {
      absl::string_view v = line;
      int hz = 0;
      if (absl::ConsumePrefix(&v, "CONFIG_HZ=") && absl::SimpleAtoi(v, &hz) && hz > 0) return hz;
    }
  }
  return 250;
}

absl::StatusOr<std::unique_ptr<Endpoint>> CreateKernelEndpoint(const EndpointOptions& options) {
  SMIG_ASSIGN_OR_RETURN(std::vector<SocketAddress> locals,
                        ParseAddressList(options.local_addresses, options.port));
  if (locals.empty()) locals.push_back(*SocketAddress::Parse("0.0.0.0", options.port));
  // Before the socket: Linux copies net.sctp.udp_port into each socket when it is created.
  if (options.udp_encaps_port != 0) {
    SMIG_RETURN_IF_ERROR(EnableKernelUdpEncapsulation(options.udp_encaps_port));
  }
  bool v6 = std::any_of(locals.begin(), locals.end(),
                        [](const SocketAddress& a) { return a.family() == AF_INET6; });
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_SCTP);
  if (fd < 0) return ErrnoStatus(errno, "opening a kernel SCTP socket");
  auto fail = [fd](absl::Status s) {
    close(fd);
    return s;
  };
  // Bind the first address (which fixes the port), then add the others on that port.
  if (bind(fd, locals.front().sockaddr_ptr(), locals.front().length()) != 0) {
    return fail(ErrnoStatus(errno, absl::StrCat("binding ", locals.front().ToString())));
  }
  uint16_t port = SocketAddress::LocalOf(fd, "kernel SCTP socket").value_or(SocketAddress()).port();
  if (locals.size() > 1) {
    std::vector<SocketAddress> rest(locals.begin() + 1, locals.end());
    for (SocketAddress& a : rest) a.set_port(port);
    std::string packed = PackAddresses(rest);
    if (sctp_bindx(fd, reinterpret_cast<sockaddr*>(packed.data()), static_cast<int>(rest.size()),
                   SCTP_BINDX_ADD_ADDR) != 0) {
      return fail(ErrnoStatus(errno, "binding the extra local addresses"));
    }
  }
  auto ep = std::make_unique<KernelEndpoint>(options, fd, port);
  SMIG_RETURN_IF_ERROR(ApplyEndpointOptions(*ep, options));

  const v1::FailoverProfile& p = options.profile;
  sctp_paddrthlds_v2 th{};
  th.spt_assoc_id = SCTP_FUTURE_ASSOC;
  th.spt_pathmaxrxt = static_cast<uint16_t>(p.path_max_retrans());
  th.spt_pathpfthld =
      static_cast<uint16_t>(p.has_pf_threshold() ? p.pf_threshold() : p.path_max_retrans());
  th.spt_pathcpthld = 0xffff;  // no primary switch-over: the primary returns when it heals
  if (absl::Status s = SetOpt(*ep, SCTP_PEER_ADDR_THLDS_V2, th, "SCTP_PEER_ADDR_THLDS_V2");
      !s.ok()) {
    return s;
  }
  sctp_assoc_value expose{};
  expose.assoc_id = SCTP_FUTURE_ASSOC;
  expose.assoc_value = 2;  // SCTP_PF_EXPOSE_ENABLE, which the uapi header lacks
  // Older kernels lack the option and report PF through GET_PEER_ADDR_INFO only.
  (void)SetOpt(*ep, SCTP_EXPOSE_POTENTIALLY_FAILED_STATE, expose, "SCTP_EXPOSE_PF_STATE");

  int buf = static_cast<int>(std::max<size_t>(4 * options.max_message_size, 4 << 20));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  if (options.listen && listen(fd, 128) != 0) return ErrnoStatus(errno, "listen");
  return ep;
}

}  // namespace smig::transport
