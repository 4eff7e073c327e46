// smig-bench-sessions: the two data plane benchmarks of the data plane issue, in one run.
//
//  1. Concurrent sessions per core: a smig-dataplane edge pinned to one core (taskset)
//     serves N sessions, each one live UDP flow of 1316-byte datagrams at 2 Mbit/s that a
//     generator sends to the session's UDP port; a smig-dataplane vehicle (another process,
//     another core) delivers every flow over UDP to one receiver, which counts loss,
//     duplicates and reordering per session from the session id and sequence number in
//     each datagram. N ramps up (--sessions) for --window each; after the first step with
//     loss, --refine bisection steps narrow the largest lossless N. Each step reports the
//     edge's CPU use (from /proc/<pid>/stat) and where datagrams were dropped.
//  2. Ingest -> egress latency against a plain UDP relay: in every step the generator also
//     sends a 2 Mbit/s stream, interleaved with the sessions' datagrams, through a relay
//     (recv/send, a thread of this program on the edge's core) to the same receiver. Both
//     paths carry send timestamps; the receiver takes kernel receive timestamps
//     (SO_TIMESTAMPNS), so its own scheduling does not count.
//
//   sudo smig-bench-sessions --sessions=1,5,10,20,40,80,160,320 --window=10s --refine=3
//
// The network (no loopback: see Fleet): the generator, the edge and the receiver share one
// namespace with a bridge; each vehicle, and the relay, sits in a namespace of its own on
// that bridge (a veth pair each). Both paths therefore cross a veth pair twice: smig as
// SCTP to the vehicle and UDP back, the relay as UDP to it and UDP back.
// Every line on stdout is one JSON object; a table for people goes to stderr. Exit codes:
// 0 done, 1 setup or run error, 2 bad flags. Child processes are stopped and the
// namespaces deleted on every exit, including SIGINT/SIGTERM/SIGHUP and the --deadline.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "dataplane/transport/endpoint.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "tests/integration/testbed.h"

ABSL_FLAG(std::vector<std::string>, sessions,
          std::vector<std::string>({"1", "5", "10", "20", "40", "80", "160", "320", "640"}),
          "Session counts to ramp through, ascending; the ramp stops at the first with loss");
ABSL_FLAG(int, refine, 3, "Bisection steps between the last lossless and the first lossy count");
ABSL_FLAG(absl::Duration, window, absl::Seconds(10), "How long each step sends");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(1),
          "After a step, how long the receiver must be quiet before counting (at most 10x)");
ABSL_FLAG(std::string, sctp_stack, "userland", "The data planes' SCTP stack");
ABSL_FLAG(int, edge_cpu, 1, "The core the edge (and the relay) is pinned to");
ABSL_FLAG(int, other_cpu, 0, "The core of the vehicle, the generator and the receiver");
ABSL_FLAG(int, bitrate, 2000000, "Bits per second of each session (and of the relay stream)");
ABSL_FLAG(int, datagram, 1316, "Datagram size in bytes (7 TS packets)");
ABSL_FLAG(absl::Duration, deadline, absl::Minutes(20), "Abort the whole run after this long");
ABSL_FLAG(bool, keep, false, "Keep the scratch directory (configs, logs) after a clean run");

namespace {

namespace v1 = smig::dataplane::v1;
using smig::testbed::Process;

constexpr uint32_t kMagic = 0x534d4742;  // "SMGB"
constexpr uint16_t kPathSmig = 0, kPathRelay = 1;
constexpr uint16_t kReceiverPort = 19000, kRelayPort = 19999, kIngestBase = 20000;
constexpr uint16_t kVehicleSctpPort = 6000;

// The first bytes of every datagram; the rest is padding up to --datagram.
struct Header {
  uint32_t magic;
  uint16_t path;
  uint16_t step;
  uint32_t session;
  uint32_t reserved;
  uint64_t seq;
  int64_t send_unix_ns;
};

std::atomic<bool> g_stop{false};

// Sleeps, waking early when the run is being stopped; false if it was.
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

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status PinThisThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("pin to cpu ", cpu));
  }
  return absl::OkStatus();
}

