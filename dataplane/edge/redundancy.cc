#include "dataplane/edge/redundancy.h"

#include <algorithm>
#include <limits>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

void Redundancy::WindowMin::Add(absl::Time at, double value, absl::Duration window) {
  while (!samples_.empty() && samples_.back().second >= value) samples_.pop_back();
  samples_.emplace_back(at, value);
  while (samples_.front().first < at - window) samples_.pop_front();
}

std::optional<double> Redundancy::WindowMin::min() const {
  if (samples_.empty()) return std::nullopt;
  return samples_.front().second;
}

Redundancy::Redundancy(v1::RedundancyPolicy policy) : Redundancy(policy, Tuning()) {}

Redundancy::Redundancy(v1::RedundancyPolicy policy, Tuning tuning)
    : policy_(policy == v1::REDUNDANCY_POLICY_UNSPECIFIED ? v1::REDUNDANCY_POLICY_AUTO : policy),
      tuning_(tuning) {}

void Redundancy::Reset() {
  paths_.clear();
  primary_.clear();
  duplicating_ = false;
}

void Redundancy::Trouble(Path& p, absl::Time now, std::string what) {
  p.last_trouble = now;
  p.trouble = std::move(what);
}

void Redundancy::SetState(const std::string& address, tv1::PathState state, absl::Time now) {
  Path& p = paths_[address];
  const bool down =
      state == tv1::PATH_STATE_POTENTIALLY_FAILED || state == tv1::PATH_STATE_INACTIVE;
  if (Active(p) && down) {
    p.failures.push_back(now);
    Trouble(p, now, state == tv1::PATH_STATE_INACTIVE ? "unreachable" : "potentially failed");
  }
  p.state = state;
}

void Redundancy::OnEvent(const tv1::Event& e, absl::Time now) {
  switch (e.type()) {
    case tv1::EVENT_TYPE_PATH_AVAILABLE:
    case tv1::EVENT_TYPE_PATH_ADDED:
      SetState(e.address(), tv1::PATH_STATE_ACTIVE, now);
      break;
    case tv1::EVENT_TYPE_PATH_UNREACHABLE:
      SetState(e.address(), tv1::PATH_STATE_INACTIVE, now);
      break;
    case tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED:
      SetState(e.address(), tv1::PATH_STATE_POTENTIALLY_FAILED, now);
      break;
    case tv1::EVENT_TYPE_PATH_REMOVED:
      paths_.erase(e.address());
      break;
    case tv1::EVENT_TYPE_PRIMARY_CHANGED:
      primary_ = e.address();
      break;
    default:
      break;
  }
}

void Redundancy::OnSample(const tv1::AssociationInfo& info, absl::Time now) {
  std::map<std::string, Path> kept;
  for (const tv1::PathInfo& s : info.paths()) {
    if (s.primary()) primary_ = s.address();
    SetState(s.address(), s.state(), now);
    Path& p = paths_[s.address()];
    if (s.srtt_ms() > 0) {  // 0: not measured yet
      p.srtt_ms = s.srtt_ms();
      p.srtt_min.Add(now, p.srtt_ms, tuning_.baseline_window);
      const double base = *p.srtt_min.min();
      if (p.srtt_ms > base * tuning_.srtt_factor &&
          p.srtt_ms > base + absl::ToDoubleMilliseconds(tuning_.srtt_margin)) {
        Trouble(p, now, absl::StrFormat("srtt %.0f ms, its recent minimum %.0f ms", p.srtt_ms, base));
      }
    }
    if (s.rto_ms() > 0) {
      p.rto_ms = s.rto_ms();
      p.rto_min.Add(now, p.rto_ms, tuning_.baseline_window);
      const double base = *p.rto_min.min();
      if (p.rto_ms >= base * tuning_.rto_factor) {
        Trouble(p, now, absl::StrFormat("RTO %u ms, backed off from %.0f ms (a timeout)", p.rto_ms, base));
      }
    }
    kept[s.address()] = std::move(p);
  }
  paths_ = std::move(kept);  // paths the stack no longer lists are gone
}

const std::string* Redundancy::Carrying() const {
  auto primary = paths_.find(primary_);
  if (primary != paths_.end() && Active(primary->second)) return &primary->first;
  for (const auto& [address, p] : paths_) {
    if (Active(p)) return &address;
  }
  return nullptr;
}

std::optional<std::string> Redundancy::carrying() const {
  const std::string* c = Carrying();
  return c == nullptr ? std::nullopt : std::optional<std::string>(*c);
}

bool Redundancy::active(const std::string& address) const {
  auto it = paths_.find(address);
  return it != paths_.end() && Active(it->second);
}

absl::Duration Redundancy::rto(const std::string& address) const {
  auto it = paths_.find(address);
  return it == paths_.end() ? absl::ZeroDuration() : absl::Milliseconds(it->second.rto_ms);
}

bool Redundancy::Troubled(const Path& p, absl::Time now) const {
  if (static_cast<int>(p.failures.size()) >= tuning_.flap_count) return true;
  return p.last_trouble.has_value() && now - *p.last_trouble < tuning_.hold;
}

std::optional<Redundancy::Plan> Redundancy::Decide(absl::Time now) {
  for (auto& [address, p] : paths_) {
    while (!p.failures.empty() && p.failures.front() <= now - tuning_.flap_window) {
      p.failures.pop_front();
    }
  }
  duplicating_ = false;
  if (policy_ == v1::REDUNDANCY_POLICY_OFF) {
    reason_ = "policy off";
    return std::nullopt;
  }
  const std::string* carrying = Carrying();
  if (carrying == nullptr) {
    reason_ = "no active path";
    return std::nullopt;
  }
  // The best other active path: untroubled first, then the lowest srtt (unmeasured last).
  const std::string* second = nullptr;
  std::tuple<bool, double> best;
  for (const auto& [address, p] : paths_) {
    if (address == *carrying || !Active(p)) continue;
    std::tuple<bool, double> key{Troubled(p, now),
                                 p.srtt_ms > 0 ? p.srtt_ms : std::numeric_limits<double>::max()};
    if (second == nullptr || key < best) {
      second = &address;
      best = key;
    }
  }
  if (second == nullptr) {
    reason_ = absl::StrCat("one active path (", *carrying, ")");
    return std::nullopt;
  }
  const Path& c = paths_.at(*carrying);
  if (policy_ == v1::REDUNDANCY_POLICY_AUTO) {
    if (!Troubled(c, now)) {
      reason_ = absl::StrCat("auto: ", *carrying, " is healthy");
      return std::nullopt;
    }
    if (static_cast<int>(c.failures.size()) >= tuning_.flap_count) {
      reason_ = absl::StrCat("auto: ", *carrying, " flapping (", c.failures.size(),
                             " failures within ", absl::FormatDuration(tuning_.flap_window), ")");
    } else {
      reason_ = absl::StrCat("auto: ", *carrying, " ", c.trouble, " ",
                             absl::FormatDuration(absl::Trunc(now - *c.last_trouble,
                                                              absl::Milliseconds(1))),
                             " ago");
    }
  } else {
    reason_ = "always";
  }
  duplicating_ = true;
  return Plan{*carrying, *second};
}

}  // namespace smig::dataplane
