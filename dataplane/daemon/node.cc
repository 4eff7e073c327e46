#include "dataplane/daemon/node.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <poll.h>

#include <future>
#include <set>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;
using google::protobuf::util::TimeUtil;

namespace {
constexpr size_t kMaxQueuedEvents = 1024;
constexpr absl::Duration kLoopWait = absl::Milliseconds(5);
constexpr absl::Duration kMetricsEvery = absl::Milliseconds(200);
}  // namespace

void EventQueue::Push(const v1::AgentEvent& e) {
  if (filter_ != 0 && e.session_id() != 0 && e.session_id() != filter_) return;
  absl::MutexLock lock(&mu_);
  if (events_.size() >= kMaxQueuedEvents) events_.pop_front();
  events_.push_back(e);
}

std::optional<v1::AgentEvent> EventQueue::Pop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !events_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (events_.empty()) return std::nullopt;
  v1::AgentEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void EventQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

namespace {
prometheus::Counter& UnlabeledCounter(prometheus::Registry& r, const std::string& name,
                                      const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
}  // namespace

// Prometheus series of one node; engines keep the counts, the loop exports the deltas.
struct DataplaneNode::Metrics {
  explicit Metrics(prometheus::Registry& r, const std::string& role)
      : bytes(prometheus::BuildCounter()
                  .Name("smig_session_bytes_total")
                  .Help("Media bytes sent (edge) or delivered to the player (vehicle).")
                  .Register(r)
                  .Add({{"role", role}})),
        frames(prometheus::BuildCounter()
                   .Name("smig_frames_total")
                   .Help("Media frames sent (edge) or delivered to the player (vehicle).")
                   .Register(r)
                   .Add({{"role", role}})),
        dropped(prometheus::BuildCounter()
                    .Name("smig_frames_dropped_total")
                    .Help("Frames the vehicle refused, by reason.")
                    .Register(r)),
        duplicates(UnlabeledCounter(
            r, "smig_duplicates_dropped_total",
            "Frames that arrived again from another association and were dropped.")),
        send_errors(UnlabeledCounter(
            r, "smig_send_errors_total",
            "Frames an edge's SCTP stack refused with an error (retried).")),
        send_deferrals(UnlabeledCounter(
            r, "smig_send_deferrals_total",
            "Frames an edge kept queued because an association's send buffer was full (sent "
            "later, not lost).")),
        skipped(UnlabeledCounter(
            r, "smig_frames_skipped_total",
            "Edge: frames not sent because the vehicle reported it already had them from "
            "another edge (a new edge starts at the player's position).")),
        resent(UnlabeledCounter(
            r, "smig_frames_resent_total",
            "Edge: frames sent again after a reconnect, because the vehicle's answer showed "
            "they were lost with the previous association.")),
        sessions(prometheus::BuildGauge()
                     .Name("smig_sessions_active")
                     .Help("Sessions this data plane serves (edge) or receives (vehicle).")
                     .Register(r)
                     .Add({{"role", role}})),
        migration_stall(prometheus::BuildHistogram()
                            .Name("smig_migration_stall_seconds")
                            .Help("Vehicle: the largest pause in delivery to the player between "
                                  "a new edge's HELLO and its stream becoming contiguous.")
                            .Register(r)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2})),
        path_events(prometheus::BuildCounter()
                        .Name("smig_path_events_total")
                        .Help("SCTP path state changes seen by this data plane, by kind.")
                        .Register(r)),
        failovers(prometheus::BuildCounter()
                      .Name("smig_path_failovers_total")
                      .Help("Paths that stopped carrying traffic (active to potentially "
                            "failed or unreachable): SCTP moved their data to another path.")
                      .Register(r)
                      .Add({{"role", role}})),
        capacity(prometheus::BuildGauge()
                     .Name("smig_sessions_capacity")
                     .Help("Edge: the most sessions this data plane serves at once.")
                     .Register(r)),
        path_srtt(prometheus::BuildGauge()
                      .Name("smig_path_srtt_seconds")
                      .Help("Vehicle: smoothed round-trip time of each path to each edge "
                            "server, as SCTP measures it.")
                      .Register(r)),
        path_up(prometheus::BuildGauge()
                    .Name("smig_path_up")
                    .Help("Vehicle: 1 while a path to an edge server is active, else 0.")
                    .Register(r)),
        live_feed_bytes(prometheus::BuildCounter()
                            .Name("smig_live_feed_bytes_total")
                            .Help("Edge: bytes received on each standing live feed, watched "
                                  "or not.")
                            .Register(r)) {}
  prometheus::Counter& bytes;
  prometheus::Counter& frames;
  prometheus::Family<prometheus::Counter>& dropped;
  prometheus::Counter& duplicates;
  prometheus::Counter& send_errors;
  prometheus::Counter& send_deferrals;
  prometheus::Counter& skipped;
  prometheus::Counter& resent;
  prometheus::Gauge& sessions;
  prometheus::Histogram& migration_stall;
  prometheus::Family<prometheus::Counter>& path_events;
  prometheus::Counter& failovers;
  prometheus::Family<prometheus::Gauge>& capacity;
  prometheus::Family<prometheus::Gauge>& path_srtt;
  prometheus::Family<prometheus::Gauge>& path_up;
  prometheus::Family<prometheus::Counter>& live_feed_bytes;
  // Per-path series exported last time, removed when their path or association goes.
  std::map<std::pair<std::string, std::string>, std::pair<prometheus::Gauge*, prometheus::Gauge*>>
      paths;
  // The last state each path reported, to count a failover once (PF then unreachable).
  std::map<std::pair<transport::AssocId, std::string>, tv1::EventType> path_state;
  // What was exported so far, to add only the difference.
  uint64_t bytes_seen = 0, frames_seen = 0, duplicates_seen = 0, send_errors_seen = 0,
           send_deferrals_seen = 0, skipped_seen = 0,
           resent_seen = 0;
  std::map<std::string, uint64_t> dropped_seen;
  std::map<std::string, uint64_t> live_feed_bytes_seen;
  absl::Time next = absl::InfinitePast();
};