// Runs `fn` on a thread that has joined network namespace `ns` ("" = this one). Sockets
// keep the namespace they were created in, so this is how the program gets sockets in
// both namespaces without helper processes.
template <typename T>
absl::StatusOr<T> InNetns(const std::string& ns, std::function<absl::StatusOr<T>()> fn) {
  absl::StatusOr<T> out = absl::InternalError("not run");
  std::thread t([&] {
    if (!ns.empty()) {
      Fd nsfd(::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
      if (nsfd.get() < 0 || setns(nsfd.get(), CLONE_NEWNET) != 0) {
        out = absl::ErrnoToStatus(errno, "join network namespace " + ns);
        return;
      }
    }
    out = fn();
  });
  t.join();
  return out;
}

sockaddr_in Ipv4(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

absl::StatusOr<Fd> UdpSocket(const std::string& ns, const std::string& bind_ip, uint16_t port,
                             int rcvbuf) {
  return InNetns<Fd>(ns, [&]() -> absl::StatusOr<Fd> {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return absl::ErrnoToStatus(errno, "UDP socket");
    if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    if (!bind_ip.empty()) {
      sockaddr_in a = Ipv4(bind_ip, port);
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return absl::ErrnoToStatus(errno, absl::StrCat("bind UDP ", bind_ip, ":", port));
      }
    }
    return fd;
  });
}

// ---- what the receiver counts

struct SessionRx {
  uint64_t unique = 0, duplicates = 0, reordered = 0;
  uint64_t highest = 0;
  bool any = false;
  std::vector<bool> seen;
};

struct StepRx {
  std::map<uint32_t, SessionRx> sessions;  // path smig
  SessionRx relay;
  std::vector<int64_t> latency_ns[2];      // by path
  uint64_t foreign = 0;                    // not ours, or of another step
  absl::Time last_arrival = absl::InfinitePast();
};

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

// One UDP socket for every flow (the vehicle's sinks and the relay send here); datagrams
// are told apart by the header.
class Receiver {
 public:
  static absl::StatusOr<std::unique_ptr<Receiver>> Start(const std::string& ns, int cpu) {
    absl::StatusOr<Fd> fd = UdpSocket(ns, "0.0.0.0", kReceiverPort, 64 << 20);
    if (!fd.ok()) return fd.status();
    const int on = 1;
    ::setsockopt(fd->get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    std::unique_ptr<Receiver> r(new Receiver(std::move(*fd)));
    r->thread_ = std::thread([rp = r.get(), cpu] {
      (void)PinThisThread(cpu);
      rp->Run();
    });
    return r;
  }
  ~Receiver() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  void SetStep(uint16_t step) {
    std::lock_guard<std::mutex> lock(mu_);
    step_ = step;
    rx_ = StepRx{};
  }
  // The counts of the current step once nothing arrived for `quiet` (at most 10x quiet).
  StepRx Drain(absl::Duration quiet) {
    const absl::Time give_up = absl::Now() + 10 * quiet;
    while (absl::Now() < give_up && Sleep(absl::Milliseconds(100))) {
      std::lock_guard<std::mutex> lock(mu_);
      if (absl::Now() - rx_.last_arrival >= quiet) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(rx_);
  }

 private:
  explicit Receiver(Fd fd) : fd_(std::move(fd)) {}

  void Run() {
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

  Fd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  uint16_t step_ = 0xffff;
  StepRx rx_;
};

// ---- the plain UDP relay (path B)

class Relay {
 public:
  static absl::StatusOr<std::unique_ptr<Relay>> Start(const std::string& ns,
                                                      const std::string& ip, sockaddr_in to,
                                                      int cpu) {
    absl::StatusOr<Fd> in = UdpSocket(ns, ip, kRelayPort, 0);
    if (!in.ok()) return in.status();
    absl::StatusOr<Fd> out = UdpSocket(ns, "", 0, 0);
    if (!out.ok()) return out.status();
    std::unique_ptr<Relay> r(new Relay(std::move(*in), std::move(*out), to));
    r->thread_ = std::thread([rp = r.get(), cpu] {
      (void)PinThisThread(cpu);
      rp->Run();
    });
    return r;
  }
  ~Relay() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  Relay(Fd in, Fd out, sockaddr_in to) : in_(std::move(in)), out_(std::move(out)), to_(to) {}
  void Run() {
    char buf[65536];
    while (!stop_.load()) {
      pollfd p{.fd = in_.get(), .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recvfrom(in_.get(), buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
      if (n <= 0) continue;
      (void)::sendto(out_.get(), buf, static_cast<size_t>(n), 0,
                     reinterpret_cast<const sockaddr*>(&to_), sizeof to_);
    }
  }
  Fd in_, out_;
  sockaddr_in to_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// ---- the generator

struct Target {
  sockaddr_in to;
  uint16_t path;
  uint32_t session;
};

struct GenResult {
  std::vector<uint64_t> sent;  // per target
  absl::Duration max_lag;      // how late the worst send was against its schedule
  absl::Time start, end;
};

// Sends to every target at --bitrate for `window`, round robin, evenly spaced: target k of
// K gets datagrams at start + (j*K + k) * period/K.
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
    if (::sendto(fd, buf.data(), buf.size(), 0, reinterpret_cast<const sockaddr*>(&targets[k].to),
                 sizeof targets[k].to) == static_cast<ssize_t>(buf.size())) {
      ++r.sent[k];
    }
  }
  r.end = absl::Now();
  return r;
}

// ---- /proc

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// utime + stime of a process or thread, in clock ticks; and its name.
struct Ticks {
  uint64_t ticks = 0;
  std::string comm;
};
std::optional<Ticks> ReadStat(const std::string& path) {
  const std::string s = Slurp(path);
  const size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(s.substr(close + 2), ' ', absl::SkipEmpty());
  uint64_t u = 0, st = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &u) || !absl::SimpleAtoi(f[12], &st)) {
    return std::nullopt;
  }
  return Ticks{u + st, s.substr(open + 1, close - open - 1)};
}

struct CpuSnapshot {
  absl::Time at;
  uint64_t edge = 0, vehicle = 0, self = 0;
  std::map<std::string, uint64_t> edge_threads;  // by thread name (summed)
  std::vector<std::pair<uint64_t, uint64_t>> cores;  // (busy, total) per core
};

CpuSnapshot TakeCpu(pid_t edge, const std::vector<pid_t>& vehicles) {
  CpuSnapshot c;
  c.at = absl::Now();
  if (auto t = ReadStat(absl::StrCat("/proc/", edge, "/stat"))) c.edge = t->ticks;
  for (pid_t v : vehicles) {
    if (auto t = ReadStat(absl::StrCat("/proc/", v, "/stat"))) c.vehicle += t->ticks;
  }
  if (auto t = ReadStat("/proc/self/stat")) c.self = t->ticks;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", edge, "/task"), ec)) {
    if (auto t = ReadStat(e.path().string() + "/stat")) c.edge_threads[t->comm] += t->ticks;
  }
  std::istringstream stat(Slurp("/proc/stat"));
  for (std::string line; std::getline(stat, line);) {
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] == ' ') continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t total = 0, idle = 0;
    for (size_t i = 1; i < f.size() && i <= 8; ++i) {
      uint64_t v = 0;
      (void)absl::SimpleAtoi(f[i], &v);
      total += v;
      if (i == 4 || i == 5) idle += v;  // idle, iowait
    }
    c.cores.emplace_back(total - idle, total);
  }
  return c;
}

