#include "tools/linkemu/link_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace smig::linkemu {

bool ValidName(absl::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
           c == '-';
  });
}

absl::StatusOr<absl::Duration> ParseDelay(absl::string_view s) {
  absl::Duration d;
  if (s == "0") return absl::ZeroDuration();
  if (!absl::ParseDuration(s, &d) || d < absl::ZeroDuration() || d == absl::InfiniteDuration() ||
      d > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration '", s, "' (e.g. 20ms, 1.5s, 250us, 0)"));
  }
  return d;
}

absl::StatusOr<uint64_t> ParseRate(absl::string_view in) {
  std::string s = absl::AsciiStrToLower(in);
  if (s == "0" || s == "none" || s == "off" || s == "unlimited") return 0;
  struct Unit {
    const char* suffix;
    double bits;
  };
  // Longest suffixes first.
  static constexpr Unit kUnits[] = {{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9},
                                    {"kbps", 8e3}, {"mbps", 8e6}, {"gbps", 8e9},
                                    {"bit", 1},    {"bps", 8}};
  double mult = 1;
  absl::string_view num = s;
  for (const Unit& u : kUnits) {
    if (absl::EndsWith(s, u.suffix)) {
      num = absl::string_view(s).substr(0, s.size() - absl::string_view(u.suffix).size());
      mult = u.bits;
      break;
    }
  }
  double v;
  if (num.empty() || !absl::SimpleAtod(num, &v) || !std::isfinite(v) || v < 0 ||
      v * mult > 1e12) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad rate '", in, "' (e.g. 5mbit, 500kbit, 1gbit, 100kbps = bytes/s, 0)"));
  }
  uint64_t bps = static_cast<uint64_t>(std::llround(v * mult));
  if (bps == 0 && v > 0) bps = 1;
  return bps;
}

absl::StatusOr<double> ParseLossPercent(absl::string_view s) {
  absl::string_view num = absl::StripSuffix(s, "%");
  double v;
  if (num.empty() || !absl::SimpleAtod(num, &v) || !std::isfinite(v) || v < 0 || v > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad loss '", s, "' (percent, 0..100, e.g. 0.5%)"));
  }
  return v / 100.0;
}

namespace {

absl::StatusOr<Command> ParseOne(absl::string_view text) {
  std::vector<absl::string_view> w = absl::StrSplit(text, absl::ByAnyChar(" \t\r"),
                                                   absl::SkipEmpty());
  Command c;
  if (w.empty()) return absl::InvalidArgumentError("empty command");
  const absl::string_view verb = w[0];
  if (verb == "ping" || verb == "quit" || verb == "help") {
    if (w.size() != 1) return absl::InvalidArgumentError(absl::StrCat(verb, " takes no arguments"));
    c.kind = verb == "ping" ? Command::Kind::kPing
             : verb == "quit" ? Command::Kind::kQuit
                              : Command::Kind::kHelp;
    return c;
  }
  if (verb == "stats") {
    c.kind = Command::Kind::kStats;
    if (w.size() > 2) return absl::InvalidArgumentError("usage: stats [NAME]");
    if (w.size() == 2) c.target = std::string(w[1]);
    return c;
  }
  if (verb != "link") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", verb, "' (link, stats, ping, quit, help)"));
  }
  c.kind = Command::Kind::kLink;
  if (w.size() < 2 || !ValidName(w[1])) {
    return absl::InvalidArgumentError("usage: link NAME [dev IFACE] [peer NETNS:IFACE] [dir both|out|in] "
                                      "[delay D] [jitter D] [loss P%] [rate R] [limit N] "
                                      "[up|down]  (NAME: [A-Za-z0-9_.-]{1,32})");
  }
  LinkCommand& l = c.link;
  l.name = std::string(w[1]);
  for (size_t i = 2; i < w.size(); ++i) {
    const absl::string_view key = w[i];
    if (key == "up" || key == "down") {
      l.up = key == "up";
      continue;
    }
    if (i + 1 >= w.size()) return absl::InvalidArgumentError(absl::StrCat("'", key, "' needs a value"));
    const absl::string_view val = w[++i];
    if (key == "dev") {
      if (val.empty() || val.size() > 15 || val.find('/') != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("bad interface name '", val, "'"));
      }
      l.dev = std::string(val);
    } else if (key == "peer") {
      const size_t colon = val.rfind(':');
      const absl::string_view ns = val.substr(0, colon == absl::string_view::npos ? 0 : colon);
      const absl::string_view dev =
          colon == absl::string_view::npos ? absl::string_view() : val.substr(colon + 1);
      bool ns_ok = !ns.empty() && ns.size() < 256 && ns != "." && ns != "..";
      if (ns_ok && ns[0] != '/') {
        ns_ok = std::all_of(ns.begin(), ns.end(), [](char ch) {
          return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' ||
                 ch == '-';
        });
      }
      if (!ns_ok || dev.empty() || dev.size() > 15 || dev.find('/') != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bad peer '", val, "': NETNS:IFACE (a name in /run/netns, or a path such as "
            "/proc/PID/ns/net, then the interface there)"));
      }
      l.peer_ns = std::string(ns);
      l.peer_dev = std::string(dev);
    } else if (key == "dir") {
      if (val == "both") {
        l.apply_out = l.apply_in = true;
      } else if (val == "out") {
        l.apply_out = true, l.apply_in = false;
      } else if (val == "in") {
        l.apply_out = false, l.apply_in = true;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("dir '", val, "': use both, out or in"));
      }
    } else if (key == "delay" || key == "jitter") {
      SMIG_ASSIGN_OR_RETURN((key == "delay" ? l.delay : l.jitter), ParseDelay(val));
    } else if (key == "loss") {
      SMIG_ASSIGN_OR_RETURN(l.loss, ParseLossPercent(val));
    } else if (key == "rate") {
      SMIG_ASSIGN_OR_RETURN(l.rate_bps, ParseRate(val));
    } else if (key == "limit") {
      uint32_t n;
      if (!absl::SimpleAtoi(val, &n) || n == 0) {
        return absl::InvalidArgumentError(absl::StrCat("limit '", val, "': a packet count >= 1"));
      }
      l.limit = n;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown link option '", key,
          "' (dev, peer, dir, delay, jitter, loss, rate, limit, up, down)"));
    }
  }
  return c;
}

}  // namespace