DataplaneNode::DataplaneNode(Deps deps)
    : config_(std::move(deps.config)),
      endpoint_(std::move(deps.endpoint)),
      make_sink_(std::move(deps.make_sink)),
      registry_(std::move(deps.registry)),
      probe_endpoint_(std::move(deps.probe_endpoint)) {
  if (registry_) {
    metrics_ = std::make_unique<Metrics>(
        *registry_, config_.role() == v1::ROLE_EDGE ? "edge" : "vehicle");
    if (config_.role() == v1::ROLE_VEHICLE) {  // every reason shows, at 0 until it happens
      for (const char* reason : VehicleEngine::kDropReasons) {
        metrics_->dropped.Add({{"reason", reason}});
      }
      metrics_->dropped.Add({{"reason", "sink_error"}});
    }
    for (const char* kind : {"unreachable", "potentially_failed", "available", "primary_changed"}) {
      metrics_->path_events.Add({{"kind", kind}});
    }
  }
}

absl::StatusOr<std::unique_ptr<DataplaneNode>> DataplaneNode::Start(Deps deps) {
  if (deps.config.role() != v1::ROLE_EDGE && deps.config.role() != v1::ROLE_VEHICLE) {
    return absl::InvalidArgumentError("role must be ROLE_EDGE or ROLE_VEHICLE");
  }
  if (deps.endpoint == nullptr) return absl::InvalidArgumentError("no SCTP endpoint");
  absl::StatusOr<HelloAuthenticator> auth = HelloAuthenticator::Create(deps.deployment_key);
  if (!auth.ok()) return auth.status();
  if (deps.config.role() == v1::ROLE_EDGE && deps.config.server_id().empty()) {
    return absl::InvalidArgumentError("an edge needs a server_id");
  }
  std::map<std::string, std::shared_ptr<media::UdpFeed>> feeds;
  if (deps.config.role() == v1::ROLE_EDGE) {
    for (const auto& [name, address] : deps.config.live_feeds()) {
      if (name.empty()) return absl::InvalidArgumentError("live_feeds: a feed needs a name");
      absl::StatusOr<std::shared_ptr<media::UdpFeed>> feed = media::UdpFeed::Bind(address);
      if (!feed.ok()) {
        return absl::Status(feed.status().code(), absl::StrCat("live_feeds[\"", name, "\"]: ",
                                                               feed.status().message()));
      }
      feeds.emplace(name, std::move(*feed));
    }
  } else if (!deps.config.live_feeds().empty()) {
    return absl::InvalidArgumentError("live_feeds are for edges; this data plane is a vehicle");
  }
  EdgeEngine::SourceFactory make_source = std::move(deps.make_source);
  std::unique_ptr<DataplaneNode> node(new DataplaneNode(std::move(deps)));
  DataplaneNode* self = node.get();
  if (node->config_.role() == v1::ROLE_EDGE) {
    const size_t max_sessions =
        node->config_.max_sessions() != 0 ? node->config_.max_sessions() : 256;
    if (node->metrics_) {
      node->metrics_->capacity.Add({}).Set(static_cast<double>(max_sessions));
      for (const auto& [name, feed] : feeds) node->metrics_->live_feed_bytes.Add({{"feed", name}});
    }
    node->edge_ = std::make_unique<EdgeEngine>(
        *node->endpoint_, *auth,
        EdgeEngine::Options{
            .server_id = node->config_.server_id(),
            .make_source = std::move(make_source),
            .on_superseded = [self](uint64_t session, uint64_t generation) {
              v1::AgentEvent e;
              e.set_session_id(session);
              e.set_contiguous_generation(generation);
              self->Publish(std::move(e));
            },
            .max_sessions = max_sessions,
            .live_feeds = std::move(feeds)});
  } else {
    node->vehicle_ = std::make_unique<VehicleEngine>(
        *node->endpoint_, *auth,
        VehicleEngine::Options{
            .deliver = [self](uint64_t s, uint32_t f, absl::string_view d) { self->Deliver(s, f, d); },
            .on_drop = [self](transport::AssocId assoc, absl::string_view reason, bool aborted) {
              v1::AgentEvent e;
              e.set_error(absl::StrCat("association ", assoc, ": frame refused (", reason, ")",
                                       aborted ? "; association aborted" : ""));
              self->Publish(std::move(e));
            },
            .on_contiguous = [self](uint64_t session, uint64_t generation, absl::Duration stall) {
              if (generation > 1 && self->metrics_) {
                self->metrics_->migration_stall.Observe(absl::ToDoubleSeconds(stall));
              }
              v1::AgentEvent e;
              e.set_session_id(session);
              e.set_contiguous_generation(generation);
              self->Publish(std::move(e));
            }});
  }
  node->loop_ = std::thread([self] { self->Loop(); });
  return node;
}