// Per-socket receive drops (the last column of /proc/<pid>/net/udp, which shows the
// namespace of <pid>), by local port.
std::map<uint16_t, uint64_t> UdpDrops(pid_t in_ns) {
  std::map<uint16_t, uint64_t> out;
  std::istringstream in(Slurp(absl::StrCat("/proc/", in_ns, "/net/udp")));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 13) continue;
    const size_t colon = f[1].find(':');
    uint32_t port = 0;
    uint64_t drops = 0;
    if (colon == std::string::npos || !absl::SimpleHexAtoi(f[1].substr(colon + 1), &port) ||
        !absl::SimpleAtoi(f.back(), &drops)) {
      continue;
    }
    out[static_cast<uint16_t>(port)] += drops;
  }
  return out;
}

// The sum of a Prometheus metric's samples (every label set) in /metrics text.
double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) sum += v;
  }
  return sum;
}

// ---- the data planes

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

struct Daemon {
  std::unique_ptr<Process> process;
  std::string ns;
  int metrics_port = 0;
  std::unique_ptr<v1::DataplaneAgent::Stub> stub;

  std::string Metrics() const {
    absl::StatusOr<std::string> text = InNetns<std::string>(
        ns, [this]() -> absl::StatusOr<std::string> {
          return smig::testbed::HttpGet(metrics_port, "/metrics");
        });
    return text.ok() ? *text : "";
  }
};

