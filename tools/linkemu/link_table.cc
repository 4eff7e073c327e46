#include "tools/linkemu/link_table.h"

#include <time.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace smig::linkemu {
namespace {

std::string Ms(absl::Duration d) { return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d)); }

std::string DirJson(const Direction& d, const LinkTable::KernelDrops& kdrops) {
  const PipeStats& s = d.pipe.stats;
  const DirectionParams& p = d.pipe.params;
  auto it = kdrops.find({d.netns, d.queue});
  const uint64_t k = it == kdrops.end() ? 0 : it->second;
  return absl::StrFormat(
      "{\"hook\":\"%s %s%s\",\"queue\":%u,\"delay_ms\":%s,\"jitter_ms\":%s,\"loss_pct\":%.4g,\"rate_bps\":%u,"
      "\"limit\":%u,\"packets\":%u,\"bytes\":%u,\"passed\":%u,\"passed_bytes\":%u,"
      "\"dropped\":%u,\"dropped_loss\":%u,\"dropped_down\":%u,\"dropped_overflow\":%u,"
      "\"dropped_kernel\":%u,\"queue_depth\":%u,\"max_queue_depth\":%u,\"max_late_ms\":%.3f}",
      d.ingress ? "ingress" : "egress", d.netns.empty() ? "" : d.netns + ":", d.dev,
      d.queue, Ms(p.delay), Ms(p.jitter), p.loss * 100, p.rate_bps, p.limit, s.packets, s.bytes,
      s.passed, s.passed_bytes, s.dropped_loss + s.dropped_down + s.dropped_overflow + k,
      s.dropped_loss, s.dropped_down, s.dropped_overflow, k, d.pipe.depth(), s.max_queue_depth,
      static_cast<double>(s.max_late_ns) / 1e6);
}

std::string StatsJson(const Link& l, const LinkTable::KernelDrops& kdrops) {
  return absl::StrFormat(
      "{\"type\":\"stats\",\"t\":%.3f,\"link\":\"%s\",\"dev\":\"%s\",\"peer\":\"%s\",\"up\":%s,\"out\":%s,"
      "\"in\":%s}\n",
      absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), l.name, l.dev,
      l.peer_ns.empty() ? "" : absl::StrCat(l.peer_ns, ":", l.peer_dev),
      l.up ? "true" : "false", DirJson(l.out, kdrops), DirJson(l.in, kdrops));
}

}  // namespace

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

LinkTable::LinkTable(const Options& options, Attach attach)
    : opt_(options),
      attach_(std::move(attach)),
      rng_(options.seed ? options.seed : static_cast<uint64_t>(MonotonicNs())) {}

absl::Status LinkTable::Add(const LinkCommand& c, Link** out) {
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
  auto l = std::make_unique<Link>();
  l->name = c.name;
  l->dev = *c.dev;
  l->peer_ns = peer_ns;
  l->peer_dev = peer_dev;
  const uint32_t q = opt_.queue_base + 2 * static_cast<uint32_t>(links_.size());
  for (Direction* d : {&l->out, &l->in}) {
    d->link = l.get();
    d->out = d == &l->out;
    d->queue = d->out ? q : q + 1;
  }
  // out: our egress, or the peer's ingress; in: our ingress.
  l->out.netns = peer_ns;
  l->out.ingress = !peer_ns.empty();
  l->out.dev = peer_ns.empty() ? l->dev : peer_dev;
  l->in.netns = "";
  l->in.ingress = true;
  l->in.dev = l->dev;
  SMIG_RETURN_IF_ERROR(attach_(*l));
  *out = l.get();
  links_.push_back(std::move(l));
  return absl::OkStatus();
}

absl::Status LinkTable::Apply(const LinkCommand& c) {
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
  if (link == nullptr) SMIG_RETURN_IF_ERROR(Add(c, &link));
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
        for (const Pipe::Held& h : d->pipe.DropAll()) d->verdict(h.id, false);
      }
    }
  }
  return absl::OkStatus();
}

void LinkTable::Admit(Direction& d, uint32_t packet_id, uint32_t ip_size, int64_t now_ns) {
  const double u_loss = unit_(rng_);
  const double u_jitter = d.pipe.params.jitter > absl::ZeroDuration() ? unit_(rng_) * 2 - 1 : 0;
  Pipe::Outcome o = d.pipe.Admit(now_ns, packet_id, ip_size, d.link->up, u_loss, u_jitter);
  if (o != Pipe::Outcome::kQueued) {
    d.verdict(packet_id, false);
    return;
  }
  while (std::optional<Pipe::Held> h = d.pipe.PopDue(now_ns)) d.verdict(h->id, true);
}

void LinkTable::ReleaseDue(int64_t now_ns) {
  for (auto& l : links_) {
    for (Direction* d : {&l->out, &l->in}) {
      while (std::optional<Pipe::Held> h = d->pipe.PopDue(now_ns)) d->verdict(h->id, true);
    }
  }
}

std::optional<int64_t> LinkTable::NextRelease() const {
  std::optional<int64_t> next;
  for (const auto& l : links_) {
    for (const Direction* d : {&l->out, &l->in}) {
      if (std::optional<int64_t> r = d->pipe.NextRelease()) next = std::min(next.value_or(*r), *r);
    }
  }
  return next;
}

void LinkTable::ReleaseAll() { ReleaseDue(MonotonicNs() + (int64_t{1} << 50)); }

absl::Status LinkTable::AppendStats(const std::string& target, const KernelDrops& kernel_drops,
                                    std::string* out) const {
  bool found = target.empty();
  for (const auto& l : links_) {
    if (target.empty() || l->name == target) {
      absl::StrAppend(out, StatsJson(*l, kernel_drops));
      found = true;
    }
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no link '", target, "'"));
  return absl::OkStatus();
}

std::vector<std::string> LinkTable::Names() const {
  std::vector<std::string> names;
  for (const auto& l : links_) names.push_back(l->name);
  return names;
}

}  // namespace smig::linkemu