DataplaneNode::~DataplaneNode() { Stop(absl::ZeroDuration()); }

void DataplaneNode::Deliver(uint64_t session, uint32_t flow, absl::string_view data) {
  auto key = std::make_pair(session, flow);
  auto it = sinks_.find(key);
  if (it == sinks_.end()) {
    auto conf = config_.sinks().find(flow);
    if (conf == config_.sinks().end() || !make_sink_) {
      v1::AgentEvent e;
      e.set_session_id(session);
      e.set_error(absl::StrCat("no sink configured for flow ", flow, "; its data is discarded"));
      Publish(std::move(e));
      it = sinks_.emplace(key, nullptr).first;
    } else {
      absl::StatusOr<std::unique_ptr<media::Sink>> sink = make_sink_(conf->second);
      if (!sink.ok()) {
        v1::AgentEvent e;
        e.set_session_id(session);
        e.set_error(absl::StrCat("flow ", flow, ": ", sink.status().ToString()));
        Publish(std::move(e));
      }
      it = sinks_.emplace(key, sink.ok() ? std::move(*sink) : nullptr).first;
    }
  }
  if (it->second != nullptr) {
    if (absl::Status s = it->second->Write(data); !s.ok() && metrics_) {
      metrics_->dropped.Add({{"reason", "sink_error"}}).Increment();
    }
  }
}

