#include "tools/linkemu/linkemu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/linkemu/link_model.h"

extern char** environ;

namespace smig::linkemu {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

absl::Status Errno(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

// Runs argv (no shell) with an empty signal mask and default SIGPIPE; returns its output,
// or an error carrying it.
absl::StatusOr<std::string> RunProgram(const std::vector<std::string>& argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Errno("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, def;
  sigemptyset(&empty);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return absl::ErrnoToStatus(rc, absl::StrCat("cannot run ", argv[0]));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), ": ",
                                            absl::StripTrailingAsciiWhitespace(out)));
  }
  return out;
}

// The kernel's own drop counters per queue: /proc/net/netfilter/nfnetlink_queue has
// "queue portid total copy_mode copy_range queue_dropped user_dropped id_seq 1".
// (Read by a thread in the namespace: /proc/thread-self/net is the thread's namespace.)
std::map<uint32_t, uint64_t> KernelDrops() {
  std::map<uint32_t, uint64_t> out;
  std::ifstream f("/proc/thread-self/net/netfilter/nfnetlink_queue");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    uint64_t v[8];
    for (uint64_t& x : v) s >> x;
    if (s) out[static_cast<uint32_t>(v[0])] = v[5] + v[6];
  }
  return out;
}

std::string Ms(absl::Duration d) { return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d)); }

}  // namespace

std::string ProtocolHelp() {
  return
      "Control protocol: one line = commands separated by ';'. Each non-empty line is\n"
      "answered by zero or more JSON lines, then 'ok' or 'error <message>'.\n"
      "  link NAME [dev IFACE] [peer NETNS:IFACE] [dir both|out|in] [delay D] [jitter D]\n"
      "            [loss P%] [rate R] [limit N] [up|down]\n"
      "      create (dev required) or change a link; unspecified options keep their value.\n"
      "      peer: the other end of dev (NETNS: name in /run/netns, or /proc/PID/ns/net);\n"
      "      then 'out' is shaped at the peer's ingress, so local senders (TCP!) are not\n"
      "      throttled by their own held packets. Recommended.\n"
      "      delay is ONE-WAY per direction: 'delay 20ms' (dir both) gives RTT 40 ms.\n"
      "      dir selects the directions delay/jitter/loss/rate/limit apply to (default both).\n"
      "      D: 20ms 1.5s 250us 0   P: percent   R: 5mbit 500kbit 1gbit (bits/s),\n"
      "      100kbps (BYTES/s, as tc), 0 = unlimited   N: serializer buffer, packets (1000)\n"
      "      down drops everything on the link, both directions, held packets too.\n"
      "  stats [NAME]  one JSON line per link: config and counters per direction\n"
      "  ping          'ok'\n"
      "  quit          exit, removing the rules\n"
      "  help          this text\n"
      "Example: link cell dev c0 peer edge1:c1 delay 20ms rate 5mbit; link dsrc dev d0 down\n";
}

// Runs `fn` on a thread that has joined network namespace `ns` ("" = ours): sockets it
// opens stay in that namespace whichever thread uses them later.
absl::Status InNetns(const std::string& ns, const std::function<absl::Status()>& fn) {
  if (ns.empty()) return fn();
  absl::Status status;
  std::thread t([&] {
    const std::string path = ns[0] == '/' ? ns : "/run/netns/" + ns;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      status = Errno(absl::StrCat("open ", path));
      return;
    }
    if (setns(fd, CLONE_NEWNET) != 0) {
      status = Errno(absl::StrCat("setns ", path));
    } else {
      status = fn();
    }
    close(fd);
  });
  t.join();
  return status;
}

class Emulator::Impl {
 public:
  struct Link;
  // A network namespace we steer packets in: our own ("") or a link's peer.
  struct Netns {
    std::string name;
    nfq_handle* h = nullptr;
    int fd = -1;
    bool chains = false;                       // our chains exist there (remove them at exit)
    std::vector<std::string> created_tables;  // ip/ip6 mangle tables we created there
  };
  struct Direction {
    Impl* impl = nullptr;
    Link* link = nullptr;
    bool out = true;
    uint32_t queue = 0;
    nfq_q_handle* qh = nullptr;
    Pipe pipe;
    // Where: the iptables rule `-A chain {-i|-o} dev -j NFQUEUE` in namespace ns.
    Netns* ns = nullptr;
    bool ingress = true;
    std::string dev;
  };
  struct Link {
    std::string name, dev, peer_ns, peer_dev;
    bool up = true;
    Direction out, in;
  };
  struct Client {
    int fd = -1;
    std::string in, out;
  };

