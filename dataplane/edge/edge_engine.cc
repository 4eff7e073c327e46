#include "dataplane/edge/edge_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

namespace {
constexpr uint32_t kSessionFormatVersion = 1;
constexpr absl::Duration kReconnectBackoff = absl::Seconds(1);
constexpr absl::Duration kMaxWait = absl::Milliseconds(5);
constexpr absl::Duration kFullBufferRetry = absl::Milliseconds(1);
}  // namespace

EdgeEngine::EdgeEngine(transport::Endpoint& endpoint, Options options)
    : endpoint_(endpoint),
      options_(std::move(options)),
      open_source_([this](const v1::FlowState& fs, absl::Time at) { return OpenSource(fs, at); }) {}

absl::Status EdgeEngine::Serve(const v1::SessionState& state, absl::Time now) {
  const uint64_t id = state.session_id();
  if (state.format_version() != kSessionFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session state format version ", state.format_version(), " is not supported (this edge "
        "speaks version ", kSessionFormatVersion, ")"));
  }
  if (sessions_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("session ", id, " is already served here"));
  }
  if (sessions_.size() >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "edge ", options_.server_id, " is at capacity (", options_.max_sessions,
        " sessions); session ", id, " refused"));
  }
  if (state.flows().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("session ", id, " has no flows"));
  }
  if (state.vehicle_addresses().empty() || state.vehicle_port() == 0 ||
      state.vehicle_port() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("session ", id, " needs the vehicle's addresses and SCTP port"));
  }
  SMIG_RETURN_IF_ERROR(CheckSessionKey(state.session_key(), absl::StrCat("session ", id)));
  Session s;
  s.state = state;
  s.state.set_server_id(options_.server_id);
  s.auth.emplace(*HelloAuthenticator::Create(state.session_key()));
  s.link = std::make_unique<RedundantLink>(endpoint_, id, state.redundancy());
  for (const v1::FlowState& fs : state.flows()) {
    if (fs.flow_id() > 0xfffe) {
      return absl::InvalidArgumentError(absl::StrCat("flow id ", fs.flow_id(), " is too large"));
    }
    if (s.flows.contains(fs.flow_id())) {
      return absl::InvalidArgumentError(absl::StrCat("flow ", fs.flow_id(), " appears twice"));
    }
    SMIG_ASSIGN_OR_RETURN(std::unique_ptr<media::Source> source, OpenSource(fs, now));
    s.flows.try_emplace(fs.flow_id(), fs, std::move(source),
                        EdgeFlow::Limits{.sent_history = options_.sent_history,
                                         .max_queued_bytes = options_.max_queued_bytes});
  }
  sessions_.emplace(id, std::move(s));
  Pump(now);  // connects
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<media::Source>> EdgeEngine::OpenSource(const v1::FlowState& fs,
                                                                       absl::Time now) const {
  if (!fs.source().has_live_feed()) return options_.make_source(fs, now);
  const std::string& name = fs.source().live_feed();
  auto feed = options_.live_feeds.find(name);
  if (feed == options_.live_feeds.end()) {
    std::vector<std::string> names;
    for (const auto& [n, f] : options_.live_feeds) names.push_back(absl::StrCat("'", n, "'"));
    return absl::NotFoundError(absl::StrCat(
        "edge ", options_.server_id, " does not ingest live feed '", name, "' (its live_feeds: ",
        names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
  }
  auto source = std::make_unique<media::UdpSource>(feed->second);
  if (!fs.last_frame_fingerprints().empty()) {
    std::vector<uint64_t> run(fs.last_frame_fingerprints().begin(),
                              fs.last_frame_fingerprints().end());
    if (absl::StatusOr<uint64_t> at = source->SeekAfter(run); !at.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "flow ", fs.flow_id(), ": edge ", options_.server_id, " cannot place the checkpoint "
          "of live feed '", name, "' (sequence ", fs.next_sequence(), ") in what it received: ",
          at.status().message()));
    }
  } else if (fs.next_sequence() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "flow ", fs.flow_id(), " of live feed '", name, "' has a checkpoint at sequence ",
        fs.next_sequence(), " but no last_frame_fingerprints to find it by"));
  }
  return source;
}

