// smig-linkemu: real link emulation (delay, jitter, loss, rate, up/down) for the network
// interfaces of ONE network namespace, changeable at run time, on kernels without netem.
//
//   smig::linkemu::Options options;
//   options.control_path = "/run/car-links.sock";
//   SMIG_ASSIGN_OR_RETURN(std::unique_ptr<smig::linkemu::Emulator> emu,
//                         smig::linkemu::Emulator::Create(options));
//   std::string answer;
//   SMIG_RETURN_IF_ERROR(emu->Execute("link cell dev c0 peer edge1:c1 delay 20ms", &answer));
//   return emu->Run();   // until a signal or `quit`; removes its rules on the way out
//
// How it works
//   Run it inside the namespace whose links it shapes: `ip netns exec NS smig-linkemu ...`.
//   Each link is a NAME bound to an interface of that namespace, and usually to the other
//   end of that veth too (`peer NETNS:IFACE`). Link number i (in creation order) gets two
//   NFQUEUE queues: BASE+2i for "out" (from this namespace to the peer) and BASE+2i+1 for
//   "in". Steering is done with iptables (iptables-nft by default, so `nft list ruleset`
//   shows it; this kernel has no nft `queue` expression) in the mangle table, in chains of
//   its own, for IPv4 and IPv6 (ARP is not shaped):
//       in:   here,          PREROUTING  -> SMIG_LINKEMU_IN:  -i IFACE      -j NFQUEUE
//       out:  with a peer,   PREROUTING  -> SMIG_LINKEMU_IN:  -i PEERIFACE  (in NETNS)
//             without peer,  POSTROUTING -> SMIG_LINKEMU_OUT: -o IFACE      (here)
//   It holds each packet and issues its verdict later: NF_ACCEPT when its time has come,
//   NF_DROP for loss, overflow or a link that is down. One thread: ppoll over the queue
//   sockets (one per namespace), the control socket(s) and a signalfd, with the next
//   release time as the timeout. On exit (SIGTERM, SIGINT, SIGHUP, `quit`, or stdin EOF
//   with --exit-on-stdin-eof) the rules and chains are removed in every namespace, then the
//   held packets released. After SIGKILL the rules stay (and, without --bypass, block the
//   link): start again with --replace, or delete the namespaces.
//
// Why shape at the receiving end (give `peer`)
//   A packet held at our own egress still belongs to the socket that sent it, so it counts
//   against that socket's send buffer and TCP Small Queues: a TCP sender in this namespace
//   behind `delay 20ms` then crawls (2.3 Mbit/s measured, against 480 Mbit/s with peer) and
//   a UDP sender blocks once delay x rate exceeds SO_SNDBUF (~200 held packets by default).
//   The same packet is an orphan once it has crossed the veth, so holding it at the peer's
//   ingress behaves like a real link. Without `peer` the delays are still exact; use it
//   only for light traffic or when the peer namespace is out of reach.
//
// What the numbers mean
//   Both directions of a link are shaped by the one process, so one process per vehicle
//   suffices and "down" is a dead radio in both directions.
//   delay:  ONE-WAY, per direction. With `delay 20ms` (dir both) a ping across the link
//           sees RTT = 40 ms, and so do SCTP heartbeats. (iputils ping needs -U: its
//           default receive timestamp is taken before the ingress hook.)
//   jitter: each packet gets delay + U(-jitter, +jitter), FIFO kept (no reordering).
//   loss:   independent per packet and per direction, in percent. `loss 10%` both ways
//           loses 19% of round trips.
//   rate:   per direction, of IP packet bytes (no L2 header); a packet leaves no earlier
//           than size*8/rate after the previous one, then travels `delay`.
//   limit:  packets that may wait for the serializer (only with a rate); more are dropped.
//   up/down: down drops every packet of the link, both directions, including those held.
//   A change applies to packets arriving after it; packets already held keep their
//   release time (they are "on the wire"), except that `down` drops them.
//
// Control protocol (a line protocol; on a unix stream socket given by --control=PATH, any
// number of clients, and on stdin with --stdin). Each line holds one or more commands
// separated by ';', applied in order at once (e.g. "link cell down; link dsrc up"). Each
// non-empty line gets zero or more JSON lines, then exactly one status line: "ok", or
// "error <message>" (the commands before the failing one have been applied). Blank lines
// and lines starting with '#' get no answer.
//
//   link NAME [dev IFACE] [peer NETNS:IFACE] [dir both|out|in] [delay D] [jitter D]
//             [loss P%] [rate R] [limit N] [up|down]
//       Creates link NAME (dev required; starts up, no delay, no loss, unlimited) or
//       changes it (dev and peer may not change). NETNS: a name in /run/netns or a path
//       (/proc/PID/ns/net); IFACE there: the other end of dev. Options not given keep their value. `dir`
//       selects the directions that delay/jitter/loss/rate/limit apply to (default both).
//       D: 20ms, 1.5s, 250us, 0.  P: 0.5% or 0.5 (percent).  R: 5mbit, 500kbit, 1gbit,
//       9600bit; kbps/mbps = BYTES/s as in tc; 0 = unlimited.  N: packets (default 1000).
//   stats [NAME]   one JSON line per link (all links, or NAME):
//       {"type":"stats","t":<unix s>,"link":"cell","dev":"veth0","peer":"edge1:veth1",
//        "up":true,"out":{"hook":"ingress edge1:veth1","queue":100,"delay_ms":20,"jitter_ms":0,"loss_pct":0,"rate_bps":0,
//               "limit":1000,"packets":N,"bytes":N,"passed":N,"passed_bytes":N,
//               "dropped":N,"dropped_loss":N,"dropped_down":N,"dropped_overflow":N,
//               "dropped_kernel":N,"queue_depth":N,"max_queue_depth":N,"max_late_ms":X},
//        "in":{...same, queue 101...}}
//       dropped = loss + down + overflow + kernel; dropped_kernel is what the kernel
//       dropped for this queue (queue full or netlink overrun, nfnetlink_queue counters).
//       max_late_ms: the most a packet was released after its due time (a busy CPU).
//   ping           answers "ok" (readiness / liveness).
//   quit           answers "ok", then exits and removes its rules.
//   help           the protocol summary, then "ok".
//
// Standard output carries JSON lines: {"type":"ready","pid":N,"links":[...],...} once the initial links are
// installed and the control socket listens; stats lines (periodic with --stats-interval,
// and the answers to `stats` given on stdin); {"type":"exit",...} at the end, with final
// stats before it. Diagnostics go to standard error.
//
// The parts (each header states what it owns)
//   packet_io.h   NFQUEUE sockets per namespace, queues, reading packets, verdicts;
//   steering.h    the iptables chains and rules that steer packets into the queues;
//   link_table.h  the links, their directions and when each packet may go (link_model.h:
//                 one direction's delay line, and the control protocol's parser);
//   control.h     the control socket and stdin, stdout, the protocol's help text;
//   Emulator      (below) wires them together and runs the one thread's poll loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace smig::linkemu {