void DataplaneNode::Publish(v1::AgentEvent e) {
  *e.mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
  absl::MutexLock lock(&mu_);
  for (const auto& q : subscribers_) q->Push(e);
}

std::shared_ptr<EventQueue> DataplaneNode::Subscribe(uint64_t session_filter) {
  auto q = std::make_shared<EventQueue>(session_filter);
  absl::MutexLock lock(&mu_);
  subscribers_.push_back(q);
  return q;
}

void DataplaneNode::Unsubscribe(const std::shared_ptr<EventQueue>& q) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), q), subscribers_.end());
}

void DataplaneNode::OnLoop(std::function<void()> fn) {
  if (stop_.load()) {
    fn();  // the loop is gone: nothing else touches the engines any more
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back([fn = std::move(fn), done] {
      fn();
      done->set_value();
    });
  }
  f.wait();
}

void DataplaneNode::Loop() {
  while (!stop_.load()) {
    std::deque<std::function<void()>> posted;
    {
      absl::MutexLock lock(&mu_);
      posted.swap(posted_);
    }
    for (auto& fn : posted) fn();
    absl::Time now = absl::Now();
    absl::Duration wait = edge_ ? std::min(edge_->NextWait(now), kLoopWait) : kLoopWait;
    absl::StatusOr<std::optional<transport::Incoming>> in = Wait(wait);
    now = absl::Now();
    if (in.ok() && in->has_value()) {
      if (const auto* ev = std::get_if<tv1::Event>(&**in)) {
        if (metrics_) CountPathEvent(*ev);
        v1::AgentEvent e;
        *e.mutable_transport() = *ev;
        Publish(std::move(e));
      }
    }
    if (edge_) {
      edge_->Handle(in, now);
      edge_->Pump(now);
    } else {
      vehicle_->Handle(in, now);
    }
    if (metrics_ && now >= metrics_->next) ExportMetrics(now);
  }
}

absl::StatusOr<std::optional<transport::Incoming>> DataplaneNode::Wait(absl::Duration wait) {
  if (!edge_) return endpoint_->Receive(wait);
  // An edge also wakes for its live sources; a vehicle has nothing else to wait for.
  poll_fds_.clear();
  poll_fds_.push_back({endpoint_->wait_fd(), POLLIN, 0});
  for (int fd : edge_->SourceFds()) poll_fds_.push_back({fd, POLLIN, 0});
  if (probe_endpoint_) poll_fds_.push_back({probe_endpoint_->wait_fd(), POLLIN, 0});
  int ms = static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  (void)poll(poll_fds_.data(), poll_fds_.size(), ms);
  if (probe_endpoint_) {  // probes carry no data: their events are only drained
    for (int i = 0; i < 64; ++i) {
      absl::StatusOr<std::optional<transport::Incoming>> p = probe_endpoint_->Receive(absl::ZeroDuration());
      if (!p.ok() || !p->has_value()) break;
    }
  }
  return endpoint_->Receive(absl::ZeroDuration());
}

void DataplaneNode::CountPathEvent(const tv1::Event& e) {
  const char* kind = nullptr;
  switch (e.type()) {
    case tv1::EVENT_TYPE_PATH_UNREACHABLE: kind = "unreachable"; break;
    case tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED: kind = "potentially_failed"; break;
    case tv1::EVENT_TYPE_PATH_AVAILABLE: kind = "available"; break;
    case tv1::EVENT_TYPE_PRIMARY_CHANGED: kind = "primary_changed"; break;
    case tv1::EVENT_TYPE_ASSOC_LOST:
    case tv1::EVENT_TYPE_SHUTDOWN_COMPLETE:
      std::erase_if(metrics_->path_state,
                    [&](const auto& entry) { return entry.first.first == e.assoc_id(); });
      return;
    default: return;
  }
  metrics_->path_events.Add({{"kind", kind}}).Increment();
  // Failovers are of paths that carry a session; a probe's dead radio moves no traffic.
  bool carries = edge_ ? edge_->Carries(e.assoc_id()) : vehicle_->Carries(e.assoc_id());
  if (e.type() == tv1::EVENT_TYPE_PRIMARY_CHANGED || !carries) return;
  tv1::EventType& last = metrics_->path_state[{e.assoc_id(), e.address()}];
  bool was_up = last == tv1::EVENT_TYPE_UNSPECIFIED || last == tv1::EVENT_TYPE_PATH_AVAILABLE;
  if (was_up && e.type() != tv1::EVENT_TYPE_PATH_AVAILABLE) metrics_->failovers.Increment();
  last = e.type();
}

