#include "services/proximity/proximity_engine.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::proximity {

namespace {

// A change smaller than both of these is jitter: SCTP's srtt moves a little with every
// report (~100 ms apart), and waking every watcher (the MDM) for that would flood them
// with states that cannot change a decision. Both bounds, because 10 % of a 1 ms LAN RTT
// is noise-sized while 2 ms is small against a 100 ms cellular RTT.
constexpr double kSrttRelativeChange = 0.10;
constexpr double kSrttAbsoluteChangeMs = 2.0;

const char* SourceName(v1::ServerSource s) {
  switch (s) {
    case v1::SERVER_SOURCE_STATIC: return "static (config)";
    case v1::SERVER_SOURCE_KUBERNETES: return "discovered in Kubernetes";
    case v1::SERVER_SOURCE_REGISTERED: return "registered";
    default: return "unknown";
  }
}

// Whether watchers should hear about the step from `a` to `b`: roles, reachability,
// the set of servers, hops, load, and srtt beyond jitter (see the constants above).
// Compared with what was last *published*, not last computed, so that a slow drift adds
// up and is published once it is large enough.
bool Changed(const v1::VehicleProximity& a, const v1::VehicleProximity& b) {
  if (a.target_server_id() != b.target_server_id()) return true;
  if (a.servers_size() != b.servers_size()) return true;
  for (int i = 0; i < a.servers_size(); ++i) {
    const v1::ServerProximity& x = a.servers(i);
    const v1::ServerProximity& y = b.servers(i);
    if (x.server_id() != y.server_id() || x.role() != y.role() ||
        x.reachable() != y.reachable() || x.hops() != y.hops() ||
        x.sessions() != y.sessions() || x.capacity() != y.capacity()) {
      return true;
    }
    double d = std::fabs(y.srtt_ms() - x.srtt_ms());
    if (d > kSrttAbsoluteChangeMs || d > kSrttRelativeChange * x.srtt_ms()) return true;
  }
  return false;
}

absl::Status ValidateServer(const v1::Server& s) {
  if (s.id().empty()) return absl::InvalidArgumentError("server.id is empty");
  if (s.agent_address().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("server ", s.id(), ": agent_address is empty"));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- ProximityWatch ----

void ProximityWatch::Push(const v1::VehicleProximity& p) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (auto queued = latest_.find(p.vehicle_id()); queued != latest_.end()) {
    queued->second = p;  // a whole snapshot: the newer one says everything the older did
    return;
  }
  if (order_.size() >= limit_) {
    latest_.erase(order_.front());
    order_.pop_front();
    ++dropped_;
  }
  order_.push_back(p.vehicle_id());
  latest_.emplace(p.vehicle_id(), p);
}

std::optional<v1::VehicleProximity> ProximityWatch::Pop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !order_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (order_.empty()) return std::nullopt;
  auto node = latest_.extract(order_.front());
  order_.pop_front();
  return std::move(node.mapped());
}

bool ProximityWatch::closed() {
  absl::MutexLock lock(&mu_);
  return closed_ && order_.empty();
}

uint64_t ProximityWatch::dropped() {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void ProximityWatch::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

// ---- ProximityEngine ----

absl::StatusOr<std::unique_ptr<ProximityEngine>> ProximityEngine::Create(Options options,
                                                                         Clock& clock) {
  std::set<std::string> ids;
  for (const v1::Server& s : options.static_servers) {
    if (absl::Status st = ValidateServer(s); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("static servers: ", st.message()));
    }
    if (!ids.insert(s.id()).second) {
      return absl::InvalidArgumentError(absl::StrCat("static servers: id ", s.id(), " twice"));
    }
  }
  if (options.report_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("report_ttl ", absl::FormatDuration(
                                                       options.report_ttl), " is not positive"));
  }
  return std::unique_ptr<ProximityEngine>(new ProximityEngine(std::move(options), clock));
}

ProximityEngine::ProximityEngine(Options options, Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  if (options_.registry) {
    servers_gauge_ = &prometheus::BuildGauge()
                          .Name("smig_servers_registered")
                          .Help("Edge servers in the PMM's registry.")
                          .Register(*options_.registry)
                          .Add({});
    reports_counter_ = &prometheus::BuildCounter()
                            .Name("smig_proximity_reports_total")
                            .Help("Proximity reports received from vehicles.")
                            .Register(*options_.registry)
                            .Add({});
  }
  absl::MutexLock lock(&mu_);
  for (v1::Server s : options_.static_servers) {
    s.set_source(v1::SERVER_SOURCE_STATIC);
    s.clear_expires_at();
    servers_[s.id()] = std::move(s);
  }
  UpdateGaugeLocked(clock_.Now());
}

ProximityEngine::~ProximityEngine() { CloseWatches(); }

bool ProximityEngine::Live(const v1::Server& s, absl::Time now) const {
  return s.source() != v1::SERVER_SOURCE_REGISTERED || now < FromProto(s.expires_at());
}

void ProximityEngine::UpdateGaugeLocked(absl::Time now) {
  if (!servers_gauge_) return;
  int n = 0;
  for (const auto& [id, s] : servers_) n += Live(s, now) ? 1 : 0;
  servers_gauge_->Set(n);
}