absl::StatusOr<std::vector<Command>> ParseCommandLine(absl::string_view line) {
  std::vector<Command> out;
  for (absl::string_view part : absl::StrSplit(line, ';')) {
    if (absl::StripAsciiWhitespace(part).empty()) continue;
    SMIG_ASSIGN_OR_RETURN(Command c, ParseOne(part));
    out.push_back(std::move(c));
  }
  return out;
}

Pipe::Outcome Pipe::Admit(int64_t now_ns, uint32_t id, uint32_t size, bool up, double u_loss,
                          double u_jitter) {
  stats.packets++;
  stats.bytes += size;
  if (!up) {
    stats.dropped_down++;
    return Outcome::kDropDown;
  }
  if (params.loss > 0 && u_loss < params.loss) {
    stats.dropped_loss++;
    return Outcome::kDropLoss;
  }
  while (!tx_end_.empty() && tx_end_.front() <= now_ns) tx_end_.pop_front();
  int64_t ready = now_ns;
  if (params.rate_bps > 0) {
    if (tx_end_.size() >= params.limit) {
      stats.dropped_overflow++;
      return Outcome::kDropOverflow;
    }
    const int64_t start = std::max(now_ns, tx_free_ns_);
    const double ns = static_cast<double>(size) * 8e9 / static_cast<double>(params.rate_bps);
    tx_free_ns_ = start + static_cast<int64_t>(std::llround(ns));
    tx_end_.push_back(tx_free_ns_);
    ready = tx_free_ns_;
  }
  int64_t delay = absl::ToInt64Nanoseconds(params.delay);
  if (params.jitter > absl::ZeroDuration()) {
    delay += static_cast<int64_t>(u_jitter * static_cast<double>(absl::ToInt64Nanoseconds(params.jitter)));
    delay = std::max<int64_t>(delay, 0);
  }
  const int64_t release = std::max(ready + delay, last_release_ns_);
  last_release_ns_ = release;
  held_.push_back({id, size, release});
  stats.max_queue_depth = std::max<uint64_t>(stats.max_queue_depth, held_.size());
  return Outcome::kQueued;
}

std::optional<int64_t> Pipe::NextRelease() const {
  if (held_.empty()) return std::nullopt;
  return held_.front().release_ns;
}

std::optional<Pipe::Held> Pipe::PopDue(int64_t now_ns) {
  if (held_.empty() || held_.front().release_ns > now_ns) return std::nullopt;
  Held h = held_.front();
  held_.pop_front();
  stats.max_late_ns = std::max(stats.max_late_ns, now_ns - h.release_ns);
  stats.passed++;
  stats.passed_bytes += h.size;
  return h;
}

std::vector<Pipe::Held> Pipe::DropAll() {
  std::vector<Held> out(held_.begin(), held_.end());
  held_.clear();
  tx_end_.clear();
  tx_free_ns_ = 0;
  stats.dropped_down += out.size();
  return out;
}

}  // namespace smig::linkemu