void DataplaneNode::ExportPathMetrics() {
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& [assoc, server] : vehicle_->Servers()) {
    absl::StatusOr<tv1::AssociationInfo> info = endpoint_->GetAssociation(assoc);
    if (!info.ok()) continue;
    for (const tv1::PathInfo& p : info->paths()) {
      // The peer's IP only: its port changes with every association (bounded labels).
      std::string peer = p.address().substr(0, p.address().rfind(':'));
      auto key = std::make_pair(server, peer);
      if (!seen.insert(key).second) continue;  // an old and a new association to one server
      auto [it, added] = metrics_->paths.try_emplace(key);
      if (added) {
        std::map<std::string, std::string> labels{{"server", server}, {"peer", peer}};
        it->second = {&metrics_->path_srtt.Add(labels), &metrics_->path_up.Add(labels)};
      }
      it->second.first->Set(p.srtt_ms() / 1000.0);
      it->second.second->Set(p.state() == tv1::PATH_STATE_ACTIVE ? 1 : 0);
    }
  }
  for (auto it = metrics_->paths.begin(); it != metrics_->paths.end();) {
    if (seen.contains(it->first)) {
      ++it;
      continue;
    }
    metrics_->path_srtt.Remove(it->second.first);
    metrics_->path_up.Remove(it->second.second);
    it = metrics_->paths.erase(it);
  }
}

void DataplaneNode::ExportMetrics(absl::Time now) {
  metrics_->next = now + kMetricsEvery;
  uint64_t bytes = 0, frames = 0, duplicates = 0, send_errors = 0, send_deferrals = 0,
           skipped = 0, resent = 0;
  size_t sessions = 0;
  if (edge_) {
    frames = edge_->frames_sent();
    bytes = edge_->bytes_sent();
    send_errors = edge_->send_errors();
    send_deferrals = edge_->send_deferrals();
    skipped = edge_->frames_skipped();
    resent = edge_->frames_resent();
    sessions = edge_->Sessions().size();
    for (const auto& [name, feed] : edge_->live_feeds()) {
      uint64_t& seen = metrics_->live_feed_bytes_seen[name];
      metrics_->live_feed_bytes.Add({{"feed", name}})
          .Increment(static_cast<double>(feed->bytes_received() - seen));
      seen = feed->bytes_received();
    }
  } else {
    ExportPathMetrics();
    for (uint64_t id : vehicle_->Sessions()) {
      ++sessions;
      for (const auto& [fid, f] : vehicle_->Flows(id)) {
        bytes += f.stats.delivered_bytes;
        frames += f.stats.delivered_frames;
        duplicates += f.stats.duplicates;
      }
    }
    for (const auto& [reason, n] : vehicle_->counters().dropped) {
      uint64_t& seen = metrics_->dropped_seen[reason];
      metrics_->dropped.Add({{"reason", reason}}).Increment(static_cast<double>(n - seen));
      seen = n;
    }
  }
  // Counters only ever grow; the engines' totals are cumulative.
  auto add = [](prometheus::Counter& c, uint64_t value, uint64_t& seen) {
    if (value > seen) c.Increment(static_cast<double>(value - seen));
    seen = std::max(seen, value);
  };
  add(metrics_->bytes, bytes, metrics_->bytes_seen);
  add(metrics_->frames, frames, metrics_->frames_seen);
  add(metrics_->duplicates, duplicates, metrics_->duplicates_seen);
  add(metrics_->send_errors, send_errors, metrics_->send_errors_seen);
  add(metrics_->send_deferrals, send_deferrals, metrics_->send_deferrals_seen);
  add(metrics_->skipped, skipped, metrics_->skipped_seen);
  add(metrics_->resent, resent, metrics_->resent_seen);
  metrics_->sessions.Set(static_cast<double>(sessions));
}