absl::StatusOr<Daemon> StartDaemon(const std::vector<std::string>& argv, const std::string& ns,
                                   const std::string& dir, const std::string& name) {
  Daemon d;
  d.ns = ns;
  const std::string log = dir + "/" + name + ".log";
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(argv, log);
  if (!p.ok()) return p.status();
  d.process = std::move(*p);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  for (;;) {
    std::string out = Slurp(log);
    if (size_t nl = out.find('\n'); nl != std::string::npos) {
      google::protobuf::Struct s;
      if (!google::protobuf::util::JsonStringToMessage(out.substr(0, nl), &s).ok() ||
          !s.fields().contains("metrics_port")) {
        return absl::InternalError(absl::StrCat(name, " printed ", out));
      }
      d.metrics_port = static_cast<int>(s.fields().at("metrics_port").number_value());
      break;
    }
    if (absl::Now() > deadline || g_stop.load()) {
      return absl::DeadlineExceededError(
          absl::StrCat(name, " did not start: ", Slurp(log + ".err")));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  d.stub = v1::DataplaneAgent::NewStub(grpc::CreateChannel(
      absl::StrCat("unix:", dir, "/", name, ".sock"), grpc::InsecureChannelCredentials()));
  return d;
}

// Stops a daemon the way an operator would (SIGTERM), then for sure.
void StopDaemon(Daemon& d) {
  if (!d.process) return;
  d.process->Kill(SIGTERM);
  (void)d.process->Wait(absl::Seconds(8));  // SIGKILL after that
}

// The network: namespace E holds the edge, the generator and the receiver, and a bridge
// (10.78.0.1/16); every vehicle has a namespace of its own joined to the bridge by a veth
// pair (one radio each), and so has the relay. A vehicle needs a namespace of its own
// because an edge reaches every vehicle on one UDP encapsulation port (9899) and usrsctp
// takes that port for the whole process; and one vehicle process serves one session
// because an edge has one association per vehicle endpoint.
class Fleet {
 public:
  static absl::StatusOr<std::unique_ptr<Fleet>> Create() {
    std::unique_ptr<Fleet> f(new Fleet(absl::StrCat("smigb", getpid())));
    f->edge_ns_ = f->tag_ + "e";
    if (auto st = f->AddNs(f->edge_ns_); !st.ok()) return st;
    if (auto st = smig::testbed::Sh(absl::StrCat(
            "ip -n ", f->edge_ns_, " link add vbr type bridge && ip -n ", f->edge_ns_,
            " addr add 10.78.0.1/16 dev vbr && ip -n ", f->edge_ns_, " link set vbr up"));
        !st.ok()) {
      return st.status();
    }
    return f;
  }
  ~Fleet() {
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
      (void)smig::testbed::Sh("ip netns del " + *it);
    }
  }
  const std::string& edge_ns() const { return edge_ns_; }
  // Slot k's namespace (made on first use) and address; the relay takes kRelaySlot.
  absl::StatusOr<std::string> Slot(size_t k) {
    const std::string ns = absl::StrCat(tag_, "v", k);
    if (std::find(namespaces_.begin(), namespaces_.end(), ns) != namespaces_.end()) return ns;
    if (auto st = AddNs(ns); !st.ok()) return st;
    const std::string port = absl::StrCat("vb", k);
    if (auto st = smig::testbed::Sh(absl::StrCat(
            "ip link add eth0 netns ", ns, " type veth peer name ", port, " netns ", edge_ns_,
            " && ip -n ", edge_ns_, " link set ", port, " master vbr up && ip -n ", ns,
            " addr add ", Address(k), "/16 dev eth0 && ip -n ", ns, " link set eth0 up"));
        !st.ok()) {
      return st.status();
    }
    return ns;
  }
  static std::string Address(size_t k) {
    return absl::StrCat("10.78.", 1 + k / 200, ".", 2 + k % 200);
  }

 private:
  explicit Fleet(std::string tag) : tag_(std::move(tag)) {}
  absl::Status AddNs(const std::string& ns) {
    if (auto st = smig::testbed::Sh(absl::StrCat("ip netns add ", ns)); !st.ok()) return st.status();
    namespaces_.push_back(ns);
    return smig::testbed::Sh(absl::StrCat("ip -n ", ns, " link set lo up")).status();
  }
  std::string tag_, edge_ns_;
  std::vector<std::string> namespaces_;
};

constexpr size_t kRelaySlot = 49999;  // 10.78.250.201

struct Vehicle {
  Daemon daemon;
  uint64_t session = 0;  // 0: none
};

struct Setup {
  std::unique_ptr<Fleet> fleet;
  std::string dir;
  Daemon edge;
  std::vector<Vehicle> vehicles;  // slot k serves the k-th open session
  std::unique_ptr<Receiver> receiver;
  std::unique_ptr<Relay> relay;
  Fd gen;
  std::vector<uint64_t> open;  // session ids served by the edge, ascending, one per slot
  uint64_t next_id = 1;

  ~Setup() {
    relay.reset();
    receiver.reset();
    // SIGTERM to everyone first, so the daemons shut down side by side.
    if (edge.process) edge.process->Kill(SIGTERM);
    for (Vehicle& v : vehicles) {
      if (v.daemon.process) v.daemon.process->Kill(SIGTERM);
    }
    StopDaemon(edge);
    for (Vehicle& v : vehicles) StopDaemon(v.daemon);
    edge.process.reset();
    vehicles.clear();
    fleet.reset();  // deletes the namespaces
  }
};

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

std::vector<std::string> InNs(const std::string& ns, int cpu, const std::string& config) {
  return {"ip", "netns", "exec", ns, "taskset", "-c", std::to_string(cpu), SMIG_DATAPLANE,
          "--config=" + config};
}

absl::StatusOr<std::unique_ptr<Setup>> Build() {
  auto s = std::make_unique<Setup>();
  absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Create();
  if (!fleet.ok()) return fleet.status();
  s->fleet = std::move(*fleet);
  s->dir = smig::testbed::ScratchDir() + "/sessions";
  std::filesystem::create_directories(s->dir);
  if (auto st = WriteFile(s->dir + "/key", "smig-bench-sessions-deployment-key"); !st.ok()) return st;
  // max_sessions: far above what the ramp reaches, so the edge's own cap never decides.
  if (auto st = WriteFile(
          s->dir + "/edge.json",
          absl::StrCat(R"({"role":"ROLE_EDGE","server_id":"edge-bench","local_addresses":["10.78.0.1"],)",
                       R"("sctp_stack":")", absl::GetFlag(FLAGS_sctp_stack), R"(",)",
                       R"("max_sessions":60000,"grpc_address":"unix:)", s->dir,
                       R"(/edge.sock","metrics_address":"127.0.0.1:0","deployment_key_file":")",
                       s->dir, R"(/key"})"));
      !st.ok()) {
    return st;
  }
  const std::string ns = s->fleet->edge_ns();
  absl::StatusOr<Daemon> edge =
      StartDaemon(InNs(ns, absl::GetFlag(FLAGS_edge_cpu), s->dir + "/edge.json"), ns, s->dir, "edge");
  if (!edge.ok()) return edge.status();
  s->edge = std::move(*edge);
  // `ip netns exec` and taskset exec (no fork), so the pid is the daemon's.
  const std::string comm = Slurp(absl::StrCat("/proc/", s->edge.process->pid(), "/comm"));
  if (comm.rfind("smig-dataplane", 0) != 0) {
    return absl::InternalError(absl::StrCat("pid ", s->edge.process->pid(), " is \"", comm,
                                            "\", not smig-dataplane"));
  }
  absl::StatusOr<std::unique_ptr<Receiver>> rx =
      Receiver::Start(ns, absl::GetFlag(FLAGS_other_cpu));
  if (!rx.ok()) return rx.status();
  s->receiver = std::move(*rx);
  absl::StatusOr<std::string> relay_ns = s->fleet->Slot(kRelaySlot);
  if (!relay_ns.ok()) return relay_ns.status();
  absl::StatusOr<std::unique_ptr<Relay>> relay =
      Relay::Start(*relay_ns, Fleet::Address(kRelaySlot), Ipv4("10.78.0.1", kReceiverPort),
                   absl::GetFlag(FLAGS_edge_cpu));
  if (!relay.ok()) return relay.status();
  s->relay = std::move(*relay);
  absl::StatusOr<Fd> gen = UdpSocket(ns, "", 0, 0);
  if (!gen.ok()) return gen.status();
  s->gen = std::move(*gen);
  return s;
}