struct Options {
  uint32_t queue_base = 100;        // link i uses queues base+2i (out), base+2i+1 (in)
  uint32_t max_links = 16;
  std::string control_path;         // unix socket; empty = none
  bool control_stdin = false;       // read commands from stdin, answers to stdout
  bool exit_on_stdin_eof = false;
  absl::Duration stats_interval = absl::ZeroDuration();
  uint32_t queue_maxlen = 65536;    // kernel queue length per queue (held packets)
  uint32_t rcvbuf_bytes = 32 << 20;  // netlink socket receive buffer
  bool ipv6 = true;
  bool bypass = false;              // NFQUEUE --queue-bypass: accept if nobody listens
  bool replace = false;             // remove our chains left by an earlier run first
  std::string iptables = "nft";     // nft (iptables-nft) or legacy (iptables-legacy)
  std::string chain_prefix = "SMIG_LINKEMU";
  uint64_t seed = 0;                // random seed for loss/jitter; 0 = from the clock
  bool realtime = false;            // SCHED_FIFO: releases stay on time on a busy CPU
};

// Owns every part above; one per process (it blocks SIGTERM/SIGINT/SIGHUP and takes
// them through a signalfd). Not thread-safe: Execute and Run from one thread.
class Emulator {
 public:
  // Binds nothing yet; installs the base chains. Fails if they exist (unless replace).
  static absl::StatusOr<std::unique_ptr<Emulator>> Create(const Options& options);
  ~Emulator();  // removes rules and chains, releases held packets, closes sockets

  // Applies one control line (as on the socket); `answer` receives the JSON lines and the
  // status line.
  absl::Status Execute(const std::string& line, std::string* answer);
  // Serves until a signal, `quit`, or an error; returns the reason if an error.
  absl::Status Run();

  class Impl;

 private:
  explicit Emulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace smig::linkemu
