// smig-linkemu: link emulation (delay, jitter, loss, rate, up/down) for the interfaces of
// one network namespace, over NFQUEUE; see linkemu.h for the model and the protocol.
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/flags.h"
#include "tools/linkemu/control.h"
#include "tools/linkemu/linkemu.h"

ABSL_FLAG(std::string, links, "",
          "Initial links, ';'-separated, each the arguments of a `link` command, e.g. "
          "\"cell dev c0 peer edge1:c1 delay 20ms; dsrc dev d0 peer edge1:d1 delay 2ms down\"");
ABSL_FLAG(std::string, control, "",
          "Unix stream socket for the control protocol (created; removed on exit)");
ABSL_FLAG(bool, stdin, false, "Also read control commands from stdin (answers on stdout)");
ABSL_FLAG(bool, exit_on_stdin_eof, false, "With --stdin: exit when stdin closes");
ABSL_FLAG(uint32_t, queue_base, 100,
          "NFQUEUE numbers: link i (creation order) uses BASE+2i (out) and BASE+2i+1 (in)");
ABSL_FLAG(uint32_t, max_links, 16, "Most links");
ABSL_FLAG(absl::Duration, stats_interval, absl::ZeroDuration(),
          "Print stats JSON lines this often (0: only on `stats` and at exit)");
ABSL_FLAG(uint32_t, queue_maxlen, 65536,
          "Kernel queue length per queue: the most packets held (in flight) per direction");
ABSL_FLAG(uint32_t, rcvbuf, 32 << 20, "Netlink socket receive buffer, bytes");
ABSL_FLAG(bool, ipv6, true, "Shape IPv6 too (ip6tables)");
ABSL_FLAG(bool, bypass, false,
          "NFQUEUE --queue-bypass: packets pass unshaped when no smig-linkemu listens (e.g. "
          "after SIGKILL). Off: they are dropped");
ABSL_FLAG(bool, replace, false,
          "Remove our chains left in this namespace by an earlier (killed) run first");
ABSL_FLAG(std::string, iptables, "nft", "iptables flavour: nft (iptables-nft) or legacy");
ABSL_FLAG(std::string, chain_prefix, "SMIG_LINKEMU", "Names of our mangle chains: PREFIX_OUT/_IN");
ABSL_FLAG(bool, realtime, false,
          "Run as SCHED_FIFO (priority 20) so that releases stay on time on a busy CPU");
ABSL_FLAG(uint64_t, seed, 0, "Random seed for loss and jitter (0: from the clock)");

int main(int argc, char** argv) {
  // --help lists this file's flags (abseil's default looks for a file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "tools/linkemu/");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  smig::ParseFlags(
      argc, argv,
      absl::StrCat(
          "real link emulation for the interfaces of ONE network namespace (NFQUEUE).\n"
          "  ip netns exec car smig-linkemu --control=/run/car-links.sock \\\n"
          "      --links='cell dev c0 peer edge1:c1 delay 20ms rate 5mbit; dsrc dev d0 peer edge1:d1'\n"
          "  echo 'link dsrc down' | nc -NU /run/car-links.sock   # (netcat-openbsd) -> ok\n"
          "Both directions of every link are shaped by this one process: delay is one-way per\n"
          "direction (RTT = 2*delay). Needs root; iptables-nft rules in chains\n"
          "mangle/SMIG_LINKEMU_OUT and _IN (here and in peer namespaces), removed on exit\n"
          "(SIGTERM/SIGINT/SIGHUP/quit). See tools/linkemu/linkemu.h for the model.\n"
          "Stdout: JSON lines ({\"type\":\"ready\"}, stats, {\"type\":\"exit\"}).\n\n",
          smig::linkemu::ProtocolHelp(), "\nFlag names take dashes or underscores."));
  smig::linkemu::Options o;
  o.queue_base = absl::GetFlag(FLAGS_queue_base);
  o.max_links = absl::GetFlag(FLAGS_max_links);
  o.control_path = absl::GetFlag(FLAGS_control);
  o.control_stdin = absl::GetFlag(FLAGS_stdin);
  o.exit_on_stdin_eof = absl::GetFlag(FLAGS_exit_on_stdin_eof);
  o.stats_interval = absl::GetFlag(FLAGS_stats_interval);
  o.queue_maxlen = absl::GetFlag(FLAGS_queue_maxlen);
  o.rcvbuf_bytes = absl::GetFlag(FLAGS_rcvbuf);
  o.ipv6 = absl::GetFlag(FLAGS_ipv6);
  o.bypass = absl::GetFlag(FLAGS_bypass);
  o.replace = absl::GetFlag(FLAGS_replace);
  o.iptables = absl::GetFlag(FLAGS_iptables);
  o.chain_prefix = absl::GetFlag(FLAGS_chain_prefix);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.realtime = absl::GetFlag(FLAGS_realtime);

  absl::StatusOr<std::unique_ptr<smig::linkemu::Emulator>> emu = smig::linkemu::Emulator::Create(o);
  if (!emu.ok()) {
    std::cerr << "smig-linkemu: " << emu.status() << "\n";
    return 2;
  }
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_links), ';')) {
    if (absl::StripAsciiWhitespace(part).empty()) continue;
    std::string answer;
    if (absl::Status s = (*emu)->Execute(absl::StrCat("link ", part), &answer); !s.ok()) {
      std::cerr << "smig-linkemu: --links: " << part << ": " << s << "\n";
      return 2;  // ~Emulator removes the rules
    }
  }
  absl::Status s = (*emu)->Run();
  if (!s.ok()) {
    std::cerr << "smig-linkemu: " << s << "\n";
    return 1;
  }
  return 0;
}
