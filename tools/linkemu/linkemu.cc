// Emulator: the wiring of smig-linkemu's parts (see linkemu.h): packets from PacketIo go
// into the LinkTable, whose verdicts go back to PacketIo; command lines from the
// ControlChannel are executed against the LinkTable; one thread polls them all.
#include "tools/linkemu/linkemu.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "tools/linkemu/control.h"
#include "tools/linkemu/link_model.h"
#include "tools/linkemu/link_table.h"
#include "tools/linkemu/packet_io.h"

namespace smig::linkemu {
namespace {

absl::Status Errno(absl::string_view what) { return absl::ErrnoToStatus(errno, what); }

std::string QuotedList(const std::vector<std::string>& names) {
  return absl::StrJoin(names, ",", [](std::string* out, const std::string& n) {
    absl::StrAppend(out, "\"", n, "\"");
  });
}

}  // namespace

class Emulator::Impl {
 public:
  explicit Impl(const Options& o)
      : opt_(o),
        io_({.steering = {.iptables = o.iptables,
                          .ipv6 = o.ipv6,
                          .bypass = o.bypass,
                          .replace = o.replace,
                          .chain_prefix = o.chain_prefix},
             .queue_maxlen = o.queue_maxlen,
             .rcvbuf_bytes = o.rcvbuf_bytes}),
        links_({.queue_base = o.queue_base, .max_links = o.max_links, .seed = o.seed},
               [this](Link& l) { return AttachLink(l); }) {}
  ~Impl() { Teardown(); }

  absl::Status Init();
  absl::Status Execute(const std::string& line, std::string* answer);
  absl::Status Serve();

 private:
  absl::Status AttachLink(Link& l);
  absl::Status RunCommand(const Command& c, std::string* answer);
  std::string AllStats();
  void Teardown();

  Options opt_;
  PacketIo io_;
  LinkTable links_;
  std::unique_ptr<ControlChannel> control_;
  UniqueFd sig_fd_;
  bool torn_down_ = false;
  bool stop_ = false;
};

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
  sig_fd_ = UniqueFd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sig_fd_.valid()) return Errno("signalfd");
  signal(SIGPIPE, SIG_IGN);

  SMIG_RETURN_IF_ERROR(io_.OpenNetns(""));
  SMIG_ASSIGN_OR_RETURN(
      control_, ControlChannel::Create(
                    {.socket_path = opt_.control_path, .use_stdin = opt_.control_stdin},
                    [this](const std::string& line, std::string* answer) {
                      (void)Execute(line, answer);
                    }));
  return absl::OkStatus();
}

absl::Status Emulator::Impl::AttachLink(Link& l) {
  std::vector<PacketIo::QueueSpec> specs;
  for (Direction* d : {&l.out, &l.in}) {
    specs.push_back({{.netns = d->netns, .ingress = d->ingress, .dev = d->dev, .queue = d->queue},
                     [this, d](uint32_t id, uint32_t size) {
                       links_.Admit(*d, id, size, MonotonicNs());
                     }});
  }
  SMIG_ASSIGN_OR_RETURN(std::vector<PacketIo::Queue*> queues, io_.Attach(std::move(specs)));
  l.out.verdict = [q = queues[0]](uint32_t id, bool accept) { q->Verdict(id, accept); };
  l.in.verdict = [q = queues[1]](uint32_t id, bool accept) { q->Verdict(id, accept); };
  return absl::OkStatus();
}

absl::Status Emulator::Impl::RunCommand(const Command& c, std::string* answer) {
  switch (c.kind) {
    case Command::Kind::kLink:
      return links_.Apply(c.link);
    case Command::Kind::kStats:
      return links_.AppendStats(c.target, io_.KernelDrops(), answer);
    case Command::Kind::kHelp:
      absl::StrAppend(answer, ProtocolHelp());
      break;
    case Command::Kind::kQuit:
      stop_ = true;
      break;
    case Command::Kind::kPing:
      break;
  }
  return absl::OkStatus();
}

