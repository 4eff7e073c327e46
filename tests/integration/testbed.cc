#include "tests/integration/testbed.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/netns.h"
#include "google/protobuf/util/json_util.h"

extern char** environ;

namespace smig::testbed {

absl::StatusOr<std::string> Sh(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("popen failed: ", command));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed (", rc, "): ", out));
  }
  return out;
}

bool CanCreateNamespaces() { return geteuid() == 0; }

absl::StatusOr<std::unique_ptr<TwoHostNet>> TwoHostNet::Create() {
  static std::atomic<int> counter{0};
  std::string tag = absl::StrCat("smig", getpid(), "x", counter++);
  std::unique_ptr<TwoHostNet> net(new TwoHostNet(tag + "a", tag + "b"));
  for (const std::string& ns : {net->ns_a_, net->ns_b_}) {
    if (auto s = Sh("ip netns add " + ns); !s.ok()) return s.status();
    if (auto s = Sh("ip -n " + ns + " link set lo up"); !s.ok()) return s.status();
  }
  for (int path = 1; path <= 2; ++path) {
    std::string a = absl::StrCat("a", path), b = absl::StrCat("b", path);
    std::vector<std::string> cmds = {
        absl::StrCat("ip link add ", a, " netns ", net->ns_a_, " type veth peer name ", b,
                     " netns ", net->ns_b_),
        absl::StrCat("ip -n ", net->ns_a_, " addr add ", AddrA(path), "/24 dev ", a),
        absl::StrCat("ip -n ", net->ns_b_, " addr add ", AddrB(path), "/24 dev ", b),
        absl::StrCat("ip -n ", net->ns_a_, " link set ", a, " up"),
        absl::StrCat("ip -n ", net->ns_b_, " link set ", b, " up"),
    };
    for (const std::string& c : cmds) {
      if (auto s = Sh(c); !s.ok()) return s.status();
    }
  }
  return net;
}

TwoHostNet::~TwoHostNet() {
  (void)Sh("ip netns del " + ns_a_);
  (void)Sh("ip netns del " + ns_b_);
}

std::vector<std::string> TwoHostNet::InA(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", ns_a_});
  return argv;
}

std::vector<std::string> TwoHostNet::InB(std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", ns_b_});
  return argv;
}

absl::Status TwoHostNet::SetLink(int path, bool up) {
  return Sh(absl::StrCat("ip -n ", ns_a_, " link set a", path, up ? " up" : " down")).status();
}

namespace {
// nftables drop of everything in and out of interface `iface` of namespace `ns`.
absl::Status DropOn(const std::string& ns, const std::string& iface, int path, bool drop) {
  std::string table = absl::StrCat("smigdrop", path);
  if (!drop) return Sh(absl::StrCat("ip netns exec ", ns, " nft delete table inet ", table)).status();
  return Sh(absl::StrCat("ip netns exec ", ns, " nft 'add table inet ", table, "; add chain inet ",
                         table, " in { type filter hook input priority 0; }; add chain inet ", table,
                         " out { type filter hook output priority 0; }; add rule inet ", table,
                         " in iifname \"", iface, "\" drop; add rule inet ", table,
                         " out oifname \"", iface, "\" drop'"))
      .status();
}
}  // namespace

absl::Status TwoHostNet::SetDrop(int path, bool drop) {
  return DropOn(ns_b_, absl::StrCat("b", path), path, drop);
}

absl::Status TwoHostNet::SetDropAtA(int path, bool drop) {
  return DropOn(ns_a_, absl::StrCat("a", path), path, drop);
}

