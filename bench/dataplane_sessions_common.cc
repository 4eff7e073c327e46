#include "bench/dataplane_sessions_common.h"

#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/netns.h"
#include "common/status_macros.h"

namespace smig::bench::sessions {

std::atomic<bool> g_stop{false};

bool Sleep(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!g_stop.load()) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
  return false;
}

absl::Status Stopped() { return absl::CancelledError("stopped by a signal or the --deadline"); }

absl::Status PinThisThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("pin to cpu ", cpu));
  }
  return absl::OkStatus();
}

transport::SocketAddress Ipv4(const std::string& ip, uint16_t port) {
  absl::StatusOr<transport::SocketAddress> a = transport::SocketAddress::Parse(ip, port);
  return a.ok() ? *a : transport::SocketAddress();
}

absl::StatusOr<UniqueFd> UdpSocket(const std::string& ns, const std::string& bind_ip,
                                   uint16_t port, int rcvbuf) {
  UniqueFd fd;
  auto open = [&]() -> absl::Status {
    fd = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "UDP socket");
    if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    if (bind_ip.empty()) return absl::OkStatus();
    const transport::SocketAddress a = Ipv4(bind_ip, port);
    if (::bind(fd.get(), a.sockaddr_ptr(), a.length()) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("bind UDP ", bind_ip, ":", port));
    }
    return absl::OkStatus();
  };
  SMIG_RETURN_IF_ERROR(RunInNetns(ns, open));
  return fd;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace smig::bench::sessions