absl::StatusOr<v1::Server> ProximityEngine::Register(const v1::Server& server, absl::Duration ttl) {
  SMIG_RETURN_IF_ERROR(ValidateServer(server));
  if (ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("server ", server.id(), ": ttl ",
                                                   absl::FormatDuration(ttl), " is negative"));
  }
  if (ttl == absl::ZeroDuration()) ttl = options_.default_server_ttl;
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = servers_.find(server.id());
  if (it != servers_.end() && it->second.source() != v1::SERVER_SOURCE_REGISTERED) {
    v1::Server& known = it->second;
    if (known.agent_address() != server.agent_address()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "server ", server.id(), " is ", SourceName(known.source()), " with agent_address ",
          known.agent_address(), "; a registration cannot change it to ", server.agent_address()));
    }
    // A heartbeat from a server the PMM knows otherwise still brings its current load.
    known.set_sessions(server.sessions());
    known.set_capacity(server.capacity());
    *known.mutable_last_heartbeat() = ToProtoTimestamp(now);
  } else {
    v1::Server s = server;
    s.set_source(v1::SERVER_SOURCE_REGISTERED);
    *s.mutable_last_heartbeat() = ToProtoTimestamp(now);
    *s.mutable_expires_at() = ToProtoTimestamp(now + ttl);
    it = servers_.insert_or_assign(server.id(), std::move(s)).first;
  }
  v1::Server result = it->second;
  UpdateGaugeLocked(now);
  PublishLocked(nullptr, now);
  return result;
}

std::vector<v1::Server> ProximityEngine::ListServers() {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::vector<v1::Server> out;
  for (const auto& [id, s] : servers_) {
    if (Live(s, now)) out.push_back(s);
  }
  return out;
}

void ProximityEngine::ReplaceDiscovered(const std::vector<v1::Server>& servers) {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::set<std::string> seen;
  for (const v1::Server& d : servers) {
    if (!ValidateServer(d).ok() || !seen.insert(d.id()).second) continue;
    v1::Server s = d;
    auto it = servers_.find(d.id());
    if (it != servers_.end()) {
      if (it->second.source() == v1::SERVER_SOURCE_STATIC) continue;
      s.set_sessions(it->second.sessions());
      s.set_capacity(it->second.capacity());
      if (it->second.has_last_heartbeat()) *s.mutable_last_heartbeat() = it->second.last_heartbeat();
    }
    s.set_source(v1::SERVER_SOURCE_KUBERNETES);
    s.clear_expires_at();
    servers_[d.id()] = std::move(s);
  }
  for (auto it = servers_.begin(); it != servers_.end();) {
    bool gone = it->second.source() == v1::SERVER_SOURCE_KUBERNETES && !seen.count(it->first);
    it = gone ? servers_.erase(it) : std::next(it);
  }
  UpdateGaugeLocked(now);
  PublishLocked(nullptr, now);
}

absl::Status ProximityEngine::Report(const v1::ProximityReport& report) {
  if (reports_counter_) reports_counter_->Increment();
  const std::string& vid = report.vehicle_id();
  if (vid.empty()) return absl::InvalidArgumentError("vehicle_id is empty");
  for (const v1::Measurement& m : report.measurements()) {
    if (m.server_id().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("vehicle ", vid, ": a measurement has no server_id"));
    }
    if (!(m.srtt_ms() >= 0)) {  // also NaN
      return absl::InvalidArgumentError(absl::StrCat("vehicle ", vid, ": server ", m.server_id(),
                                                     ": srtt_ms ", m.srtt_ms(), " is negative"));
    }
  }
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (report.measurements_size() > 0) {
    bool any_known = false;
    for (const v1::Measurement& m : report.measurements()) {
      auto it = servers_.find(m.server_id());
      any_known = any_known || (it != servers_.end() && Live(it->second, now));
    }
    if (!any_known) {
      return absl::NotFoundError(absl::StrCat("vehicle ", vid, ": unknown server ",
                                              report.measurements(0).server_id(),
                                              " (none of the measured servers is registered)"));
    }
  }
  Vehicle& v = vehicles_[vid];
  v.report = report;
  v.received_at = now;
  PublishLocked(&vid, now);
  return absl::OkStatus();
}

v1::VehicleProximity ProximityEngine::Compute(const std::string& id, const Vehicle& v,
                                              absl::Time now) const {
  v1::VehicleProximity p;
  ComputeInto(id, v, now, p);
  return p;
}

