// The links of one smig-linkemu: each with its two directions (a Pipe each, link_model.h),
// where each direction is shaped (an NFQUEUE queue at an interface's ingress or egress, in
// our namespace or the peer's) and whether the link is up. It applies `link` commands,
// admits packets, releases them when due, and writes the stats lines.
//
//   LinkTable links({.queue_base = 100, .max_links = 16, .seed = 7},
//                   [&](Link& link) -> absl::Status {
//                     // bind link.out's and link.in's queues, set their `verdict`
//                   });
//   SMIG_RETURN_IF_ERROR(links.Apply(command.link));  // creates or changes a link
//   links.Admit(direction, packet_id, ip_size, MonotonicNs());  // a packet arrived
//   links.ReleaseDue(MonotonicNs());                  // and whenever NextRelease() is due
//
// Ownership: the table owns its links; a Link (and its Directions) keeps its address as
// long as the table lives, so callbacks may hold it. The attach callback and the
// directions' verdict functions must stay callable as long as the table. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "tools/linkemu/link_model.h"

namespace smig::linkemu {

// CLOCK_MONOTONIC in nanoseconds, the time base of Pipe.
int64_t MonotonicNs();

struct Link;

// One direction of a link: "out" (from our namespace to the peer) or "in".
struct Direction {
  Link* link = nullptr;
  bool out = true;
  // Where it is shaped: NFQUEUE `queue`, fed by interface `dev` in namespace `netns`
  // ("" = ours) at its ingress or egress.
  uint32_t queue = 0;
  std::string netns;
  bool ingress = true;
  std::string dev;
  Pipe pipe;
  // Releases (true) or drops (false) a packet handed to this direction; set on attaching.
  std::function<void(uint32_t packet_id, bool accept)> verdict;
};

struct Link {
  std::string name, dev, peer_ns, peer_dev;
  bool up = true;
  Direction out, in;
};

class LinkTable {
 public:
  struct Options {
    uint32_t queue_base = 100;  // link i uses queues base+2i (out), base+2i+1 (in)
    uint32_t max_links = 16;
    uint64_t seed = 0;          // random seed for loss/jitter; 0 = from the clock
  };
  // Connects a new link's directions to packets (and sets their `verdict`); all or
  // nothing. The link joins the table only if it succeeds.
  using Attach = std::function<absl::Status(Link& link)>;
  // What the kernel dropped per (namespace, queue), for the stats lines.
  using KernelDrops = std::map<std::pair<std::string, uint32_t>, uint64_t>;

  LinkTable(const Options& options, Attach attach);

  // Creates link c.name (c.dev required) or changes it (dev and peer cannot change).
  absl::Status Apply(const LinkCommand& c);
  // A packet for `d`: dropped at once (loss, down, overflow), held, or released if due.
  void Admit(Direction& d, uint32_t packet_id, uint32_t ip_size, int64_t now_ns);
  // Releases every held packet that is due at `now_ns`.
  void ReleaseDue(int64_t now_ns);
  // When the next held packet is due; nullopt if none is held.
  std::optional<int64_t> NextRelease() const;
  // Releases every held packet now, due or not (at exit, once nothing is steered here).
  void ReleaseAll();

  // One JSON line per link (all, or the one named `target`); NOT_FOUND if there is none.
  absl::Status AppendStats(const std::string& target, const KernelDrops& kernel_drops,
                           std::string* out) const;
  std::vector<std::string> Names() const;

 private:
  absl::Status Add(const LinkCommand& c, Link** out);

  Options opt_;
  Attach attach_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::vector<std::unique_ptr<Link>> links_;
};

}  // namespace smig::linkemu