  explicit Impl(const Options& o) : opt_(o), rng_(o.seed ? o.seed : static_cast<uint64_t>(NowNs())) {}
  ~Impl();

  absl::Status Init();
  absl::Status Execute(const std::string& line, std::string* answer);
  absl::Status Serve();

 private:
  std::vector<std::string> Binaries() const;
  static std::vector<std::string> InNs(const Netns& ns, std::vector<std::string> argv);
  std::vector<std::string> Ipt(const Netns& ns, const std::string& bin,
                               std::vector<std::string> args) const;
  std::string Chain(bool ingress) const {
    return absl::StrCat(opt_.chain_prefix, ingress ? "_IN" : "_OUT");
  }
  std::vector<std::string> RuleArgs(const Direction& d, const char* op) const;
  void RemoveChains(const Netns& ns, const std::string& bin);
  absl::StatusOr<Netns*> EnsureNetns(const std::string& name);
  absl::Status SetUpNetns(Netns* ns);
  absl::Status AddLink(const LinkCommand& c, Link** out);
  absl::Status BindQueue(Direction* d);
  absl::Status ApplyLink(const LinkCommand& c);
  std::map<std::pair<Netns*, uint32_t>, uint64_t> KernelDropsAll();
  std::string StatsJson(const Link& l, const std::map<std::pair<Netns*, uint32_t>, uint64_t>& k) const;
  std::string DirJson(const Direction& d,
                      const std::map<std::pair<Netns*, uint32_t>, uint64_t>& k) const;
  static int OnPacket(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* data);
  void HandlePacket(Direction* d, nfq_data* nfa);
  void Verdict(Direction* d, uint32_t id, uint32_t verdict);
  void ReleaseDue(int64_t now);
  absl::Status ReadPackets(Netns* ns);
  void ServeClient(Client* c, bool* close_it);
  void Print(const std::string& s);
  std::string AllStats();
  void Teardown();

  Options opt_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::vector<std::unique_ptr<Netns>> netns_;  // [0]: our own
  int sig_fd_ = -1;
  int listen_fd_ = -1;
  bool stdin_open_ = false;
  std::string stdin_buf_;
  std::vector<std::unique_ptr<Link>> links_;
  std::vector<Client> clients_;
  bool torn_down_ = false;
  bool stop_ = false;
  uint64_t netlink_overruns_ = 0;
  uint64_t verdict_errors_ = 0;
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
};

std::vector<std::string> Emulator::Impl::Binaries() const {
  const std::string suffix = opt_.iptables == "legacy" ? "-legacy" : "-nft";
  std::vector<std::string> b = {"iptables" + suffix};
  if (opt_.ipv6) b.push_back("ip6tables" + suffix);
  return b;
}

