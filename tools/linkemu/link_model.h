// The pure logic of smig-linkemu, without sockets or clocks: the control protocol's parser
// and one direction of an emulated link (a FIFO delay line behind a serializer). The
// runtime (link_table.h) feeds it packets and the monotonic time; tests feed it numbers.
//
//   SMIG_ASSIGN_OR_RETURN(std::vector<Command> cmds, ParseCommandLine("link cell delay 20ms"));
//   Pipe pipe;
//   pipe.params.delay = absl::Milliseconds(20);
//   if (pipe.Admit(now_ns, id, size, /*up=*/true, u_loss, u_jitter) != Pipe::Outcome::kQueued) Drop(id);
//   while (std::optional<Pipe::Held> h = pipe.PopDue(later_ns)) Release(h->id);
//
// Ownership: plain values. A Pipe holds packet ids and times, never the packets, whose
// owner (the kernel's queue) it tells nothing; its caller issues the verdicts.
//
// The control protocol is described in linkemu.h.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace smig::linkemu {

// The behaviour of one direction of a link. `delay` is ONE-WAY: a packet leaves the
// emulated link `delay` after it has been serialized onto it.
struct DirectionParams {
  absl::Duration delay = absl::ZeroDuration();
  // Each packet gets delay + U(-jitter, +jitter) (never below zero); packets are still
  // released in FIFO order, so a packet never overtakes the one before it.
  absl::Duration jitter = absl::ZeroDuration();
  double loss = 0;        // drop probability, 0..1 (the protocol takes percent)
  uint64_t rate_bps = 0;  // bits per second of IP packet bytes; 0 = unlimited
  uint32_t limit = 1000;  // packets that may wait for the serializer (the link's buffer)
};

// A parsed `link` command: only the fields present in it are changed.
struct LinkCommand {
  std::string name;
  std::optional<std::string> dev;
  // `peer NETNS:IFACE`: the other end of the link (a veth peer). Then the "out" direction
  // is shaped at that interface's ingress inside NETNS instead of at our egress.
  std::optional<std::string> peer_ns, peer_dev;
  bool apply_out = true;  // `dir out|in|both` (default both): which directions the
  bool apply_in = true;   // delay/jitter/loss/rate/limit of this command change
  std::optional<absl::Duration> delay, jitter;
  std::optional<double> loss;
  std::optional<uint64_t> rate_bps;
  std::optional<uint32_t> limit;
  std::optional<bool> up;
};

struct Command {
  enum class Kind { kLink, kStats, kPing, kQuit, kHelp };
  Kind kind = Kind::kPing;
  LinkCommand link;    // kLink
  std::string target;  // kStats: a link name, or empty for all
};

// One control line: commands separated by ';'. Empty input gives no commands.
absl::StatusOr<std::vector<Command>> ParseCommandLine(absl::string_view line);
// "20ms", "1.5s", "0" (a bare 0 only); not negative.
absl::StatusOr<absl::Duration> ParseDelay(absl::string_view s);
// "5mbit", "100kbit", "1gbit", "9600bit" or a bare number: bits/s (SI, 1000);
// "kbps", "mbps", "gbps", "bps": BYTES/s as in tc; "0", "none", "off", "unlimited": 0.
absl::StatusOr<uint64_t> ParseRate(absl::string_view s);
// "0.5%" or "0.5" (percent) -> 0.005.
absl::StatusOr<double> ParseLossPercent(absl::string_view s);
// True for names [A-Za-z0-9_.-]{1,32}.
bool ValidName(absl::string_view s);

struct PipeStats {
  uint64_t packets = 0;  // handed to us by the kernel
  uint64_t bytes = 0;
  uint64_t passed = 0;  // released (NF_ACCEPT)
  uint64_t passed_bytes = 0;
  uint64_t dropped_loss = 0;
  uint64_t dropped_down = 0;  // arrived while down, or held when the link went down
  uint64_t dropped_overflow = 0;
  uint64_t max_queue_depth = 0;
  int64_t max_late_ns = 0;  // most a release came after its due time (CPU contention)
};

// One direction of a link. Times are nanoseconds of CLOCK_MONOTONIC.
//
// A packet that is not lost waits for the serializer (rate: it occupies the link for
// size*8/rate after the previous packet has left it), then travels `delay` (+ jitter);
// release times never decrease (FIFO). At most `limit` packets may wait for the
// serializer; more are dropped (overflow). Packets in flight (past the serializer) are
// not limited here; the kernel queue length (--queue-maxlen) bounds them.
class Pipe {
 public:
  enum class Outcome { kQueued, kDropLoss, kDropDown, kDropOverflow };
  struct Held {
    uint32_t id;
    uint32_t size;
    int64_t release_ns;
  };

  // `u_loss` in [0,1) decides loss, `u_jitter` in [-1,1] scales the jitter.
  Outcome Admit(int64_t now_ns, uint32_t id, uint32_t size, bool up, double u_loss,
                double u_jitter);
  // When the first held packet is due; nullopt if none is held.
  std::optional<int64_t> NextRelease() const;
  // Pops the first held packet if it is due at `now_ns`.
  std::optional<Held> PopDue(int64_t now_ns);
  // Removes every held packet (the link went down); counts them as dropped_down.
  std::vector<Held> DropAll();

  size_t depth() const { return held_.size(); }
  DirectionParams params;
  PipeStats stats;

 private:
  std::deque<Held> held_;
  std::deque<int64_t> tx_end_;  // serializer finish times of packets still waiting
  int64_t tx_free_ns_ = 0;      // the serializer is busy until then
  int64_t last_release_ns_ = 0;
};

}  // namespace smig::linkemu