void EdgeEngine::Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in,
                        absl::Time now) {
  if (!in.ok() || !in->has_value()) return;
  if (const auto* e = std::get_if<tv1::Event>(&**in)) {
    auto it = by_assoc_.find(e->assoc_id());
    if (it == by_assoc_.end()) return;
    const uint64_t id = it->second;
    const bool ends = e->type() == tv1::EVENT_TYPE_ASSOC_LOST ||
                      e->type() == tv1::EVENT_TYPE_ASSOC_CANT_START ||
                      e->type() == tv1::EVENT_TYPE_SHUTDOWN_COMPLETE;
    auto sit = sessions_.find(id);
    if (sit == sessions_.end() || sit->second.assoc != e->assoc_id()) {
      // A stale mapping: no session holds this association any more. Its events must not
      // touch the session's current association.
      if (ends) by_assoc_.erase(it);
      return;
    }
    Session& s = sit->second;
    if (ends) {
      // The INIT may have gone to a dead radio every time: lead with the next one.
      AssociationGone(id, now, /*ended=*/true,
                      /*rotate=*/e->type() == tv1::EVENT_TYPE_ASSOC_CANT_START);
      return;
    }
    switch (e->type()) {
      case tv1::EVENT_TYPE_ASSOC_UP:
        s.last_heard = now;
        s.link->Attach(e->assoc_id(), e->streams_out(), now);
        SendHello(s, now);
        break;
      default:
        s.link->OnEvent(*e, now);  // path states: where the copies go
        break;
    }
    return;
  }
  const auto& m = std::get<transport::Message>(**in);
  auto it = by_assoc_.find(m.assoc);
  if (it == by_assoc_.end()) return;
  auto sit = sessions_.find(it->second);
  if (sit == sessions_.end() || sit->second.assoc != m.assoc) return;
  sit->second.last_heard = now;  // the vehicle is there
  if (m.stream != 0) return;
  absl::StatusOr<FrameView> frame = DecodeFrame(m.data);
  v1::ControlMessage control;
  if (!frame.ok() || frame->header.kind != FrameKind::kControl ||
      !control.ParseFromString(std::string(frame->payload))) {
    return;
  }
  OnControl(sit->second, control, now);
}

void EdgeEngine::SendHello(Session& s, absl::Time now) {
  v1::ControlMessage hello;
  s.hello = s.auth->Sign(s.state.session_id(), options_.server_id, s.state.generation());
  *hello.mutable_hello() = s.hello;
  FillPositions(s, hello.mutable_hello()->mutable_positions());
  FrameHeader h{.kind = FrameKind::kControl, .session_id = s.state.session_id()};
  absl::Status st =
      endpoint_.Send(*s.assoc, {.stream = 0}, EncodeFrame(h, hello.SerializeAsString()));
  if (!st.ok()) OnSendError(s, st, now);
}

bool EdgeEngine::OnSendError(Session& s, const absl::Status& st, absl::Time now) {
  ++counters_.send_errors;
  // NOT_FOUND: the endpoint or its stack no longer has the association (usrsctp: ENOENT;
  // the kernel: EPIPE, ENOTCONN), though no ending event said so. Anything else (a
  // full buffer is UNAVAILABLE and not an error) leaves the frame queued for a retry.
  if (!absl::IsNotFound(st) || s.releasing || !s.assoc) return false;
  LOG(WARNING) << "session " << s.state.session_id() << ": association " << *s.assoc
               << " is gone (" << st << "); connecting again";
  AssociationGone(s.state.session_id(), now, /*ended=*/false, /*rotate=*/false);
  return true;
}