std::vector<std::string> Emulator::Impl::InNs(const Netns& ns, std::vector<std::string> argv) {
  if (ns.name.empty()) return argv;
  std::vector<std::string> v = {
      "nsenter", absl::StrCat("--net=", ns.name[0] == '/' ? "" : "/run/netns/", ns.name)};
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

std::vector<std::string> Emulator::Impl::Ipt(const Netns& ns, const std::string& bin,
                                             std::vector<std::string> args) const {
  std::vector<std::string> v = {bin, "-w", "-t", "mangle"};
  v.insert(v.end(), args.begin(), args.end());
  return InNs(ns, v);
}

std::vector<std::string> Emulator::Impl::RuleArgs(const Direction& d, const char* op) const {
  std::vector<std::string> a = {op,    Chain(d.ingress), d.ingress ? "-i" : "-o",      d.dev,
                                "-j", "NFQUEUE",        "--queue-num", absl::StrCat(d.queue)};
  if (opt_.bypass) a.push_back("--queue-bypass");
  return a;
}

void Emulator::Impl::RemoveChains(const Netns& ns, const std::string& bin) {
  for (bool ingress : {false, true}) {
    const std::string chain = Chain(ingress);
    const std::string hook = ingress ? "PREROUTING" : "POSTROUTING";
    for (int i = 0; i < 16 && RunProgram(Ipt(ns, bin, {"-D", hook, "-j", chain})).ok(); ++i) {
    }
    (void)RunProgram(Ipt(ns, bin, {"-F", chain}));
    (void)RunProgram(Ipt(ns, bin, {"-X", chain}));
  }
}

absl::StatusOr<Emulator::Impl::Netns*> Emulator::Impl::EnsureNetns(const std::string& name) {
  for (const auto& n : netns_) {
    if (n->name == name) return n.get();
  }
  auto ns = std::make_unique<Netns>();
  ns->name = name;
  absl::Status s = SetUpNetns(ns.get());
  if (!s.ok()) {
    // Take back whatever was installed there.
    if (ns->chains) {
      for (const std::string& bin : Binaries()) RemoveChains(*ns, bin);
    }
    if (ns->h) nfq_close(ns->h);
    return s;
  }
  netns_.push_back(std::move(ns));
  return netns_.back().get();
}

absl::Status Emulator::Impl::SetUpNetns(Netns* n) {
  const std::string& name = n->name;
  absl::Status s = InNetns(name, [&]() -> absl::Status {
    n->h = nfq_open();
    if (n->h == nullptr) return Errno("nfq_open (root? CONFIG_NETFILTER_NETLINK_QUEUE?)");
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  n->fd = nfq_fd(n->h);
  fcntl(n->fd, F_SETFD, FD_CLOEXEC);
  if (nfnl_rcvbufsiz(nfq_nfnlh(n->h), opt_.rcvbuf_bytes) <= 0) return Errno("nfnl_rcvbufsiz");

  // Our chains. With iptables-nft, remember whether the mangle tables existed, so that we
  // can remove them again if we created them and they are empty at exit.
  const std::string where = name.empty() ? "this namespace" : "namespace " + name;
  for (const std::string& bin : Binaries()) {
    if (opt_.iptables == "nft") {
      const std::string family = bin.rfind("ip6", 0) == 0 ? "ip6" : "ip";
      if (!RunProgram(InNs(*n, {"nft", "list", "table", family, "mangle"})).ok()) {
        n->created_tables.push_back(family);
      }
    }
    if (opt_.replace) RemoveChains(*n, bin);
    for (bool ingress : {false, true}) {
      absl::StatusOr<std::string> r = RunProgram(Ipt(*n, bin, {"-N", Chain(ingress)}));
      if (!r.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            r.status().message(), " (another smig-linkemu uses ", where,
            " (give it another --chain-prefix and --queue-base), or one was killed: use --replace)"));
      }
      n->chains = true;
    }
    for (bool ingress : {false, true}) {
      const std::string hook = ingress ? "PREROUTING" : "POSTROUTING";
      absl::StatusOr<std::string> r = RunProgram(Ipt(*n, bin, {"-A", hook, "-j", Chain(ingress)}));
      if (!r.ok()) return r.status();
    }
  }
  return absl::OkStatus();
}

absl::Status Emulator::Impl::Init() {
  if (opt_.iptables != "nft" && opt_.iptables != "legacy") {
    return absl::InvalidArgumentError("--iptables: nft or legacy");
  }
  if (opt_.max_links == 0 || opt_.queue_base + 2ull * opt_.max_links > 65536) {
    return absl::InvalidArgumentError("--queue-base + 2*--max-links must fit in 16 bits");
  }
  prctl(PR_SET_TIMERSLACK, 1UL);
  if (opt_.realtime) {
    sched_param sp{};
    sp.sched_priority = 20;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) return Errno("sched_setscheduler(SCHED_FIFO)");
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return Errno("sigprocmask");
  sig_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd_ < 0) return Errno("signalfd");
  signal(SIGPIPE, SIG_IGN);

  if (absl::StatusOr<Netns*> own = EnsureNetns(""); !own.ok()) return own.status();

  if (!opt_.control_path.empty()) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return Errno("socket(AF_UNIX)");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (opt_.control_path.size() >= sizeof a.sun_path) {
      return absl::InvalidArgumentError("--control path too long");
    }
    std::memcpy(a.sun_path, opt_.control_path.c_str(), opt_.control_path.size() + 1);
    struct stat st;
    if (lstat(opt_.control_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      unlink(opt_.control_path.c_str());
    }
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      return Errno(absl::StrCat("bind ", opt_.control_path));
    }
    if (listen(listen_fd_, 16) != 0) return Errno("listen");
  }
  stdin_open_ = opt_.control_stdin;
  return absl::OkStatus();
}

