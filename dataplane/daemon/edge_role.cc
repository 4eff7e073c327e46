#include "dataplane/daemon/edge_role.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace smig::dataplane {

namespace {
constexpr size_t kDefaultMaxSessions = 256;
// A wake drains at most this many probe notifications, so a flood cannot hold the loop.
constexpr int kProbeDrainMax = 64;
}  // namespace

absl::StatusOr<std::unique_ptr<Role>> EdgeRole::Create(RoleEnv env, NodeDeps& deps) {
  const v1::DataplaneConfig& config = env.config;
  if (config.server_id().empty()) return absl::InvalidArgumentError("an edge needs a server_id");
  std::map<std::string, std::shared_ptr<media::UdpFeed>> feeds;
  for (const auto& [name, address] : config.live_feeds()) {
    if (name.empty()) return absl::InvalidArgumentError("live_feeds: a feed needs a name");
    absl::StatusOr<std::shared_ptr<media::UdpFeed>> feed = media::UdpFeed::Bind(address);
    if (!feed.ok()) {
      return absl::Status(feed.status().code(), absl::StrCat("live_feeds[\"", name, "\"]: ",
                                                             feed.status().message()));
    }
    feeds.emplace(name, std::move(*feed));
  }
  EdgeEngine::Options options{
      .server_id = config.server_id(),
      .make_source = std::move(deps.make_source),
      .on_superseded =
          [publish = env.publish](uint64_t session, uint64_t generation) {
            v1::AgentEvent e;
            e.set_session_id(session);
            e.set_contiguous_generation(generation);
            publish(std::move(e));
          },
      .on_error =
          [publish = env.publish](uint64_t session, const std::string& error) {
            v1::AgentEvent e;
            e.set_session_id(session);
            e.set_error(error);
            publish(std::move(e));
          },
      .max_sessions = config.max_sessions() != 0 ? config.max_sessions() : kDefaultMaxSessions,
      .live_feeds = std::move(feeds)};
  if (config.max_queued_bytes() != 0) options.max_queued_bytes = config.max_queued_bytes();
  return std::unique_ptr<Role>(
      new EdgeRole(std::move(env), std::move(deps.probe_endpoint), std::move(options)));
}

absl::Status EdgeRole::OpenEndpoints(const v1::DataplaneConfig& config,
                                     const transport::EndpointOptions& node_endpoint,
                                     const EndpointOpener& open, NodeDeps& deps) {
  if (config.probe_port() == 0) return absl::OkStatus();
  if (config.probe_port() > 65535) return absl::InvalidArgumentError("probe_port is above 65535");
  transport::EndpointOptions probe = node_endpoint;
  probe.port = static_cast<uint16_t>(config.probe_port());
  probe.listen = true;
  SMIG_ASSIGN_OR_RETURN(deps.probe_endpoint, open(probe));
  return absl::OkStatus();
}

EdgeRole::EdgeRole(RoleEnv env, std::unique_ptr<transport::Endpoint> probe_endpoint,
                   EdgeEngine::Options options)
    : probe_endpoint_(std::move(probe_endpoint)),
      engine_(env.endpoint, std::move(options)) {}

void EdgeRole::AddWakeFds(std::vector<pollfd>& fds) const {
  // Live sources wake the loop, so a datagram is forwarded at once, not at the next tick.
  for (int fd : engine_.SourceFds()) fds.push_back({fd, POLLIN, 0});
  if (probe_endpoint_) fds.push_back({probe_endpoint_->wait_fd(), POLLIN, 0});
}

void EdgeRole::AfterWait() {
  if (!probe_endpoint_) return;
  for (int i = 0; i < kProbeDrainMax; ++i) {  // probes carry no data: their events are only drained
    absl::StatusOr<std::optional<transport::Incoming>> p = probe_endpoint_->Receive(absl::ZeroDuration());
    if (!p.ok() || !p->has_value()) break;
  }
}

