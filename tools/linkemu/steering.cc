#include "tools/linkemu/steering.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

extern char** environ;

namespace smig::linkemu {
namespace {

// Runs argv (no shell) with an empty signal mask and default SIGPIPE; returns its output,
// or an error carrying it.
absl::StatusOr<std::string> RunProgram(const std::vector<std::string>& argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  UniqueFd read_end(p[0]), write_end(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, write_end.get(), 2);
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
  write_end.reset();  // so that reading ends when the child exits
  if (rc != 0) return absl::ErrnoToStatus(rc, absl::StrCat("cannot run ", argv[0]));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(read_end.get(), buf, sizeof buf);
    if (n > 0) {
      out.append(buf, n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), ": ",
                                            absl::StripTrailingAsciiWhitespace(out)));
  }
  return out;
}

// argv run in network namespace `netns` ("" = ours, or a name in /run/netns, or a path).
std::vector<std::string> InNs(const std::string& netns, std::vector<std::string> argv) {
  if (netns.empty()) return argv;
  std::vector<std::string> v = {
      "nsenter", absl::StrCat("--net=", netns[0] == '/' ? "" : "/run/netns/", netns)};
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

}  // namespace

std::vector<std::string> Steering::Binaries() const {
  const std::string suffix = opt_.iptables == "legacy" ? "-legacy" : "-nft";
  std::vector<std::string> b = {"iptables" + suffix};
  if (opt_.ipv6) b.push_back("ip6tables" + suffix);
  return b;
}

std::string Steering::Chain(bool ingress) const {
  return absl::StrCat(opt_.chain_prefix, ingress ? "_IN" : "_OUT");
}

std::vector<std::string> Steering::Ipt(const std::string& netns, const std::string& bin,
                                       std::vector<std::string> args) const {
  std::vector<std::string> v = {bin, "-w", "-t", "mangle"};
  v.insert(v.end(), args.begin(), args.end());
  return InNs(netns, v);
}

std::vector<std::string> Steering::RuleArgs(const QueueRule& r, const char* op) const {
  std::vector<std::string> a = {op,   Chain(r.ingress), r.ingress ? "-i" : "-o",  r.dev,
                                "-j", "NFQUEUE",        "--queue-num", absl::StrCat(r.queue)};
  if (opt_.bypass) a.push_back("--queue-bypass");
  return a;
}

void Steering::RemoveChains(const std::string& netns, const std::string& bin) const {
  for (bool ingress : {false, true}) {
    const std::string chain = Chain(ingress);
    const std::string hook = ingress ? "PREROUTING" : "POSTROUTING";
    for (int i = 0; i < 16 && RunProgram(Ipt(netns, bin, {"-D", hook, "-j", chain})).ok(); ++i) {
    }
    (void)RunProgram(Ipt(netns, bin, {"-F", chain}));
    (void)RunProgram(Ipt(netns, bin, {"-X", chain}));
  }
}

absl::Status Steering::AddNetns(const std::string& netns) {
  Netns n{netns, {}};
  bool created = false;
  if (absl::Status s = CreateChains(n, &created); !s.ok()) {
    if (created) {  // take back whatever was installed there
      for (const std::string& bin : Binaries()) RemoveChains(netns, bin);
    }
    return s;
  }
  netns_.push_back(std::move(n));
  return absl::OkStatus();
}

absl::Status Steering::CreateChains(Netns& n, bool* created) {
  // With iptables-nft, remember whether the mangle tables existed, so that we can remove
  // them again if we created them and they are empty at exit.
  const std::string where = n.name.empty() ? "this namespace" : "namespace " + n.name;
  for (const std::string& bin : Binaries()) {
    if (opt_.iptables == "nft") {
      const std::string family = bin.rfind("ip6", 0) == 0 ? "ip6" : "ip";
      if (!RunProgram(InNs(n.name, {"nft", "list", "table", family, "mangle"})).ok()) {
        n.created_tables.push_back(family);
      }
    }
    if (opt_.replace) RemoveChains(n.name, bin);
    for (bool ingress : {false, true}) {
      absl::StatusOr<std::string> r = RunProgram(Ipt(n.name, bin, {"-N", Chain(ingress)}));
      if (!r.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            r.status().message(), " (another smig-linkemu uses ", where,
            " (give it another --chain-prefix and --queue-base), or one was killed: use --replace)"));
      }
      *created = true;
    }
    for (bool ingress : {false, true}) {
      const std::string hook = ingress ? "PREROUTING" : "POSTROUTING";
      SMIG_RETURN_IF_ERROR(RunProgram(Ipt(n.name, bin, {"-A", hook, "-j", Chain(ingress)})).status());
    }
  }
  return absl::OkStatus();
}

absl::Status Steering::AddRules(const std::vector<QueueRule>& rules) {
  std::vector<std::vector<std::string>> undo;
  for (const std::string& bin : Binaries()) {
    for (const QueueRule& r : rules) {
      if (absl::StatusOr<std::string> out = RunProgram(Ipt(r.netns, bin, RuleArgs(r, "-A")));
          !out.ok()) {
        for (const std::vector<std::string>& u : undo) (void)RunProgram(u);
        return out.status();
      }
      undo.push_back(Ipt(r.netns, bin, RuleArgs(r, "-D")));
    }
  }
  return absl::OkStatus();
}

void Steering::RemoveTableIfEmpty(const std::string& netns, const std::string& family) const {
  // Ours, if nothing else has rules in it now: only base-chain declarations
  // ("type filter hook ...; policy accept;") may remain.
  absl::StatusOr<std::string> t = RunProgram(InNs(netns, {"nft", "list", "table", family, "mangle"}));
  if (!t.ok()) return;
  for (absl::string_view ln : absl::StrSplit(*t, '\n')) {
    absl::string_view x = absl::StripAsciiWhitespace(ln);
    if (x.empty() || absl::StartsWith(x, "table") || absl::StartsWith(x, "chain") ||
        absl::StartsWith(x, "type ") || x == "}" || absl::StartsWith(x, "#")) {
      continue;
    }
    return;  // a rule of someone else's
  }
  (void)RunProgram(InNs(netns, {"nft", "delete", "table", family, "mangle"}));
}

void Steering::RemoveAll() {
  for (const Netns& n : netns_) {
    for (const std::string& bin : Binaries()) RemoveChains(n.name, bin);
    for (const std::string& family : n.created_tables) RemoveTableIfEmpty(n.name, family);
  }
  netns_.clear();
}

}  // namespace smig::linkemu