bool EdgeEngine::AssociationGone(uint64_t session, absl::Time now, bool ended, bool rotate) {
  auto sit = sessions_.find(session);
  if (sit == sessions_.end()) return true;
  Session& s = sit->second;
  if (s.assoc) {
    by_assoc_.erase(*s.assoc);
    // The stack may still hold it (a silent loss, a timeout): abort it, so that it cannot
    // hold up a new association to the same vehicle, and the vehicle hears it ended.
    if (!ended) (void)endpoint_.Abort(*s.assoc);
  }
  s.link->Detach();
  if (s.releasing) {
    sessions_.erase(sit);
    return true;
  }
  s.assoc.reset();  // Pump reconnects after a back-off
  s.acked = false;
  s.position_due = false;
  s.retry_send_at = absl::InfinitePast();
  s.next_connect = now + kReconnectBackoff;
  auto* addrs = s.state.mutable_vehicle_addresses();
  if (rotate && addrs->size() > 1) std::rotate(addrs->begin(), addrs->begin() + 1, addrs->end());
  return false;
}

void EdgeEngine::OnControl(Session& s, const v1::ControlMessage& m, absl::Time now) {
  const google::protobuf::RepeatedPtrField<v1::FlowProgress>* flows = nullptr;
  if (m.has_hello_ack()) {
    if (absl::Status ok = s.auth->VerifyAck(s.hello, m.hello_ack()); !ok.ok()) {
      // Whoever answered does not hold the session key: it gets nothing, and the session
      // connects again (the vehicle's radios are what the control plane gave).
      const uint64_t id = s.state.session_id();
      LOG(WARNING) << "session " << id << ": " << ok.message() << "; association aborted";
      if (options_.on_error) options_.on_error(id, std::string(ok.message()));
      AssociationGone(id, now, /*ended=*/false, /*rotate=*/true);
      return;
    }
    s.acked = true;
    s.position_due = m.hello_ack().accepts_edge_position();
    flows = &m.hello_ack().flows();
  } else if (m.has_progress()) {
    flows = &m.progress().flows();
    if (m.progress().contiguous() && m.progress().contiguous_generation() > s.state.generation() &&
        options_.on_superseded) {
      options_.on_superseded(s.state.session_id(), m.progress().contiguous_generation());
    }
  }
  if (flows == nullptr) return;
  for (const v1::FlowProgress& p : *flows) {
    auto f = s.flows.find(p.flow_id());
    if (f == s.flows.end()) continue;
    f->second.OnVehicleAt(p.next_sequence(), m.has_hello_ack(), now, open_source_, counters_);
  }
}

void EdgeEngine::FillPositions(const Session& s,
                               google::protobuf::RepeatedPtrField<v1::FlowPosition>* out) {
  for (const auto& [fid, f] : s.flows) {
    v1::FlowPosition* p = out->Add();
    p->set_flow_id(fid);
    p->set_next_sequence(f.Position());
  }
}

void EdgeEngine::SendPosition(Session& s, absl::Time now) {
  v1::ControlMessage m;
  m.mutable_edge_position()->set_session_id(s.state.session_id());
  FillPositions(s, m.mutable_edge_position()->mutable_flows());
  FrameHeader h{.kind = FrameKind::kControl, .session_id = s.state.session_id()};
  absl::Status st = endpoint_.Send(*s.assoc, {.stream = 0, .max_wait = absl::ZeroDuration()},
                                   EncodeFrame(h, m.SerializeAsString()));
  if (absl::IsUnavailable(st)) {  // full send buffer: the next Pump tries again
    ++counters_.send_deferrals;
    s.retry_send_at = now + kFullBufferRetry;
    return;
  }
  if (!st.ok() && OnSendError(s, st, now)) return;
  s.position_due = false;
}

void EdgeEngine::SendFrames(Session& s, EdgeFlow& f, absl::Time now) {
  absl::Status st = f.Send(*s.link, s.state.session_id(), counters_);
  if (absl::IsUnavailable(st)) {  // full send buffer: the rest waits for the next Pump
    s.retry_send_at = now + kFullBufferRetry;
  } else if (!st.ok()) {
    OnSendError(s, st, now);
  }
}