EdgeRole::Exports::Exports(NodeMetrics& m)
    : metrics(m),
      send_errors(m.send_errors),
      send_deferrals(m.send_deferrals),
      skipped(m.skipped),
      resent(m.resent),
      queued_dropped(m.queued_dropped),
      redundant_bytes(m.redundant_bytes) {}

void EdgeRole::AttachMetrics(NodeMetrics& metrics) {
  exports_.emplace(metrics);
  metrics.capacity.Add({}).Set(static_cast<double>(engine_.max_sessions()));
  for (const char* policy : {"off", "auto", "always"}) {
    metrics.sessions_redundancy.Add({{"policy", policy}});
  }
  for (const auto& [name, feed] : engine_.live_feeds()) {
    exports_->live_feeds.emplace(name, CounterFeed(metrics.live_feed_bytes.Add({{"feed", name}})));
  }
}

void EdgeRole::ExportMetrics() {
  if (!exports_) return;
  exports_->metrics.ExportTotals(engine_.bytes_sent(), engine_.frames_sent(),
                                 engine_.Sessions().size());
  exports_->send_errors.Update(engine_.send_errors());
  exports_->send_deferrals.Update(engine_.send_deferrals());
  exports_->skipped.Update(engine_.frames_skipped());
  exports_->resent.Update(engine_.frames_resent());
  exports_->queued_dropped.Update(engine_.queued_frames_dropped());
  exports_->redundant_bytes.Update(engine_.redundant_bytes());
  exports_->metrics.sessions_duplicating.Set(static_cast<double>(engine_.sessions_duplicating()));
  const std::map<v1::RedundancyPolicy, size_t> by_policy = engine_.sessions_by_redundancy();
  for (auto [policy, label] : {std::pair{v1::REDUNDANCY_POLICY_OFF, "off"},
                               std::pair{v1::REDUNDANCY_POLICY_AUTO, "auto"},
                               std::pair{v1::REDUNDANCY_POLICY_ALWAYS, "always"}}) {
    auto it = by_policy.find(policy);
    exports_->metrics.sessions_redundancy.Add({{"policy", label}})
        .Set(static_cast<double>(it == by_policy.end() ? 0 : it->second));
  }
  for (const auto& [name, feed] : engine_.live_feeds()) {
    exports_->live_feeds.at(name).Update(feed->bytes_received());
  }
}

void EdgeRole::ReleaseAll() {
  for (uint64_t id : engine_.Sessions()) (void)engine_.Release(id);
}

absl::StatusOr<v1::Session> EdgeRole::OpenSession(const v1::OpenSessionRequest& r,
                                                  absl::Time now) {
  v1::SessionState state;
  state.set_format_version(1);
  state.set_session_id(r.session_id());
  state.set_generation(1);
  *state.mutable_vehicle_addresses() = r.vehicle_addresses();
  state.set_vehicle_port(r.vehicle_port());
  *state.mutable_flows() = r.flows();
  state.set_redundancy(r.redundancy());
  state.set_session_key(r.session_key());
  return ImportState(state, now);
}

absl::StatusOr<v1::Session> EdgeRole::ImportState(const v1::SessionState& state, absl::Time now) {
  if (absl::Status s = engine_.Serve(state, now); !s.ok()) return s;
  return engine_.Describe(state.session_id());
}

absl::StatusOr<v1::Session> EdgeRole::ReleaseSession(uint64_t session) {
  absl::StatusOr<v1::Session> out = engine_.Describe(session);
  if (!out.ok()) return out;
  if (absl::Status s = engine_.Release(session); !s.ok()) return s;
  out->set_phase(v1::SESSION_PHASE_RELEASING);
  return out;
}

std::vector<v1::Session> EdgeRole::ListSessions() {
  std::vector<v1::Session> out;
  for (uint64_t id : engine_.Sessions()) {
    if (absl::StatusOr<v1::Session> s = engine_.Describe(id); s.ok()) out.push_back(*s);
  }
  return out;
}

}  // namespace smig::dataplane