absl::Status Emulator::Impl::BindQueue(Direction* d) {
  d->qh = nfq_create_queue(d->ns->h, static_cast<uint16_t>(d->queue), &Impl::OnPacket, d);
  if (d->qh == nullptr) {
    return Errno(absl::StrCat("nfq_create_queue ", d->queue, " (taken by another process?)"));
  }
  if (nfq_set_mode(d->qh, NFQNL_COPY_PACKET, 64) < 0) return Errno("nfq_set_mode");
  if (nfq_set_queue_maxlen(d->qh, opt_.queue_maxlen) < 0) return Errno("nfq_set_queue_maxlen");
  // fail-open stays off: a full queue drops (and shows in dropped_kernel).
  return absl::OkStatus();
}

absl::Status Emulator::Impl::AddLink(const LinkCommand& c, Link** out) {
  if (!c.dev) {
    return absl::NotFoundError(absl::StrCat("no link '", c.name, "': create it with dev IFACE"));
  }
  const std::string peer_ns = c.peer_ns.value_or(""), peer_dev = c.peer_dev.value_or("");
  for (const auto& l : links_) {
    if (l->dev == *c.dev) {
      return absl::AlreadyExistsError(absl::StrCat("dev ", *c.dev, " belongs to link ", l->name));
    }
    if (!peer_ns.empty() && l->peer_ns == peer_ns && l->peer_dev == peer_dev) {
      return absl::AlreadyExistsError(
          absl::StrCat("peer ", peer_ns, ":", peer_dev, " belongs to link ", l->name));
    }
  }
  if (links_.size() >= opt_.max_links) {
    return absl::ResourceExhaustedError(absl::StrCat("at most ", opt_.max_links, " links (--max-links)"));
  }
  Netns* own = netns_[0].get();
  Netns* out_ns = own;
  if (!peer_ns.empty()) {
    absl::StatusOr<Netns*> n = EnsureNetns(peer_ns);
    if (!n.ok()) return n.status();
    out_ns = *n;
  }
  auto l = std::make_unique<Link>();
  l->name = c.name;
  l->dev = *c.dev;
  l->peer_ns = peer_ns;
  l->peer_dev = peer_dev;
  const uint32_t q = opt_.queue_base + 2 * static_cast<uint32_t>(links_.size());
  for (Direction* d : {&l->out, &l->in}) {
    d->impl = this;
    d->link = l.get();
    d->out = d == &l->out;
    d->queue = d->out ? q : q + 1;
  }
  // out: our egress, or the peer's ingress; in: our ingress.
  l->out.ns = out_ns;
  l->out.ingress = !peer_ns.empty();
  l->out.dev = peer_ns.empty() ? l->dev : peer_dev;
  l->in.ns = own;
  l->in.ingress = true;
  l->in.dev = l->dev;

  std::vector<std::vector<std::string>> undo_rules;
  auto undo = [&] {
    for (const auto& r : undo_rules) (void)RunProgram(r);
    for (Direction* d : {&l->out, &l->in}) {
      if (d->qh) nfq_destroy_queue(d->qh);
      d->qh = nullptr;
    }
  };
  // Listen first, then steer: no packet meets a queue nobody reads.
  for (Direction* d : {&l->out, &l->in}) {
    if (absl::Status s = BindQueue(d); !s.ok()) {
      undo();
      return s;
    }
  }
  for (const std::string& bin : Binaries()) {
    for (Direction* d : {&l->out, &l->in}) {
      if (absl::StatusOr<std::string> r = RunProgram(Ipt(*d->ns, bin, RuleArgs(*d, "-A")));
          !r.ok()) {
        undo();
        return r.status();
      }
      undo_rules.push_back(Ipt(*d->ns, bin, RuleArgs(*d, "-D")));
    }
  }
  *out = l.get();
  links_.push_back(std::move(l));
  return absl::OkStatus();
}