absl::StatusOr<v1::Session> DataplaneNode::ImportState(const v1::SessionState& state) {
  if (!edge_) return absl::FailedPreconditionError("this data plane is a vehicle, not an edge");
  absl::StatusOr<v1::Session> out;
  OnLoop([&] {
    absl::Status s = edge_->Serve(state, absl::Now());
    out = s.ok() ? edge_->Describe(state.session_id()) : absl::StatusOr<v1::Session>(s);
  });
  return out;
}

absl::StatusOr<v1::Session> DataplaneNode::OpenSession(const v1::OpenSessionRequest& r) {
  if (r.session_id() == 0) return absl::InvalidArgumentError("session_id 0 is reserved");
  v1::SessionState state;
  state.set_format_version(1);
  state.set_session_id(r.session_id());
  state.set_generation(1);
  *state.mutable_vehicle_addresses() = r.vehicle_addresses();
  state.set_vehicle_port(r.vehicle_port());
  *state.mutable_flows() = r.flows();
  return ImportState(state);
}

absl::StatusOr<v1::SessionState> DataplaneNode::ExportState(uint64_t session) {
  if (!edge_) return absl::FailedPreconditionError("this data plane is a vehicle, not an edge");
  absl::StatusOr<v1::SessionState> out;
  OnLoop([&] { out = edge_->Export(session, absl::Now()); });
  return out;
}

absl::StatusOr<v1::Session> DataplaneNode::ReleaseSession(uint64_t session) {
  if (!edge_) return absl::FailedPreconditionError("this data plane is a vehicle, not an edge");
  absl::StatusOr<v1::Session> out;
  OnLoop([&] {
    out = edge_->Describe(session);
    if (!out.ok()) return;
    if (absl::Status s = edge_->Release(session); !s.ok()) out = s;
    else out->set_phase(v1::SESSION_PHASE_RELEASING);
  });
  return out;
}

v1::Session DataplaneNode::DescribeVehicle(uint64_t session) const {
  v1::Session out;
  out.set_session_id(session);
  out.set_role(v1::ROLE_VEHICLE);
  out.set_phase(v1::SESSION_PHASE_SERVING);
  std::vector<uint64_t> gens = vehicle_->Generations(session);
  if (!gens.empty()) out.set_generation(gens.back());
  for (const auto& [fid, f] : vehicle_->Flows(session)) {
    v1::FlowStatus* fl = out.add_flows();
    fl->set_flow_id(fid);
    fl->set_next_sequence(f.next_sequence);
    fl->set_frames(f.stats.delivered_frames);
    fl->set_bytes(f.stats.delivered_bytes);
    fl->set_duplicates_dropped(f.stats.duplicates);
    fl->set_buffered_frames(f.buffered_frames);
    *fl->mutable_max_delivery_gap() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(f.stats.max_delivery_gap));
    fl->set_stalls(f.stats.stalls);
  }
  for (transport::AssocId a : endpoint_->Associations()) {
    if (absl::StatusOr<tv1::AssociationInfo> info = endpoint_->GetAssociation(a); info.ok()) {
      *out.add_associations() = *info;
    }
  }
  return out;
}

absl::StatusOr<v1::Session> DataplaneNode::GetSession(uint64_t session) {
  absl::StatusOr<v1::Session> out;
  OnLoop([&] {
    if (edge_) {
      out = edge_->Describe(session);
      return;
    }
    std::vector<uint64_t> ids = vehicle_->Sessions();
    if (std::find(ids.begin(), ids.end(), session) == ids.end()) {
      out = absl::NotFoundError(absl::StrCat("session ", session, " is unknown to this vehicle"));
      return;
    }
    out = DescribeVehicle(session);
  });
  return out;
}

