#include "bench/dataplane_sessions_traffic.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "absl/time/clock.h"
#include "common/status_macros.h"

namespace smig::bench::sessions {
namespace {

void Count(SessionRx& s, uint64_t seq) {
  if (seq >= s.seen.size()) s.seen.resize(std::max<size_t>(seq + 1, s.seen.size() * 2));
  if (s.seen[seq]) {
    ++s.duplicates;
    return;
  }
  s.seen[seq] = true;
  ++s.unique;
  if (s.any && seq < s.highest) ++s.reordered;
  if (!s.any || seq > s.highest) s.highest = seq;
  s.any = true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Receiver>> Receiver::Start(const std::string& ns, int cpu) {
  SMIG_ASSIGN_OR_RETURN(UniqueFd fd, UdpSocket(ns, "0.0.0.0", kReceiverPort, 64 << 20));
  const int on = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  std::unique_ptr<Receiver> r(new Receiver(std::move(fd)));
  r->thread_ = std::thread([rp = r.get(), cpu] {
    (void)PinThisThread(cpu);
    rp->Run();
  });
  return r;
}

Receiver::~Receiver() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Receiver::SetStep(uint16_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  step_ = step;
  rx_ = StepRx{};
}

StepRx Receiver::Drain(absl::Duration quiet) {
  const absl::Time give_up = absl::Now() + 10 * quiet;
  while (absl::Now() < give_up && Sleep(absl::Milliseconds(100))) {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Now() - rx_.last_arrival >= quiet) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  return std::move(rx_);
}

void Receiver::Run() {
  constexpr int kBatch = 64;
  std::vector<std::array<char, 2048>> bufs(kBatch);
  std::vector<std::array<char, 256>> ctrl(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  while (!stop_.load()) {
    pollfd p{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctrl[i].data();
      msgs[i].msg_hdr.msg_controllen = ctrl[i].size();
    }
    const int n = ::recvmmsg(fd_.get(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) continue;
    const absl::Time now = absl::Now();
    std::lock_guard<std::mutex> lock(mu_);
    rx_.last_arrival = now;
    for (int i = 0; i < n; ++i) {
      Header h;
      if (msgs[i].msg_len < sizeof h) {
        ++rx_.foreign;
        continue;
      }
      std::memcpy(&h, bufs[i].data(), sizeof h);
      if (h.magic != kMagic || h.step != step_ || h.path > kPathRelay) {
        ++rx_.foreign;
        continue;
      }
      int64_t rx_ns = absl::ToUnixNanos(now);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr;
           c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts;
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          rx_ns = int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
        }
      }
      SessionRx& s = h.path == kPathRelay ? rx_.relay : rx_.sessions[h.session];
      const uint64_t dups = s.duplicates;
      Count(s, h.seq);
      if (s.duplicates == dups) rx_.latency_ns[h.path].push_back(rx_ns - h.send_unix_ns);
    }
  }
}

absl::StatusOr<std::unique_ptr<Relay>> Relay::Start(const std::string& ns, const std::string& ip,
                                                    transport::SocketAddress to, int cpu) {
  SMIG_ASSIGN_OR_RETURN(UniqueFd in, UdpSocket(ns, ip, kRelayPort, 0));
  SMIG_ASSIGN_OR_RETURN(UniqueFd out, UdpSocket(ns, "", 0, 0));
  std::unique_ptr<Relay> r(new Relay(std::move(in), std::move(out), to));
  r->thread_ = std::thread([rp = r.get(), cpu] {
    (void)PinThisThread(cpu);
    rp->Run();
  });
  return r;
}

Relay::~Relay() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Relay::Run() {
  char buf[65536];
  while (!stop_.load()) {
    pollfd p{.fd = in_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recvfrom(in_.get(), buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
    if (n <= 0) continue;
    (void)::sendto(out_.get(), buf, static_cast<size_t>(n), 0, to_.sockaddr_ptr(),
                   to_.length());
  }
}

GenResult Generate(int fd, const std::vector<Target>& targets, uint16_t step, int bitrate,
                   size_t size, absl::Duration window) {
  GenResult r;
  r.sent.assign(targets.size(), 0);
  r.max_lag = absl::ZeroDuration();
  const absl::Duration period = absl::Seconds(static_cast<double>(size) * 8 / bitrate);
  const absl::Duration spacing = period / static_cast<double>(targets.size());
  std::string buf(size, '\0');
  r.start = absl::Now();
  const absl::Time end = r.start + window;
  for (uint64_t j = 0; !g_stop.load(); ++j) {
    const absl::Time due = r.start + spacing * static_cast<double>(j);
    if (due >= end) break;
    absl::Time now = absl::Now();
    if (due > now) {
      absl::SleepFor(due - now);
      now = absl::Now();
    }
    r.max_lag = std::max(r.max_lag, now - due);
    const size_t k = j % targets.size();
    Header h{.magic = kMagic, .path = targets[k].path, .step = step,
             .session = targets[k].session, .reserved = 0, .seq = r.sent[k],
             .send_unix_ns = absl::GetCurrentTimeNanos()};
    std::memcpy(buf.data(), &h, sizeof h);
    if (::sendto(fd, buf.data(), buf.size(), 0, targets[k].to.sockaddr_ptr(),
                 targets[k].to.length()) == static_cast<ssize_t>(buf.size())) {
      ++r.sent[k];
    }
  }
  r.end = absl::Now();
  return r;
}

}  // namespace smig::bench::sessions