void ProximityEngine::ComputeInto(const std::string& id, const Vehicle& v, absl::Time now,
                                  v1::VehicleProximity& p) const {
  p.Clear();  // keeps its servers' memory: computing every report allocates next to nothing
  p.set_vehicle_id(id);
  // The PMM's own receive time, not the vehicle's measured_at: the car's clock may be off,
  // and expiry must not depend on it.
  *p.mutable_updated_at() = ToProtoTimestamp(v.received_at);
  const bool fresh = now - v.received_at <= options_.report_ttl;
  // Views into v.report, which outlives p's computation: no copy per measurement.
  absl::flat_hash_map<absl::string_view, const v1::Measurement*> measured;
  absl::string_view target;
  if (fresh) {
    target = v.report.serving_server_id();
    p.set_target_server_id(std::string(target));
    measured.reserve(v.report.measurements_size());
    for (const v1::Measurement& m : v.report.measurements()) measured[m.server_id()] = &m;
  }
  auto live = [&](absl::string_view sid) {
    auto it = servers_.find(sid);
    return it != servers_.end() && Live(it->second, now);
  };

  // NEW_TARGET: the nearest reachable server other than the target, if it beats the target
  // (any reachable one does when the target is unreachable, unmeasured or unregistered).
  const v1::Measurement* target_m = nullptr;
  if (auto it = measured.find(target); it != measured.end() && live(target)) target_m = it->second;
  const v1::Measurement* best = nullptr;
  for (const auto& [sid, m] : measured) {
    if (sid == target || !m->reachable() || !live(sid)) continue;
    // On a tie, the smaller id: the same answer whatever the order of the report.
    if (!best || m->srtt_ms() < best->srtt_ms() ||
        (m->srtt_ms() == best->srtt_ms() && m->server_id() < best->server_id())) {
      best = m;
    }
  }
  if (best && target_m && target_m->reachable() && !(best->srtt_ms() < target_m->srtt_ms())) {
    best = nullptr;
  }

  for (const auto& [sid, s] : servers_) {
    if (!Live(s, now)) continue;
    v1::ServerProximity* sp = p.add_servers();
    sp->set_server_id(sid);
    sp->set_sessions(s.sessions());
    sp->set_capacity(s.capacity());
    const v1::Measurement* m = nullptr;
    if (auto it = measured.find(sid); it != measured.end()) m = it->second;
    if (m) {
      sp->set_reachable(m->reachable());
      sp->set_srtt_ms(m->srtt_ms());
      sp->set_hops(m->hops());
      sp->set_bandwidth_bps(m->bandwidth_bps());
      *sp->mutable_paths() = m->paths();
    }
    if (fresh && sid == target) {
      sp->set_role(v1::ROLE_TARGET);
    } else if (m && m == best) {
      sp->set_role(v1::ROLE_NEW_TARGET);
    } else if (m) {
      sp->set_role(v1::ROLE_TESTED);
    } else {
      sp->set_role(v1::ROLE_IDLE);
    }
  }
}

void ProximityEngine::PublishLocked(const std::string* id, absl::Time now) {
  std::vector<std::shared_ptr<ProximityWatch>> watches;
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (std::shared_ptr<ProximityWatch> w = it->lock()) {
      watches.push_back(std::move(w));
      ++it;
    } else {
      it = watches_.erase(it);  // its watcher went away
    }
  }
  auto publish = [&](const std::string& vid, Vehicle& v) {
    v1::VehicleProximity& p = scratch_;
    ComputeInto(vid, v, now, p);
    if (v.published && !Changed(*v.published, p)) return;
    v.published = p;
    for (const auto& w : watches) {
      if (w->filter().empty() || w->filter() == vid) w->Push(p);
    }
  };
  if (id) {
    auto it = vehicles_.find(*id);
    if (it != vehicles_.end()) publish(it->first, it->second);
    return;
  }
  for (auto& [vid, v] : vehicles_) publish(vid, v);
}

absl::StatusOr<v1::VehicleProximity> ProximityEngine::Get(const std::string& vehicle_id) {
  if (vehicle_id.empty()) return absl::InvalidArgumentError("vehicle_id is empty");
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = vehicles_.find(vehicle_id);
  if (it == vehicles_.end() || now - it->second.received_at > options_.forget_vehicle_after) {
    return absl::NotFoundError(absl::StrCat("vehicle ", vehicle_id, " has not reported"));
  }
  return Compute(it->first, it->second, now);
}

std::shared_ptr<ProximityWatch> ProximityEngine::Watch(const std::string& vehicle_id) {
  auto w = std::make_shared<ProximityWatch>(vehicle_id, options_.watch_queue_limit);
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (watches_closed_) {
    w->Close();
    return w;
  }
  for (const auto& [vid, v] : vehicles_) {
    if (vehicle_id.empty() || vid == vehicle_id) w->Push(Compute(vid, v, now));
  }
  watches_.push_back(w);
  return w;
}

void ProximityEngine::Sweep() {
  absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  for (auto it = servers_.begin(); it != servers_.end();) {
    it = Live(it->second, now) ? std::next(it) : servers_.erase(it);
  }
  absl::erase_if(vehicles_, [&](const auto& kv) {
    return now - kv.second.received_at > options_.forget_vehicle_after;
  });
  UpdateGaugeLocked(now);
  PublishLocked(nullptr, now);
}

void ProximityEngine::CloseWatches() {
  absl::MutexLock lock(&mu_);
  watches_closed_ = true;
  for (const auto& weak : watches_) {
    if (std::shared_ptr<ProximityWatch> w = weak.lock()) w->Close();
  }
  watches_.clear();
}

}  // namespace smig::proximity