absl::Status Emulator::Impl::ApplyLink(const LinkCommand& c) {
  Link* link = nullptr;
  for (const auto& l : links_) {
    if (l->name == c.name) link = l.get();
  }
  if (link != nullptr && ((c.dev && *c.dev != link->dev) ||
                          (c.peer_ns && (*c.peer_ns != link->peer_ns || *c.peer_dev != link->peer_dev)))) {
    return absl::InvalidArgumentError(
        absl::StrCat("link ", c.name, " is on dev ", link->dev,
                     link->peer_ns.empty() ? "" : absl::StrCat(" peer ", link->peer_ns, ":", link->peer_dev),
                     "; dev and peer cannot change"));
  }
  if (link == nullptr) {
    if (absl::Status s = AddLink(c, &link); !s.ok()) return s;
  }
  for (Direction* d : {&link->out, &link->in}) {
    if (!(d->out ? c.apply_out : c.apply_in)) continue;
    DirectionParams& p = d->pipe.params;
    if (c.delay) p.delay = *c.delay;
    if (c.jitter) p.jitter = *c.jitter;
    if (c.loss) p.loss = *c.loss;
    if (c.rate_bps) p.rate_bps = *c.rate_bps;
    if (c.limit) p.limit = *c.limit;
  }
  if (c.up) {
    link->up = *c.up;
    if (!link->up) {
      for (Direction* d : {&link->out, &link->in}) {
        for (const Pipe::Held& h : d->pipe.DropAll()) Verdict(d, h.id, NF_DROP);
      }
    }
  }
  return absl::OkStatus();
}

void Emulator::Impl::Verdict(Direction* d, uint32_t id, uint32_t verdict) {
  if (nfq_set_verdict(d->qh, id, verdict, 0, nullptr) < 0) {
    if (verdict_errors_++ == 0) {
      std::fprintf(stderr, "smig-linkemu: nfq_set_verdict: %s\n", std::strerror(errno));
    }
  }
}

int Emulator::Impl::OnPacket(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  auto* d = static_cast<Direction*>(data);
  d->impl->HandlePacket(d, nfa);
  return 0;
}

void Emulator::Impl::HandlePacket(Direction* d, nfq_data* nfa) {
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == nullptr) return;
  const uint32_t id = ntohl(ph->packet_id);
  unsigned char* p = nullptr;
  int len = nfq_get_payload(nfa, &p);
  // The IP length, as only the first 64 bytes are copied to us.
  uint32_t size = len > 0 ? static_cast<uint32_t>(len) : 0;
  if (len >= 20 && (p[0] >> 4) == 4) {
    size = (static_cast<uint32_t>(p[2]) << 8) | p[3];
  } else if (len >= 40 && (p[0] >> 4) == 6) {
    size = ((static_cast<uint32_t>(p[4]) << 8) | p[5]) + 40;
  }
  const int64_t now = NowNs();
  const double u_loss = unit_(rng_);
  const double u_jitter = d->pipe.params.jitter > absl::ZeroDuration() ? unit_(rng_) * 2 - 1 : 0;
  Pipe::Outcome o = d->pipe.Admit(now, id, size, d->link->up, u_loss, u_jitter);
  if (o != Pipe::Outcome::kQueued) {
    Verdict(d, id, NF_DROP);
    return;
  }
  while (std::optional<Pipe::Held> h = d->pipe.PopDue(now)) Verdict(d, h->id, NF_ACCEPT);
}

void Emulator::Impl::ReleaseDue(int64_t now) {
  for (auto& l : links_) {
    for (Direction* d : {&l->out, &l->in}) {
      while (std::optional<Pipe::Held> h = d->pipe.PopDue(now)) Verdict(d, h->id, NF_ACCEPT);
    }
  }
}