void EdgeEngine::Pump(absl::Time now) {
  for (auto& [name, feed] : options_.live_feeds) {
    if (!feed->Drain().ok()) ++counters_.send_errors;
  }
  for (auto next = sessions_.begin(); next != sessions_.end();) {
    const uint64_t id = next->first;
    Session& s = next->second;
    ++next;  // AssociationGone may forget `s`
    if (s.releasing) {
      if (s.release_deadline == absl::InfiniteFuture()) {
        s.release_deadline = now + options_.release_timeout;
      } else if (now >= s.release_deadline) {
        LOG(WARNING) << "session " << id << ": no SHUTDOWN_COMPLETE within "
                     << options_.release_timeout << "; aborting its association";
        AssociationGone(id, now, /*ended=*/false, /*rotate=*/false);
      }
      continue;
    }
    if (s.assoc && !s.acked && now >= s.connected_at + options_.handshake_timeout) {
      const std::string error =
          absl::StrCat("association ", *s.assoc, ": the vehicle did not answer the HELLO within ",
                       absl::FormatDuration(options_.handshake_timeout), "; connecting again");
      LOG(WARNING) << "session " << id << ": " << error;
      if (options_.on_error) options_.on_error(id, error);
      AssociationGone(id, now, /*ended=*/false, /*rotate=*/true);
    }
    if (s.assoc && now >= s.last_heard + options_.liveness_interval) {
      s.last_heard = now;  // the next check in liveness_interval, unless the vehicle speaks
      if (absl::StatusOr<tv1::AssociationInfo> a = endpoint_.GetAssociation(*s.assoc);
          absl::IsNotFound(a.status())) {
        LOG(WARNING) << "session " << id << ": association " << *s.assoc
                     << " is gone without an event (" << a.status() << "); connecting again";
        AssociationGone(id, now, /*ended=*/false, /*rotate=*/false);
      }
    }
    if (!s.assoc && now >= s.next_connect) {
      std::vector<std::string> addrs(s.state.vehicle_addresses().begin(),
                                     s.state.vehicle_addresses().end());
      absl::StatusOr<transport::AssocId> a =
          endpoint_.Connect(addrs, static_cast<uint16_t>(s.state.vehicle_port()));
      if (a.ok()) {
        s.assoc = *a;
        s.connected_at = now;
        s.last_heard = now;
        by_assoc_[*a] = id;
      } else {
        s.next_connect = now + kReconnectBackoff;
      }
    }
    if (s.assoc && s.acked) s.link->Tick(now);
    for (auto& [fid, f] : s.flows) {
      if (std::optional<std::string> error = f.Collect(now, counters_)) {
        LOG(WARNING) << "session " << id << ": " << *error;
        if (options_.on_error) options_.on_error(id, *error);
      }
      if (s.assoc && s.acked && now >= s.retry_send_at) SendFrames(s, f, now);
    }
    // After the frames that were due: they moved each flow past what the vehicle has.
    if (s.position_due && s.assoc && s.acked && now >= s.retry_send_at) SendPosition(s, now);
  }
}

absl::Duration EdgeEngine::NextWait(absl::Time now) const {
  absl::Duration wait = kMaxWait;
  for (const auto& [id, s] : sessions_) {
    for (const auto& [fid, f] : s.flows) {
      if (f.has_queued() && s.acked) {
        wait = std::min(wait, std::max(absl::ZeroDuration(), s.retry_send_at - now));
      }
      wait = std::min(wait, std::max(absl::ZeroDuration(), f.NextDue() - now));
    }
  }
  return wait;
}

std::vector<int> EdgeEngine::SourceFds() const {
  std::vector<int> fds;
  for (const auto& [name, feed] : options_.live_feeds) fds.push_back(feed->fd());
  const size_t feeds = fds.size();
  for (const auto& [id, s] : sessions_) {
    for (const auto& [fid, f] : s.flows) {
      // Flows on a standing feed share its descriptor, listed above.
      const int fd = f.fd();
      if (fd >= 0 && std::find(fds.begin(), fds.begin() + feeds, fd) == fds.begin() + feeds) {
        fds.push_back(fd);
      }
    }
  }
  return fds;
}