// Starts the vehicle of slot k (its own namespace, the vehicles' core).
absl::Status StartVehicle(Setup& s, size_t k) {
  absl::StatusOr<std::string> ns = s.fleet->Slot(k);
  if (!ns.ok()) return ns.status();
  const std::string name = absl::StrCat("vehicle", k);
  if (auto st = WriteFile(
          absl::StrCat(s.dir, "/", name, ".json"),
          absl::StrCat(R"({"role":"ROLE_VEHICLE","local_addresses":[")", Fleet::Address(k),
                       R"("],"sctp_port":)", kVehicleSctpPort, R"(,"sctp_stack":")",
                       absl::GetFlag(FLAGS_sctp_stack), R"(","grpc_address":"unix:)", s.dir, "/",
                       name, R"(.sock","metrics_address":"off","deployment_key_file":")",
                       s.dir, R"(/key","sinks":{"0":{"udp":"10.78.0.1:)", kReceiverPort,
                       R"("}}})"));
      !st.ok()) {
    return st;
  }
  absl::StatusOr<Daemon> d =
      StartDaemon(InNs(*ns, absl::GetFlag(FLAGS_other_cpu), absl::StrCat(s.dir, "/", name, ".json")),
                  *ns, s.dir, name);
  if (!d.ok()) return d.status();
  if (s.vehicles.size() <= k) s.vehicles.resize(k + 1);
  s.vehicles[k].daemon = std::move(*d);
  return absl::OkStatus();
}

// Opens or releases sessions until the edge serves `n`, all of them past their HELLO; the
// vehicle of a released session is stopped, so idle vehicles cost nothing.
absl::Status SetSessions(Setup& s, size_t n) {
  while (s.open.size() > n) {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(s.open.back());
    v1::ReleaseSessionResponse resp;
    // A failed release is a finding, not the end of the run: reported, and the session is
    // no longer counted (the edge may still hold it).
    if (auto st = FromGrpc(s.edge.stub->ReleaseSession(&ctx, req, &resp), "ReleaseSession");
        !st.ok()) {
      std::cout << absl::StrCat(R"({"bench":"sessions_release_error","session":)", s.open.back(),
                                R"(,"error":")", absl::StrReplaceAll(st.ToString(), {{"\"", "'"}}),
                                R"("})")
                << std::endl;
    }
    s.open.pop_back();
  }
  while (s.open.size() < n) {
    const size_t k = s.open.size();
    if (k < s.vehicles.size() && s.vehicles[k].daemon.process) {
      // A released session's vehicle: wait for the graceful shutdown, then restart it.
      StopDaemon(s.vehicles[k].daemon);
      s.vehicles[k].daemon.process.reset();
    }
    if (auto st = StartVehicle(s, k); !st.ok()) return st;
    const uint64_t id = s.next_id++;
    if (kIngestBase + id > 65535) return absl::OutOfRangeError("out of UDP ports for sessions");
    v1::OpenSessionRequest req;
    req.set_session_id(id);
    req.add_vehicle_addresses(Fleet::Address(k));
    req.set_vehicle_port(kVehicleSctpPort);
    v1::FlowState* f = req.add_flows();
    f->set_flow_id(0);
    f->mutable_source()->set_udp_listen(absl::StrCat("127.0.0.1:", kIngestBase + id));
    f->set_bitrate_bps(static_cast<uint32_t>(absl::GetFlag(FLAGS_bitrate)));
    grpc::ClientContext ctx;
    v1::Session out;
    if (auto st = FromGrpc(s.edge.stub->OpenSession(&ctx, req, &out), "OpenSession");
        !st.ok()) {
      return st;
    }
    s.open.push_back(id);
    s.vehicles[k].session = id;
    if (g_stop.load()) return Stopped();
  }
  // Vehicles beyond n: stopped once their session is gone.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    grpc::ClientContext ctx;
    v1::ListSessionsResponse list;
    if (auto st = FromGrpc(s.edge.stub->ListSessions(&ctx, v1::ListSessionsRequest(), &list),
                           "ListSessions");
        !st.ok()) {
      return st;
    }
    size_t serving = 0;
    for (const v1::Session& x : list.sessions()) serving += x.phase() == v1::SESSION_PHASE_SERVING;
    if (serving >= n && static_cast<size_t>(list.sessions_size()) >= n) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "after 60 s the edge serves ", serving, " of ", n, " sessions (", list.sessions_size(),
          " listed)"));
    }
    if (!Sleep(absl::Milliseconds(100))) return Stopped();
  }
  for (size_t k = n; k < s.vehicles.size(); ++k) {
    if (s.vehicles[k].daemon.process) {
      StopDaemon(s.vehicles[k].daemon);
      s.vehicles[k].daemon.process.reset();
    }
  }
  return absl::OkStatus();
}

// ---- one step

struct Latency {
  double p50 = 0, p99 = 0, max = 0;  // ms
  size_t samples = 0;
};
Latency Percentiles(std::vector<int64_t> v) {
  Latency l;
  l.samples = v.size();
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return static_cast<double>(v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]) / 1e6; };
  l.p50 = at(0.5);
  l.p99 = at(0.99);
  l.max = at(1.0);
  return l;
}
std::string Json(const Latency& l) {
  return absl::StrFormat(R"({"p50":%.3f,"p99":%.3f,"max":%.3f,"samples":%d})", l.p50, l.p99,
                         l.max, l.samples);
}