std::vector<v1::Session> DataplaneNode::ListSessions() {
  std::vector<v1::Session> out;
  OnLoop([&] {
    if (edge_) {
      for (uint64_t id : edge_->Sessions()) {
        if (absl::StatusOr<v1::Session> s = edge_->Describe(id); s.ok()) out.push_back(*s);
      }
    } else {
      for (uint64_t id : vehicle_->Sessions()) out.push_back(DescribeVehicle(id));
    }
  });
  return out;
}

namespace {
// 1 when `ip` is on a subnet of one of this host's interfaces (no router in between), else
// 0: the number of routers is not known without traceroute, which smig does not do.
uint32_t HopsTo(const std::string& ip) {
  in_addr peer{};
  if (inet_pton(AF_INET, ip.c_str(), &peer) != 1) return 0;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  uint32_t hops = 0;
  for (ifaddrs* i = list; i != nullptr && hops == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    uint32_t mine = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    uint32_t mask = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
    if ((mine & mask) == (peer.s_addr & mask)) hops = 1;
  }
  freeifaddrs(list);
  return hops;
}
}  // namespace

proximity::v1::ProximityReport DataplaneNode::MeasureProximity(
    const std::vector<proximity::v1::Server>& servers) {
  proximity::v1::ProximityReport report;
  if (!vehicle_) return report;
  OnLoop([&] {
    *report.mutable_measured_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
    report.set_serving_server_id(vehicle_->ServingServer());
    for (const proximity::v1::Server& server : servers) {
      if (server.sctp_addresses().empty() || server.sctp_port() == 0) continue;
      proximity::v1::Measurement* m = report.add_measurements();
      m->set_server_id(server.id());
      auto probe = probes_.find(server.id());
      absl::StatusOr<tv1::AssociationInfo> info =
          probe == probes_.end() ? absl::NotFoundError("") : endpoint_->GetAssociation(probe->second);
      if (!info.ok()) {  // not probed yet, or the probe was lost: (re)connect
        if (probe != probes_.end()) probes_.erase(probe);
        std::vector<std::string> addrs(server.sctp_addresses().begin(), server.sctp_addresses().end());
        if (absl::StatusOr<transport::AssocId> a =
                endpoint_->Connect(addrs, static_cast<uint16_t>(server.sctp_port()));
            a.ok()) {
          probes_[server.id()] = *a;
        }
        continue;
      }
      const tv1::PathInfo* best = nullptr;
      for (const tv1::PathInfo& p : info->paths()) {
        *m->add_paths() = p;
        if (p.state() == tv1::PATH_STATE_ACTIVE && p.srtt_ms() > 0 &&
            (best == nullptr || p.srtt_ms() < best->srtt_ms())) {
          best = &p;
        }
      }
      if (best == nullptr) continue;  // up, but no path measured yet: not reachable
      m->set_reachable(true);
      m->set_srtt_ms(best->srtt_ms());
      m->set_bandwidth_bps(best->cwnd_bytes() * 8.0 / (best->srtt_ms() / 1000.0));
      std::string host = best->address().substr(0, best->address().rfind(':'));
      m->set_hops(HopsTo(host));
    }
  });
  return report;
}

void DataplaneNode::Stop(absl::Duration grace) {
  if (!loop_.joinable()) return;
  if (edge_ && grace > absl::ZeroDuration()) {
    OnLoop([&] {
      for (uint64_t id : edge_->Sessions()) (void)edge_->Release(id);
    });
    absl::Time deadline = absl::Now() + grace;
    while (absl::Now() < deadline) {
      bool empty = false;
      OnLoop([&] { empty = edge_->Sessions().empty(); });
      if (empty) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  stop_.store(true);
  loop_.join();
  for (auto& [key, sink] : sinks_) {
    if (sink) (void)sink->Close();
  }
  absl::MutexLock lock(&mu_);
  for (const auto& q : subscribers_) q->Close();
}

}  // namespace smig::dataplane
