#include "tests/tools/linkemu/linkemu_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/netns.h"

namespace smig::linkemu::test {
namespace {

constexpr char kLinkemu[] = SMIG_LINKEMU;

}  // namespace

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

absl::StatusOr<std::string> Sh(const std::string& cmd) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return absl::InternalError("popen");
  std::string out;
  char b[4096];
  size_t n;
  while ((n = fread(b, 1, sizeof b, f)) > 0) out.append(b, n);
  int rc = pclose(f);
  if (rc != 0) return absl::InternalError(absl::StrCat(cmd, " -> ", rc, ": ", out));
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool Have(const std::string& program) {
  return Sh("command -v " + program).ok();
}

UniqueFd SocketIn(const std::string& ns, int type) {
  UniqueFd fd;
  (void)RunInNetns(ns, [&]() -> absl::Status {
    fd = UniqueFd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    return fd.valid() ? absl::OkStatus() : absl::ErrnoToStatus(errno, "socket");
  });
  return fd;
}

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

UdpEcho::UdpEcho(const std::string& ns, const std::string& ip, uint16_t port) {
  fd_ = SocketIn(ns, SOCK_DGRAM);
  int big = 8 << 20;
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  sockaddr_in a = Addr(ip, port);
  ok_ = fd_.valid() && bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  thread_ = std::thread([this] {
    char b[2048];
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(fd_.get(), b, sizeof b, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n > 0) sendto(fd_.get(), b, n, 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  });
}

UdpEcho::~UdpEcho() {
  stop_ = true;
  thread_.join();
}

std::vector<Probe> Probes(const std::string& ns, const std::string& ip, const std::string& peer,
                          uint16_t port, int count, absl::Duration interval,
                          absl::Duration linger, size_t size, const std::atomic<bool>* stop) {
  std::vector<Probe> probes(count);
  UniqueFd sock = SocketIn(ns, SOCK_DGRAM);
  if (!sock.valid()) return probes;
  const int fd = sock.get();
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  sockaddr_in local = Addr(ip, 0), to = Addr(peer, port);
  bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
  connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  std::vector<char> b(std::max<size_t>(size, 16));
  auto drain = [&](int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return;
    for (;;) {
      ssize_t n = recv(fd, b.data(), b.size(), MSG_DONTWAIT);
      if (n < 8) return;
      uint32_t seq;
      std::memcpy(&seq, b.data(), 4);
      if (seq < probes.size() && probes[seq].rtt_ns < 0) {
        probes[seq].rtt_ns = NowNs() - probes[seq].sent_ns;
      }
    }
  };
  const int64_t step = absl::ToInt64Nanoseconds(interval);
  const int64_t start = NowNs();
  for (int i = 0; i < count; ++i) {
    if (stop && *stop) {
      probes.resize(i);
      break;
    }
    const int64_t due = start + i * step;
    while (NowNs() < due) {
      const int64_t left = due - NowNs();
      if (left > 2000000) {
        drain(static_cast<int>(left / 1000000) - 1);
      } else {
        drain(0);
        if (left > 0) {
          timespec ts{0, static_cast<long>(std::min<int64_t>(left, 200000))};
          nanosleep(&ts, nullptr);
        }
      }
    }
    uint32_t seq = static_cast<uint32_t>(i);
    std::memcpy(b.data(), &seq, 4);
    probes[i].sent_ns = NowNs();
    send(fd, b.data(), size, 0);
    drain(0);
  }
  const int64_t end = NowNs() + absl::ToInt64Nanoseconds(linger);
  while (NowNs() < end) drain(static_cast<int>(std::max<int64_t>(1, (end - NowNs()) / 1000000)));
  return probes;
}

RttSummary Summarize(const std::vector<Probe>& probes) {
  RttSummary s;
  std::vector<double> r;
  for (const Probe& p : probes) {
    s.sent++;
    if (p.rtt_ns >= 0) r.push_back(Ms(p.rtt_ns));
  }
  s.received = static_cast<int>(r.size());
  if (r.empty()) return s;
  std::sort(r.begin(), r.end());
  s.min = r.front();
  s.max = r.back();
  s.median = r[r.size() / 2];
  s.p90 = r[std::min(r.size() - 1, r.size() * 9 / 10)];
  return s;
}

std::string Str(const RttSummary& s) {
  return absl::StrFormat("%d/%d received, rtt min %.2f median %.2f p90 %.2f max %.2f ms", s.received,
                         s.sent, s.min, s.median, s.p90, s.max);
}

double CpuSeconds(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::vector<std::string> f = absl::StrSplit(stat.substr(rp + 2), ' ');
  if (f.size() < 13) return 0;
  double ut = 0, st = 0;
  (void)absl::SimpleAtod(f[11], &ut);
  (void)absl::SimpleAtod(f[12], &st);
  return (ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Emu::~Emu() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::Status Emu::Start(const std::string& ns, const std::vector<std::string>& args,
                        const std::string& out_path, bool wait_ready) {
  out_ = out_path;
  unlink(out_path.c_str());  // no "ready" of an earlier run
  std::vector<std::string> argv = {"ip", "netns", "exec", ns, kLinkemu};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork");
  if (pid_ == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open((out_path + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> a;
    for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  if (!wait_ready) return absl::OkStatus();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    if (absl::StrContains(ReadFile(out_), "\"type\":\"ready\"")) return absl::OkStatus();
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError("smig-linkemu exited: " + ReadFile(out_ + ".err"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError("smig-linkemu not ready: " + ReadFile(out_ + ".err"));
}

int Emu::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (pid_ > 0) {
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return -1;
}

void Emu::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

Control::Control(const std::string& path) : fd_(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd_.reset();
}

std::string Control::Send(const std::string& line) {
  std::string l = line + "\n";
  if (send(fd_.get(), l.data(), l.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(l.size())) return "";
  std::string answer;
  for (;;) {
    size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      std::string one = buf_.substr(0, nl + 1);
      buf_.erase(0, nl + 1);
      answer += one;
      if (absl::StartsWith(one, "ok") || absl::StartsWith(one, "error")) return answer;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return answer + "<timeout>";
    char b[65536];
    ssize_t n = recv(fd_.get(), b, sizeof b, 0);
    if (n <= 0) return answer + "<closed>";
    buf_.append(b, n);
  }
}

double Field(const std::string& json, const std::string& section, const std::string& key) {
  size_t at = section.empty() ? 0 : json.find("\"" + section + "\":");
  if (at == std::string::npos) return -1;
  size_t k = json.find("\"" + key + "\":", at);
  if (k == std::string::npos) return -1;
  size_t v = k + key.size() + 3;
  size_t end = json.find_first_of(",}", v);
  double d = -1;
  (void)absl::SimpleAtod(json.substr(v, end - v), &d);
  return d;
}

void LinkEmuTest::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, iptables, NFQUEUE)";
  if (!Have("iptables-nft") || !Have("ip6tables-nft")) {
    GTEST_SKIP() << "iptables-nft missing (apt-get install iptables)";
  }
  const std::string id = absl::StrCat(getpid());
  ns_a_ = "lemu" + id + "a";
  ns_b_ = "lemu" + id + "b";
  dir_ = absl::StrCat(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "/linkemu-test-", id);
  ASSERT_TRUE(Sh("mkdir -p " + dir_).ok());
  sock_ = dir_ + "/control.sock";
  for (const std::string& ns : {ns_a_, ns_b_}) {
    (void)Sh("ip netns del " + ns);
    ASSERT_TRUE(Sh("ip netns add " + ns).ok());
    ASSERT_TRUE(Sh("ip -n " + ns + " link set lo up").ok());
  }
  // cell: 10.78.1.0/24, dsrc: 10.78.2.0/24; A (the car) has .2, B (the edge) .1.
  for (int path : {1, 2}) {
    const std::string name = path == 1 ? "cell" : "dsrc";
    ASSERT_TRUE(Sh(absl::StrCat("ip link add ", name, "a netns ", ns_a_, " type veth peer name ",
                                name, "b netns ", ns_b_))
                    .ok());
    ASSERT_TRUE(Sh(absl::StrCat("ip -n ", ns_a_, " addr add ", A(path), "/24 dev ", name, "a && ",
                                "ip -n ", ns_b_, " addr add ", B(path), "/24 dev ", name, "b && ",
                                "ip -n ", ns_a_, " link set ", name, "a up && ",
                                "ip -n ", ns_b_, " link set ", name, "b up"))
                    .ok());
  }
  echo1_ = std::make_unique<UdpEcho>(ns_b_, B(1), kPort);
  echo2_ = std::make_unique<UdpEcho>(ns_b_, B(2), kPort);
  ASSERT_TRUE(echo1_->ok() && echo2_->ok());
  // Neighbours resolved before timing anything.
  Summarize(Probes(ns_a_, A(1), B(1), kPort, 3, absl::Milliseconds(5), absl::Milliseconds(200)));
  Summarize(Probes(ns_a_, A(2), B(2), kPort, 3, absl::Milliseconds(5), absl::Milliseconds(200)));
}

void LinkEmuTest::TearDown() {
  emu_.reset();
  echo1_.reset();
  echo2_.reset();
  if (!ns_a_.empty()) {
    (void)Sh("ip netns del " + ns_a_);
    (void)Sh("ip netns del " + ns_b_);
    (void)Sh("rm -rf " + dir_);
  }
}

void LinkEmuTest::StartEmu(const std::string& links, std::vector<std::string> extra) {
  emu_ = std::make_unique<Emu>();
  std::vector<std::string> args = {"--control=" + sock_, "--links=" + links};
  args.insert(args.end(), extra.begin(), extra.end());
  absl::Status s = emu_->Start(ns_a_, args, dir_ + "/emu.out");
  ASSERT_TRUE(s.ok()) << s;
}

RttSummary LinkEmuTest::Rtt(int path, int count, absl::Duration interval) {
  return Summarize(Probes(ns_a_, A(path), B(path), kPort, count, interval));
}

std::string LinkEmuTest::Ruleset(const std::string& ns) {
  absl::StatusOr<std::string> r = Sh("ip netns exec " + ns + " nft list ruleset");
  return r.ok() ? *r : r.status().ToString();
}

}  // namespace smig::linkemu::test