std::map<std::pair<Emulator::Impl::Netns*, uint32_t>, uint64_t> Emulator::Impl::KernelDropsAll() {
  std::map<std::pair<Netns*, uint32_t>, uint64_t> out;
  for (const auto& n : netns_) {
    std::map<uint32_t, uint64_t> k;
    (void)InNetns(n->name, [&] {
      k = KernelDrops();
      return absl::OkStatus();
    });
    for (const auto& [q, v] : k) out[{n.get(), q}] = v;
  }
  return out;
}

absl::Status Emulator::Impl::ReadPackets(Netns* ns) {
  // Bounded, so that releases stay on time under a flood.
  for (int i = 0; i < 512; ++i) {
    ssize_t n = recv(ns->fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // the kernel dropped packets it could not hand us
        if (netlink_overruns_++ == 0) {
          std::fprintf(stderr, "smig-linkemu: netlink receive buffer overrun (packets lost)\n");
        }
        continue;
      }
      return Errno("recv(nfqueue)");
    }
    nfq_handle_packet(ns->h, buf_.data(), static_cast<int>(n));
    ReleaseDue(NowNs());
  }
  return absl::OkStatus();
}

std::string Emulator::Impl::DirJson(
    const Direction& d, const std::map<std::pair<Netns*, uint32_t>, uint64_t>& kdrops) const {
  const PipeStats& s = d.pipe.stats;
  const DirectionParams& p = d.pipe.params;
  auto it = kdrops.find({d.ns, d.queue});
  const uint64_t k = it == kdrops.end() ? 0 : it->second;
  return absl::StrFormat(
      "{\"hook\":\"%s %s%s\",\"queue\":%u,\"delay_ms\":%s,\"jitter_ms\":%s,\"loss_pct\":%.4g,\"rate_bps\":%u,"
      "\"limit\":%u,\"packets\":%u,\"bytes\":%u,\"passed\":%u,\"passed_bytes\":%u,"
      "\"dropped\":%u,\"dropped_loss\":%u,\"dropped_down\":%u,\"dropped_overflow\":%u,"
      "\"dropped_kernel\":%u,\"queue_depth\":%u,\"max_queue_depth\":%u,\"max_late_ms\":%.3f}",
      d.ingress ? "ingress" : "egress", d.ns->name.empty() ? "" : d.ns->name + ":", d.dev,
      d.queue, Ms(p.delay), Ms(p.jitter), p.loss * 100, p.rate_bps, p.limit, s.packets, s.bytes,
      s.passed, s.passed_bytes, s.dropped_loss + s.dropped_down + s.dropped_overflow + k,
      s.dropped_loss, s.dropped_down, s.dropped_overflow, k, d.pipe.depth(), s.max_queue_depth,
      static_cast<double>(s.max_late_ns) / 1e6);
}

std::string Emulator::Impl::StatsJson(
    const Link& l, const std::map<std::pair<Netns*, uint32_t>, uint64_t>& kdrops) const {
  return absl::StrFormat(
      "{\"type\":\"stats\",\"t\":%.3f,\"link\":\"%s\",\"dev\":\"%s\",\"peer\":\"%s\",\"up\":%s,\"out\":%s,"
      "\"in\":%s}\n",
      absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), l.name, l.dev,
      l.peer_ns.empty() ? "" : absl::StrCat(l.peer_ns, ":", l.peer_dev),
      l.up ? "true" : "false", DirJson(l.out, kdrops), DirJson(l.in, kdrops));
}

absl::Status Emulator::Impl::Execute(const std::string& raw, std::string* answer) {
  absl::string_view line = absl::StripAsciiWhitespace(raw);
  if (line.empty() || line[0] == '#') return absl::OkStatus();
  absl::StatusOr<std::vector<Command>> cmds = ParseCommandLine(line);
  absl::Status status = cmds.status();
  if (status.ok()) {
    for (const Command& c : *cmds) {
      switch (c.kind) {
        case Command::Kind::kLink:
          status = ApplyLink(c.link);
          break;
        case Command::Kind::kStats: {
          auto k = KernelDropsAll();
          bool found = c.target.empty();
          for (const auto& l : links_) {
            if (c.target.empty() || l->name == c.target) {
              absl::StrAppend(answer, StatsJson(*l, k));
              found = true;
            }
          }
          if (!found) status = absl::NotFoundError(absl::StrCat("no link '", c.target, "'"));
          break;
        }
        case Command::Kind::kHelp:
          absl::StrAppend(answer, ProtocolHelp());
          break;
        case Command::Kind::kQuit:
          stop_ = true;
          break;
        case Command::Kind::kPing:
          break;
      }
      if (!status.ok()) break;
    }
  }
  if (status.ok()) {
    absl::StrAppend(answer, "ok\n");
  } else {
    std::string msg(status.message());
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    absl::StrAppend(answer, "error ", msg, "\n");
  }
  return status;
}