absl::StatusOr<uint64_t> TwoHostNet::TxPackets(pid_t pid_in_a, int path) {
  std::ifstream dev(absl::StrCat("/proc/", pid_in_a, "/net/dev"));
  std::string line;
  std::string want = absl::StrCat("a", path, ":");
  while (std::getline(dev, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // iface: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes tx_packets
    uint64_t v = 0;
    if (f.size() > 10 && f[0] == want && absl::SimpleAtoi(f[10], &v)) return v;
  }
  return absl::NotFoundError(absl::StrCat("no interface a", path, " in /proc/", pid_in_a, "/net/dev"));
}

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const std::vector<std::string>& argv,
                                                        const std::string& stdout_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string err_path = stdout_path + ".err";
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
  return std::unique_ptr<Process>(new Process(pid, stdout_path));
}

Process::~Process() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      reaped_ = true;
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " did not exit within ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void Process::Kill(int signal) { kill(pid_, signal); }

std::string Process::Stderr() const {
  std::ifstream in(path_ + ".err");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<transport::v1::CatRecord> ReadRecords(const std::string& path) {
  std::vector<transport::v1::CatRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    transport::v1::CatRecord r;
    if (google::protobuf::util::JsonStringToMessage(line, &r).ok()) out.push_back(std::move(r));
  }
  return out;
}

void AwaitFirstRecord(const std::string& path, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (ReadRecords(path).empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::optional<transport::v1::CatSummary> LastSummary(
    const std::vector<transport::v1::CatRecord>& records) {
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (it->has_summary()) return it->summary();
  }
  return std::nullopt;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    close(fd);
    return "";
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

absl::StatusOr<std::unique_ptr<UdpRecorder>> UdpRecorder::Start(const std::string& netns,
                                                                uint16_t port) {
  std::unique_ptr<UdpRecorder> r(new UdpRecorder());
  std::promise<absl::Status> bound;
  std::future<absl::Status> ready = bound.get_future();
  UdpRecorder* self = r.get();
  r->thread_ = std::thread([self, netns, port, &bound] {
    if (absl::Status s = JoinNetns(netns); !s.ok()) return bound.set_value(s);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
      close(fd);
      return bound.set_value(absl::UnavailableError(absl::StrCat("bind 127.0.0.1:", port)));
    }
    // Arrival times are the kernel's (SO_TIMESTAMPNS, CLOCK_REALTIME like absl::Now()):
    // when the datagram reached the player's socket, however late this thread runs.
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    bound.set_value(absl::OkStatus());
    std::vector<char> buf(65536);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    while (!self->stop_.load()) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      iovec iov{buf.data(), buf.size()};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
      if (n <= 0) continue;
      absl::Time at = absl::Now();
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts;
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          at = absl::TimeFromTimespec(ts);
        }
      }
      self->datagrams_.push_back({at, static_cast<size_t>(n)});
      self->payloads_.emplace_back(buf.data(), static_cast<size_t>(n));
    }
    close(fd);
  });
  absl::Status s = ready.get();
  if (!s.ok()) {
    r->Stop();
    return s;
  }
  return r;
}

void UdpRecorder::Stop() {
  stop_.store(true);
  if (!thread_.joinable()) return;
  thread_.join();
  std::vector<size_t> order(datagrams_.size());
  absl::Time newest = absl::InfinitePast();
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
    if (datagrams_[i].at < newest) ++reordered_;  // read after a later-stamped one
    newest = std::max(newest, datagrams_[i].at);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return datagrams_[a].at < datagrams_[b].at; });
  std::vector<Datagram> sorted;
  for (size_t k = 0; k < order.size(); ++k) {
    sorted.push_back(datagrams_[order[k]]);
    bytes_ += payloads_[order[k]];
  }
  datagrams_ = std::move(sorted);
  payloads_.clear();
}

UdpRecorder::~UdpRecorder() { Stop(); }

namespace {
std::string ScratchDirPath() {
  const char* tmp = std::getenv("TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/smig-test-", getpid());
}
}  // namespace

std::string ScratchDir() {
  std::string dir = ScratchDirPath();
  std::filesystem::create_directories(dir);
  return dir;
}

void RemoveScratch(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::remove(ScratchDirPath(), ec);  // only if empty
}

}  // namespace smig::testbed