absl::StatusOr<v1::SessionState> EdgeEngine::Export(uint64_t session, absl::Time now) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  }
  const Session& s = it->second;
  v1::SessionState out = s.state;
  out.set_generation(s.state.generation() + 1);  // the generation the next edge will serve
  out.set_session_key(
      RatchetSessionKey(s.state.session_key(), s.state.generation(), out.generation()));
  out.clear_flows();
  *out.mutable_exported_at() = ToProtoTimestamp(now);
  for (const auto& [fid, f] : s.flows) {
    if (!f.CanMove()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", session, " cannot move: flow ", fid, " reads ",
          media::DescribeSource(f.state().source()),
          ", which only this edge receives (a live stream that can move is a live_feed every "
          "edge ingests)"));
    }
    // Where the player is, when the vehicle said so.
    absl::StatusOr<v1::FlowState> fs = f.CheckpointAtVehicle(now);
    if (!fs.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("session ", session, " cannot move yet: ", fs.status().message()));
    }
    *out.add_flows() = *std::move(fs);
  }
  return out;
}

absl::Status EdgeEngine::Release(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  }
  Session& s = it->second;
  // Already letting go: a second graceful shutdown could only fail, and an abort now
  // would drop what the first one still delivers. Pump ends it by release_timeout.
  if (s.releasing) return absl::OkStatus();
  s.releasing = true;
  if (!s.assoc) {  // no association (any more): nothing left to deliver
    sessions_.erase(it);
    return absl::OkStatus();
  }
  absl::Status shutdown = endpoint_.Shutdown(*s.assoc);
  if (shutdown.ok()) return absl::OkStatus();  // SHUTDOWN_COMPLETE forgets the session
  // The association cannot shut down gracefully: the stack no longer has it (NOT_FOUND),
  // or refuses (an association already ending, a dead peer). Nothing more can be delivered
  // on it: abort what is left and let the session go now.
  if (!absl::IsNotFound(shutdown)) {
    LOG(WARNING) << "session " << session << ": association " << *s.assoc
                 << " cannot shut down (" << shutdown << "); aborting it";
  }
  AssociationGone(session, absl::InfinitePast(), /*ended=*/false, /*rotate=*/false);
  return absl::OkStatus();
}

size_t EdgeEngine::sessions_duplicating() const {
  return std::count_if(sessions_.begin(), sessions_.end(),
                       [](const auto& entry) { return entry.second.link->duplicating(); });
}

std::map<v1::RedundancyPolicy, size_t> EdgeEngine::sessions_by_redundancy() const {
  std::map<v1::RedundancyPolicy, size_t> out;
  for (const auto& [id, s] : sessions_) ++out[s.link->policy()];
  return out;
}

std::vector<uint64_t> EdgeEngine::Sessions() const {
  std::vector<uint64_t> out;
  for (const auto& [id, s] : sessions_) out.push_back(id);
  return out;
}

absl::StatusOr<v1::Session> EdgeEngine::Describe(uint64_t session) const {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  }
  const Session& s = it->second;
  v1::Session out;
  out.set_session_id(session);
  out.set_role(v1::ROLE_EDGE);
  out.set_generation(s.state.generation());
  out.set_server_id(options_.server_id);
  out.set_phase(s.releasing ? v1::SESSION_PHASE_RELEASING
                : !s.acked  ? v1::SESSION_PHASE_CONNECTING
                            : v1::SESSION_PHASE_SERVING);
  out.set_redundancy(s.link->policy());
  out.set_duplicating(s.link->duplicating());
  out.set_redundant_bytes(s.link->redundant_bytes());
  for (const auto& [fid, f] : s.flows) f.Describe(*out.add_flows());
  if (s.assoc) {
    if (absl::StatusOr<tv1::AssociationInfo> a = endpoint_.GetAssociation(*s.assoc); a.ok()) {
      *out.add_associations() = *a;
    }
  }
  return out;
}

}  // namespace smig::dataplane