absl::Status Emulator::Impl::Execute(const std::string& raw, std::string* answer) {
  absl::string_view line = absl::StripAsciiWhitespace(raw);
  if (line.empty() || line[0] == '#') return absl::OkStatus();
  absl::StatusOr<std::vector<Command>> cmds = ParseCommandLine(line);
  absl::Status status = cmds.status();
  if (status.ok()) {
    for (const Command& c : *cmds) {
      status = RunCommand(c, answer);
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
  std::string s;
  (void)links_.AppendStats("", io_.KernelDrops(), &s);
  return s;
}

absl::Status Emulator::Impl::Serve() {
  ControlChannel::Print(absl::StrFormat(
      "{\"type\":\"ready\",\"pid\":%d,\"queue_base\":%u,\"links\":[%s],\"peer_netns\":[%s],"
      "\"control\":\"%s\",\"iptables\":\"%s\"}\n",
      getpid(), opt_.queue_base, QuotedList(links_.Names()), QuotedList(io_.PeerNetns()),
      opt_.control_path, opt_.iptables));
  const int64_t interval = absl::ToInt64Nanoseconds(opt_.stats_interval);
  int64_t next_stats = interval > 0 ? MonotonicNs() + interval : std::numeric_limits<int64_t>::max();
  absl::Status result;
  std::vector<pollfd> fds;
  while (!stop_) {
    int64_t now = MonotonicNs();
    links_.ReleaseDue(now);
    const int64_t next = std::min(next_stats, links_.NextRelease().value_or(next_stats));
    timespec ts{};
    timespec* tsp = nullptr;
    if (next != std::numeric_limits<int64_t>::max()) {
      const int64_t wait = std::max<int64_t>(0, next - now);
      ts.tv_sec = wait / 1000000000;
      ts.tv_nsec = wait % 1000000000;
      tsp = &ts;
    }
    // [signalfd, one per namespace (their number may grow while serving a command), control]
    fds.clear();
    fds.push_back({sig_fd_.get(), POLLIN, 0});
    const size_t nns = io_.AddPollFds(&fds);
    control_->AddPollFds(&fds);
    if (ppoll(fds.data(), fds.size(), tsp, nullptr) < 0) {
      if (errno == EINTR) continue;
      result = Errno("ppoll");
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(sig_fd_.get(), &si, sizeof si) == sizeof si) {
        LOG(INFO) << "signal " << si.ssi_signo << ", exiting";
      }
      break;
    }
    links_.ReleaseDue(MonotonicNs());
    result = io_.HandlePoll(&fds[1], nns, [this] { links_.ReleaseDue(MonotonicNs()); });
    if (!result.ok()) break;
    control_->HandlePoll(&fds[1 + nns]);
    if (opt_.exit_on_stdin_eof && control_->stdin_closed()) stop_ = true;
    if (MonotonicNs() >= next_stats) {
      ControlChannel::Print(AllStats());
      next_stats += interval;
      if (next_stats < MonotonicNs()) next_stats = MonotonicNs() + interval;
    }
  }
  control_->Flush();  // answer a pending "quit" before going
  ControlChannel::Print(AllStats());
  Teardown();
  ControlChannel::Print(absl::StrFormat(
      "{\"type\":\"exit\",\"netlink_overruns\":%u,\"verdict_errors\":%u,\"ok\":%s}\n",
      io_.netlink_overruns(), io_.verdict_errors(), result.ok() ? "true" : "false"));
  return result;
}

void Emulator::Impl::Teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // Stop steering first, then let the held packets go, then unbind.
  io_.RemoveRules();
  links_.ReleaseAll();
  io_.Close();
  if (control_) control_->Close();
  sig_fd_.reset();
}

Emulator::Emulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Emulator::~Emulator() = default;

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Create(const Options& options) {
  auto impl = std::make_unique<Impl>(options);
  SMIG_RETURN_IF_ERROR(impl->Init());  // ~Impl removes what was installed
  return std::unique_ptr<Emulator>(new Emulator(std::move(impl)));
}

absl::Status Emulator::Execute(const std::string& line, std::string* answer) {
  return impl_->Execute(line, answer);
}

absl::Status Emulator::Run() { return impl_->Serve(); }

}  // namespace smig::linkemu