struct StepResult {
  size_t sessions = 0;
  uint64_t sent = 0, received = 0, lost = 0, duplicates = 0, reordered = 0;
  size_t sessions_with_loss = 0;
  uint64_t relay_sent = 0, relay_lost = 0;
  double edge_cpu = 0, vehicle_cpu = 0, bench_cpu = 0;
  std::vector<double> core_busy;
  Latency smig, relay;
  std::string json;
};

absl::StatusOr<StepResult> RunStep(Setup& s, size_t n, uint16_t step) {
  if (auto st = SetSessions(s, n); !st.ok()) return st;
  if (!Sleep(absl::Milliseconds(500))) return Stopped();
  std::vector<Target> targets;
  for (uint64_t id : s.open) {
    targets.push_back({Ipv4("127.0.0.1", static_cast<uint16_t>(kIngestBase + id)), kPathSmig,
                       static_cast<uint32_t>(id)});
  }
  // The relay stream sits in the middle of the round, not next to one session's datagram.
  targets.insert(targets.begin() + static_cast<ptrdiff_t>(targets.size() / 2),
                 Target{Ipv4(Fleet::Address(kRelaySlot), kRelayPort), kPathRelay, 0});
  s.receiver->SetStep(step);

  const pid_t edge_pid = s.edge.process->pid();
  std::vector<pid_t> vehicle_pids;
  for (size_t k = 0; k < n; ++k) vehicle_pids.push_back(s.vehicles[k].daemon.process->pid());
  // Receive-buffer drops of the usrsctp UDP sockets of every vehicle (each its namespace).
  auto vehicle_drops = [&] {
    uint64_t d = 0;
    for (pid_t v : vehicle_pids) {
      auto m = UdpDrops(v);
      d += m[smig::transport::kDefaultUdpEncapsPort];
    }
    return d;
  };
  auto drops_edge0 = UdpDrops(edge_pid);
  const uint64_t drops_vehicle0 = vehicle_drops();
  const std::string edge_m0 = s.edge.Metrics();
  const CpuSnapshot cpu0 = TakeCpu(edge_pid, vehicle_pids);
  GenResult gen;
  std::thread gen_thread([&] {
    (void)PinThisThread(absl::GetFlag(FLAGS_other_cpu));
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    gen = Generate(s.gen.get(), targets, step, absl::GetFlag(FLAGS_bitrate),
                   static_cast<size_t>(absl::GetFlag(FLAGS_datagram)), absl::GetFlag(FLAGS_window));
  });
  gen_thread.join();
  const CpuSnapshot cpu1 = TakeCpu(edge_pid, vehicle_pids);
  if (g_stop.load()) return Stopped();
  StepRx rx = s.receiver->Drain(absl::GetFlag(FLAGS_drain));
  auto drops_edge1 = UdpDrops(edge_pid);
  const uint64_t drops_vehicle1 = vehicle_drops();
  const std::string edge_m1 = s.edge.Metrics();

  StepResult r;
  r.sessions = n;
  for (size_t k = 0; k < targets.size(); ++k) {
    if (targets[k].path == kPathRelay) {
      r.relay_sent = gen.sent[k];
      r.relay_lost = gen.sent[k] - std::min(gen.sent[k], rx.relay.unique);
      continue;
    }
    const SessionRx& got = rx.sessions[targets[k].session];
    r.sent += gen.sent[k];
    r.received += got.unique;
    const uint64_t lost = gen.sent[k] - std::min(gen.sent[k], got.unique);
    r.lost += lost;
    r.sessions_with_loss += lost > 0;
    r.duplicates += got.duplicates;
    r.reordered += got.reordered;
  }
  const double secs = absl::ToDoubleSeconds(cpu1.at - cpu0.at);
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  auto cores = [&](uint64_t a, uint64_t b) { return static_cast<double>(b - a) / hz / secs; };
  r.edge_cpu = cores(cpu0.edge, cpu1.edge);
  r.vehicle_cpu = cores(cpu0.vehicle, cpu1.vehicle);
  r.bench_cpu = cores(cpu0.self, cpu1.self);
  for (size_t c = 0; c < cpu1.cores.size() && c < cpu0.cores.size(); ++c) {
    const double total = static_cast<double>(cpu1.cores[c].second - cpu0.cores[c].second);
    r.core_busy.push_back(total > 0 ? static_cast<double>(cpu1.cores[c].first - cpu0.cores[c].first) / total : 0);
  }
  std::vector<std::string> threads;
  for (const auto& [name, t1] : cpu1.edge_threads) {
    auto it = cpu0.edge_threads.find(name);
    const double c = cores(it == cpu0.edge_threads.end() ? 0 : it->second, t1);
    if (c >= 0.005) threads.push_back(absl::StrFormat(R"("%s":%.3f)", name, c));
  }
  // Receive-buffer drops by socket: the edge's ingest sockets, the stacks' UDP
  // encapsulation sockets (SCTP retransmits those), the receiver.
  auto delta = [](const std::map<uint16_t, uint64_t>& a, const std::map<uint16_t, uint64_t>& b,
                  auto pred) {
    uint64_t d = 0;
    for (const auto& [port, v] : b) {
      if (!pred(port)) continue;
      auto it = a.find(port);
      d += v - std::min(v, it == a.end() ? 0 : it->second);
    }
    return d;
  };
  auto is_ingest = [](uint16_t p) { return p >= kIngestBase; };
  const uint64_t ingest_drops = delta(drops_edge0, drops_edge1, is_ingest);
  const uint64_t receiver_drops =
      delta(drops_edge0, drops_edge1, [](uint16_t p) { return p == kReceiverPort; });
  const uint64_t edge_encaps_drops = delta(drops_edge0, drops_edge1, [](uint16_t p) {
    return p == smig::transport::kDefaultUdpEncapsPort;
  });
  const uint64_t vehicle_encaps_drops = drops_vehicle1 - std::min(drops_vehicle0, drops_vehicle1);
  auto mdelta = [](const std::string& a, const std::string& b, const std::string& name) {
    return MetricSum(b, name) - MetricSum(a, name);
  };
  // Where a lossy session's datagrams stopped: the edge's and the vehicle's view of the
  // first few such sessions.
  std::vector<std::string> diag;
  for (size_t k = 0; k < n && diag.size() < 4; ++k) {
    const uint64_t id = s.open[k];
    size_t t = 0;
    while (t < targets.size() && !(targets[t].path == kPathSmig && targets[t].session == id)) ++t;
    if (t == targets.size() || rx.sessions[static_cast<uint32_t>(id)].unique >= gen.sent[t]) continue;
    v1::GetSessionRequest req;
    req.set_session_id(id);
    v1::Session e, v;
    grpc::ClientContext c1, c2;
    c1.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    (void)s.edge.stub->GetSession(&c1, req, &e);
    (void)s.vehicles[k].daemon.stub->GetSession(&c2, req, &v);
    auto flow = [](const v1::Session& x) {
      return x.flows_size() == 0
                 ? std::string("null")
                 : absl::StrCat(R"({"next_sequence":)", x.flows(0).next_sequence(), R"(,"frames":)",
                                x.flows(0).frames(), R"(,"buffered":)", x.flows(0).buffered_frames(),
                                "}");
    };
    diag.push_back(absl::StrCat(R"({"session":)", id, R"(,"received":)",
                                rx.sessions[static_cast<uint32_t>(id)].unique, R"(,"sent":)",
                                gen.sent[t], R"(,"edge_phase":)", e.phase(), R"(,"edge_flow":)",
                                flow(e), R"(,"vehicle_generation":)", v.generation(),
                                R"(,"vehicle_flow":)", flow(v), R"(,"edge_associations":)",
                                e.associations_size(), R"(,"vehicle_associations":)",
                                v.associations_size(), "}"));
  }
  r.smig = Percentiles(std::move(rx.latency_ns[kPathSmig]));
  r.relay = Percentiles(std::move(rx.latency_ns[kPathRelay]));
  r.json = absl::StrCat(
      R"({"bench":"sessions","stack":")",
      absl::GetFlag(FLAGS_sctp_stack), R"(","sessions":)", n,
      absl::StrFormat(R"(,"seconds":%.2f,"mbit_per_s_offered":%.1f)",
                      absl::ToDoubleSeconds(gen.end - gen.start),
                      static_cast<double>(r.sent) * absl::GetFlag(FLAGS_datagram) * 8 / 1e6 /
                          absl::ToDoubleSeconds(gen.end - gen.start)),
      R"(,"sent":)", r.sent, R"(,"received":)", r.received, R"(,"lost":)", r.lost,
      R"(,"sessions_with_loss":)", r.sessions_with_loss, R"(,"duplicates":)", r.duplicates,
      R"(,"reordered":)", r.reordered, R"(,"foreign":)", rx.foreign,
      absl::StrFormat(R"(,"edge_cpu":%.3f,"vehicle_cpu":%.3f,"bench_cpu":%.3f)", r.edge_cpu,
                      r.vehicle_cpu, r.bench_cpu),
      R"(,"core_busy":[)",
      absl::StrJoin(r.core_busy, ",", [](std::string* o, double v) { absl::StrAppendFormat(o, "%.3f", v); }),
      absl::StrFormat(R"(],"edge_core_others":%.3f)",
                      static_cast<size_t>(absl::GetFlag(FLAGS_edge_cpu)) < r.core_busy.size()
                          ? std::max(0.0, r.core_busy[absl::GetFlag(FLAGS_edge_cpu)] - r.edge_cpu)
                          : 0.0),
      R"(,"edge_threads":{)", absl::StrJoin(threads, ","), "}",
      R"(,"drops":{"edge_ingest":)", ingest_drops, R"(,"edge_sctp_udp":)", edge_encaps_drops,
      R"(,"vehicle_sctp_udp":)", vehicle_encaps_drops, R"(,"receiver":)", receiver_drops, "}",
      absl::StrFormat(R"(,"edge_send_errors":%.0f,"edge_send_deferrals":%.0f)",
                      mdelta(edge_m0, edge_m1, "smig_send_errors_total"),
                      mdelta(edge_m0, edge_m1, "smig_send_deferrals_total")),
      absl::StrFormat(R"(,"generator_max_lag_ms":%.2f)", absl::ToDoubleMilliseconds(gen.max_lag)),
      R"(,"latency_ms":{"smig":)", Json(r.smig), R"(,"relay":)", Json(r.relay),
      R"(},"relay_sent":)", r.relay_sent, R"(,"relay_lost":)", r.relay_lost,
      R"(,"lossy_sessions":[)", absl::StrJoin(diag, ","), "]}");
  return r;
}