std::string Emulator::Impl::AllStats() {
  auto k = KernelDropsAll();
  std::string s;
  for (const auto& l : links_) s += StatsJson(*l, k);
  return s;
}

void Emulator::Impl::Print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

void Emulator::Impl::ServeClient(Client* c, bool* close_it) {
  char b[4096];
  ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    *close_it = true;
    return;
  }
  if (n > 0) c->in.append(b, n);
  size_t nl;
  while ((nl = c->in.find('\n')) != std::string::npos) {
    std::string line = c->in.substr(0, nl);
    c->in.erase(0, nl + 1);
    (void)Execute(line, &c->out);
  }
  if (c->in.size() > 65536) *close_it = true;
}

absl::Status Emulator::Impl::Serve() {
  {
    std::vector<std::string> names, peers;
    for (const auto& l : links_) names.push_back(absl::StrCat("\"", l->name, "\""));
    for (size_t i = 1; i < netns_.size(); ++i) peers.push_back(absl::StrCat("\"", netns_[i]->name, "\""));
    Print(absl::StrFormat(
        "{\"type\":\"ready\",\"pid\":%d,\"queue_base\":%u,\"links\":[%s],\"peer_netns\":[%s],"
        "\"control\":\"%s\",\"iptables\":\"%s\"}\n",
        getpid(), opt_.queue_base, absl::StrJoin(names, ","), absl::StrJoin(peers, ","),
        opt_.control_path, opt_.iptables));
  }
  const int64_t interval = absl::ToInt64Nanoseconds(opt_.stats_interval);
  int64_t next_stats = interval > 0 ? NowNs() + interval : std::numeric_limits<int64_t>::max();
  absl::Status result;
  std::vector<pollfd> fds;
  while (!stop_) {
    int64_t now = NowNs();
    ReleaseDue(now);
    int64_t next = next_stats;
    for (const auto& l : links_) {
      for (const Direction* d : {&l->out, &l->in}) {
        if (std::optional<int64_t> r = d->pipe.NextRelease()) next = std::min(next, *r);
      }
    }
    timespec ts{};
    timespec* tsp = nullptr;
    if (next != std::numeric_limits<int64_t>::max()) {
      const int64_t wait = std::max<int64_t>(0, next - now);
      ts.tv_sec = wait / 1000000000;
      ts.tv_nsec = wait % 1000000000;
      tsp = &ts;
    }
    fds.clear();
    fds.push_back({sig_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({stdin_open_ ? 0 : -1, POLLIN, 0});
    const size_t nns = netns_.size();  // may grow while serving a command below
    for (const auto& n : netns_) fds.push_back({n->fd, POLLIN, 0});
    const size_t first_client = fds.size();
    for (const Client& c : clients_) {
      fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    int rc = ppoll(fds.data(), fds.size(), tsp, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      result = Errno("ppoll");
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(sig_fd_, &si, sizeof si) == sizeof si) {
        std::fprintf(stderr, "smig-linkemu: signal %u, exiting\n", si.ssi_signo);
      }
      break;
    }
    ReleaseDue(NowNs());
    bool failed = false;
    for (size_t i = 0; i < nns && !failed; ++i) {
      if (fds[3 + i].revents & (POLLIN | POLLERR)) {
        if (absl::Status s = ReadPackets(netns_[i].get()); !s.ok()) {
          result = s;
          failed = true;
        }
      }
    }
    if (failed) break;
    if (fds[1].revents & POLLIN) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) clients_.push_back({fd, "", ""});
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      char b[4096];
      ssize_t n = read(0, b, sizeof b);
      if (n <= 0) {
        stdin_open_ = false;
        if (opt_.exit_on_stdin_eof) stop_ = true;
      } else {
        stdin_buf_.append(b, n);
        size_t nl;
        while ((nl = stdin_buf_.find('\n')) != std::string::npos) {
          std::string answer;
          (void)Execute(stdin_buf_.substr(0, nl), &answer);
          stdin_buf_.erase(0, nl + 1);
          Print(answer);
        }
      }
    }
    // Clients (fds from first_client match clients_ as they were when polled).
    const size_t polled = fds.size() - first_client;
    std::vector<bool> close_it(clients_.size(), false);
    for (size_t i = 0; i < polled; ++i) {
      Client& c = clients_[i];
      bool cl = false;
      if (fds[first_client + i].revents & (POLLIN | POLLHUP | POLLERR)) {
        bool dummy = false;
        ServeClient(&c, &dummy);
        cl = dummy;
      }
      if (!c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
          c.out.erase(0, n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          cl = true;
        }
        if (c.out.size() > (4u << 20)) cl = true;  // not reading its answers
      }
      close_it[i] = cl;
    }
    for (size_t i = close_it.size(); i-- > 0;) {
      if (close_it[i]) {
        close(clients_[i].fd);
        clients_.erase(clients_.begin() + static_cast<long>(i));
      }
    }
    if (NowNs() >= next_stats) {
      Print(AllStats());
      next_stats += interval;
      if (next_stats < NowNs()) next_stats = NowNs() + interval;
    }
  }
  // Answer a pending "quit" before going.
  for (Client& c : clients_) {
    if (!c.out.empty()) (void)send(c.fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  Print(AllStats());
  Teardown();
  Print(absl::StrFormat("{\"type\":\"exit\",\"netlink_overruns\":%u,\"verdict_errors\":%u,"
                        "\"ok\":%s}\n",
                        netlink_overruns_, verdict_errors_, result.ok() ? "true" : "false"));
  return result;
}

void Emulator::Impl::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // Stop steering first, then let the held packets go, then unbind.
  for (const auto& n : netns_) {
    if (!n->chains) continue;
    for (const std::string& bin : Binaries()) RemoveChains(*n, bin);
    for (const std::string& family : n->created_tables) {
      // Ours, if nothing else has rules in it now: only base-chain declarations
      // ("type filter hook ...; policy accept;") may remain.
      absl::StatusOr<std::string> t = RunProgram(InNs(*n, {"nft", "list", "table", family, "mangle"}));
      if (!t.ok()) continue;
      bool has_rules = false;
      for (absl::string_view ln : absl::StrSplit(*t, '\n')) {
        absl::string_view x = absl::StripAsciiWhitespace(ln);
        if (x.empty() || absl::StartsWith(x, "table") || absl::StartsWith(x, "chain") ||
            absl::StartsWith(x, "type ") || x == "}" || absl::StartsWith(x, "#")) {
          continue;
        }
        has_rules = true;
      }
      if (!has_rules) (void)RunProgram(InNs(*n, {"nft", "delete", "table", family, "mangle"}));
    }
  }
  for (auto& l : links_) {
    for (Direction* d : {&l->out, &l->in}) {
      while (std::optional<Pipe::Held> h = d->pipe.PopDue(NowNs() + (int64_t{1} << 50))) {
        Verdict(d, h->id, NF_ACCEPT);
      }
      if (d->qh) nfq_destroy_queue(d->qh);
      d->qh = nullptr;
    }
  }
  for (const auto& n : netns_) {
    if (n->h) nfq_close(n->h);
    n->h = nullptr;
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(opt_.control_path.c_str());
    listen_fd_ = -1;
  }
  for (Client& c : clients_) close(c.fd);
  clients_.clear();
  if (sig_fd_ >= 0) close(sig_fd_);
  sig_fd_ = -1;
}

Emulator::Impl::~Impl() { Teardown(); }

Emulator::Emulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Emulator::~Emulator() = default;

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Create(const Options& options) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Init(); !s.ok()) return s;  // ~Impl removes what was installed
  return std::unique_ptr<Emulator>(new Emulator(std::move(impl)));
}

absl::Status Emulator::Execute(const std::string& line, std::string* answer) {
  return impl_->Execute(line, answer);
}

absl::Status Emulator::Run() { return impl_->Serve(); }

}  // namespace smig::linkemu