int Fail(const absl::Status& s) {
  std::cerr << "smig-bench-sessions: " << s << "\n";
  return 1;
}

std::string Row(const StepResult& r) {
  return absl::StrFormat("%8d %10d %8d %6d %8.1f%% %8.1f%% %s/%s  %9.3f %9.3f %9.3f | %7.3f %7.3f %7.3f",
                         r.sessions, r.sent, r.lost, r.duplicates, 100 * r.edge_cpu,
                         100 * r.vehicle_cpu,
                         r.core_busy.size() > 0 ? absl::StrFormat("%.0f%%", 100 * r.core_busy[0]) : "-",
                         r.core_busy.size() > 1 ? absl::StrFormat("%.0f%%", 100 * r.core_busy[1]) : "-",
                         r.smig.p50, r.smig.p99, r.smig.max, r.relay.p50, r.relay.p99,
                         r.relay.max);
}

absl::Status Run(std::vector<StepResult>& results) {
  std::vector<size_t> ramp;
  for (const std::string& v : absl::GetFlag(FLAGS_sessions)) {
    size_t n = 0;
    if (!absl::SimpleAtoi(v, &n) || n == 0 || (!ramp.empty() && n <= ramp.back())) {
      return absl::InvalidArgumentError("--sessions must be ascending positive counts");
    }
    ramp.push_back(n);
  }
  if (!smig::testbed::CanCreateNamespaces()) {
    return absl::PermissionDeniedError("needs root (network namespaces)");
  }
  // This process's threads (generator, receiver) stay off the edge's core; the relay
  // thread pins itself to the edge's core, like the edge it stands in for.
  if (auto st = PinThisThread(absl::GetFlag(FLAGS_other_cpu)); !st.ok()) return st;
  absl::StatusOr<std::unique_ptr<Setup>> setup = Build();
  if (!setup.ok()) return setup.status();
  Setup& s = **setup;

  uint16_t step = 0;
  auto run = [&](size_t n) -> absl::StatusOr<bool> {
    absl::StatusOr<StepResult> r = RunStep(s, n, step++);
    if (!r.ok()) return r.status();
    std::cout << r->json << std::endl;
    std::cerr << Row(*r) << std::endl;
    results.push_back(*r);
    return r->lost == 0;
  };
  std::cerr << "sessions    sent      lost   dups  edge cpu  veh. cpu core0/1  "
               "smig p50  smig p99  smig max | relay p50/p99/max (ms)\n";
  size_t good = 0, bad = 0;
  for (size_t n : ramp) {
    absl::StatusOr<bool> ok = run(n);
    if (!ok.ok()) return ok.status();
    if (!*ok) {
      bad = n;
      break;
    }
    good = n;
  }
  for (int i = 0; bad != 0 && i < absl::GetFlag(FLAGS_refine); ++i) {
    const size_t mid = (good + bad) / 2;
    if (mid <= good || mid >= bad) break;
    absl::StatusOr<bool> ok = run(mid);
    if (!ok.ok()) return ok.status();
    (*ok ? good : bad) = mid;
  }
  const StepResult& first = results.front();
  std::cout << absl::StrCat(
                   R"({"bench":"sessions_summary","stack":")",
                   absl::GetFlag(FLAGS_sctp_stack), R"(","max_lossless_sessions":)", good,
                   R"(,"first_lossy_sessions":)", bad == 0 ? "null" : std::to_string(bad),
                   R"(,"latency_at_sessions":)", first.sessions, R"(,"smig_latency_ms":)",
                   Json(first.smig), R"(,"relay_latency_ms":)", Json(first.relay),
                   absl::StrFormat(R"(,"ratio_p50":%.2f,"ratio_p99":%.2f})",
                                   first.relay.p50 > 0 ? first.smig.p50 / first.relay.p50 : 0,
                                   first.relay.p99 > 0 ? first.smig.p99 / first.relay.p99 : 0))
            << std::endl;
  std::cerr << "largest lossless session count: " << good
            << (bad ? absl::StrCat(" (loss at ", bad, ")") : " (no loss up to the last step)")
            << "\n";
  if (!absl::GetFlag(FLAGS_keep)) {
    std::error_code ec;
    std::filesystem::remove_all(s.dir, ec);
  } else {
    std::cerr << "configs and logs: " << s.dir << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "concurrent 2 Mbit/s sessions on one edge core, and ingest->egress latency "
                   "against a plain UDP relay (needs root)");
  // Termination signals and the deadline stop the run through the normal return path, so
  // every child process is stopped and every namespace deleted.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    std::cerr << "smig-bench-sessions: " << strsignal(sig) << ": stopping\n";
    g_stop.store(true);
  }).detach();
  alarm(static_cast<unsigned>(absl::ToInt64Seconds(absl::GetFlag(FLAGS_deadline))));
  std::vector<StepResult> results;
  absl::Status st = Run(results);
  if (!st.ok()) return st.code() == absl::StatusCode::kInvalidArgument ? (Fail(st), 2) : Fail(st);
  return 0;
}
