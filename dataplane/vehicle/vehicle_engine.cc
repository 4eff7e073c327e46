#include "dataplane/vehicle/vehicle_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

VehicleEngine::VehicleEngine(transport::Endpoint& endpoint, Options options)
    : endpoint_(endpoint), options_(std::move(options)) {}

absl::Status VehicleEngine::AdmitSession(uint64_t session, std::string key) {
  if (session == 0) return absl::InvalidArgumentError("session_id 0 is reserved");
  if (absl::Status s = CheckSessionKey(key, absl::StrCat("session ", session)); !s.ok()) {
    return s;
  }
  auto [it, fresh] = sessions_.try_emplace(session);
  if (!fresh) {
    if (it->second.admitted_key == key) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("session ", session, " was given to this vehicle with another key"));
  }
  it->second.admitted_key = key;
  it->second.key = std::move(key);
  return absl::OkStatus();
}

absl::StatusOr<HelloAuthenticator> VehicleEngine::KeyFor(const Session& s,
                                                         const v1::Hello& hello) const {
  if (hello.generation() < s.key_generation) {
    return absl::FailedPreconditionError("stale_generation");
  }
  if (hello.generation() - s.key_generation > kMaxGenerationsAhead) {
    return absl::PermissionDeniedError("bad_hello");
  }
  return HelloAuthenticator::Create(
      RatchetSessionKey(s.key, s.key_generation, hello.generation()));
}

void VehicleEngine::AdvanceKey(Session& s, uint64_t generation) {
  if (generation <= s.key_generation) return;
  s.key = RatchetSessionKey(std::move(s.key), s.key_generation, generation);
  s.key_generation = generation;
  s.nonces.erase(s.nonces.begin(), s.nonces.lower_bound(generation));
}

void VehicleEngine::Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in,
                           absl::Time now) {
  if (!in.ok()) {
    ++counters_.dropped["receive_error"];
  } else if (in->has_value()) {
    if (const auto* m = std::get_if<transport::Message>(&**in)) {
      OnMessage(*m, now);
    } else {
      OnEvent(std::get<tv1::Event>(**in));
    }
  }
  Tick(now);
}

void VehicleEngine::Drop(transport::AssocId assoc, absl::string_view reason, bool abort) {
  ++counters_.dropped[std::string(reason)];
  if (options_.on_drop) options_.on_drop(assoc, reason, abort);
  if (!abort) return;
  (void)endpoint_.Abort(assoc);
  ++counters_.associations_aborted;
  auto it = claims_.find(assoc);
  if (it != claims_.end()) {
    sessions_[it->second.session].assocs.erase(assoc);
    claims_.erase(it);
  }
}

void VehicleEngine::OnMessage(const transport::Message& m, absl::Time now) {
  absl::StatusOr<FrameView> frame = DecodeFrame(m.data);
  bool claimed = claims_.contains(m.assoc);
  if (!frame.ok()) {
    // Garbage before a HELLO means the association is not an smig edge at all.
    Drop(m.assoc, FrameErrorName(FrameErrorOf(frame.status()).value_or(FrameError::kTooShort)),
         !claimed);
    return;
  }
  if (frame->header.kind == FrameKind::kControl) {
    v1::ControlMessage control;
    if (m.stream != 0 || !control.ParseFromString(std::string(frame->payload))) {
      Drop(m.assoc, "bad_control", !claimed);
      return;
    }
    if (control.has_edge_position() && claimed) {
      const Claim& claim = claims_[m.assoc];
      if (control.edge_position().session_id() != claim.session) {
        Drop(m.assoc, "wrong_session", false);
        return;
      }
      Session& s = sessions_[claim.session];
      OnPositions(claim, s, control.edge_position().flows());
      CheckContiguous(claim.session, s, now);
      return;
    }
    if (!control.has_hello()) {
      Drop(m.assoc, "unexpected_control", !claimed);
      return;
    }
    if (claimed) {
      Drop(m.assoc, "duplicate_hello", false);
      return;
    }
    OnHello(m.assoc, control.hello(), now);
    return;
  }
  if (!claimed) {
    Drop(m.assoc, "no_hello", true);  // DATA before HELLO: never let it near the player
    return;
  }
  if (frame->header.session_id != claims_[m.assoc].session) {
    Drop(m.assoc, "wrong_session", false);
    return;
  }
  if (!CarriesFlow(m.stream, frame->header.flow_id)) {  // its data stream or its copy stream
    Drop(m.assoc, "wrong_stream", false);
    return;
  }
  OnData(m.assoc, *frame, now);
}

void VehicleEngine::OnHello(transport::AssocId assoc, const v1::Hello& hello, absl::Time now) {
  auto refuse = [&](absl::string_view reason) {
    ++counters_.hello_rejected;
    Drop(assoc, reason, true);
  };
  auto sit = sessions_.find(hello.session_id());
  if (sit == sessions_.end()) return refuse("unknown_session");  // no key: not ours
  Session& s = sit->second;
  absl::StatusOr<HelloAuthenticator> auth = KeyFor(s, hello);
  if (!auth.ok()) return refuse(auth.status().message());
  if (!auth->Verify(hello).ok()) return refuse("bad_hello");
  if (s.any_contiguous && hello.generation() < s.contiguous_generation) {
    return refuse("stale_generation");
  }
  // A HELLO is good for one association: a recorded one played again is not an edge.
  if (!s.nonces[hello.generation()].insert(hello.nonce()).second) {
    return refuse("replayed_hello");
  }
  for (const auto& [other, generation] : s.assocs) {
    if (generation == hello.generation()) {
      // Two edges claim the same session and generation: only one state can be current.
      return refuse("conflicting_claim");
    }
  }
  // A new generation is a migration starting: measure the player's pauses from here.
  for (auto& [id, flow] : s.flows) flow->reassembler.StartWindow();
  const Claim& claim = claims_[assoc] =
      Claim{hello.session_id(), hello.generation(), hello.server_id()};
  s.assocs[assoc] = hello.generation();
  OnPositions(claim, s, hello.positions());
  v1::ControlMessage ack;
  ack.mutable_hello_ack()->set_session_id(hello.session_id());
  ack.mutable_hello_ack()->set_accepts_edge_position(true);
  auth->SignAck(hello, *ack.mutable_hello_ack());
  FillProgress(hello.session_id(), s, ack.mutable_hello_ack()->mutable_flows());
  SendControl(assoc, hello.session_id(), ack);
  // On an idle session (a paused feed, a finished file) the edge's word alone confirms it:
  // waiting for media would keep it from ever moving.
  CheckContiguous(hello.session_id(), s, now);
}

VehicleEngine::Flow& VehicleEngine::FlowOf(Session& s, uint32_t flow_id) {
  std::unique_ptr<Flow>& flow = s.flows[flow_id];
  // Every flow starts at sequence 0: a session is opened before its first frame is sent.
  if (flow == nullptr) flow = std::make_unique<Flow>(options_.reassembly);
  return *flow;
}

void VehicleEngine::Cover(Flow& flow, uint64_t generation, uint64_t first, uint64_t end,
                          bool framed) {
  auto [cov, fresh] = flow.coverage.try_emplace(generation, Coverage{first, end, framed});
  if (!fresh) {
    cov->second.first = std::min(cov->second.first, first);
    cov->second.end = std::max(cov->second.end, end);
    cov->second.framed = cov->second.framed || framed;
  }
}

void VehicleEngine::OnPositions(const Claim& claim, Session& s,
                                const google::protobuf::RepeatedPtrField<v1::FlowPosition>& positions) {
  for (const v1::FlowPosition& p : positions) {
    if (p.flow_id() > 0xfffe) continue;  // no such flow can carry data
    // The edge goes on from p.next_sequence, in order on the flow's stream, skipping only
    // what the vehicle reported having: it covers [p, p) now, and its frames extend that.
    // Frames it sent before saying so are below p and were counted on arrival.
    Cover(FlowOf(s, p.flow_id()), claim.generation, p.next_sequence(), p.next_sequence(),
          /*framed=*/false);
  }
}

void VehicleEngine::OnData(transport::AssocId assoc, const FrameView& frame, absl::Time now) {
  const Claim& claim = claims_[assoc];
  Session& s = sessions_[claim.session];
  Flow* flow = &FlowOf(s, frame.header.flow_id);
  Cover(*flow, claim.generation, frame.header.sequence, frame.header.sequence + 1,
        /*framed=*/true);
  ready_.clear();
  flow->reassembler.Offer(frame.header.sequence, frame.payload, now, ready_);
  if (options_.deliver) {
    for (const std::string& payload : ready_) options_.deliver(claim.session, frame.header.flow_id, payload);
  }
  CheckContiguous(claim.session, s, now);
}

bool VehicleEngine::Idle(const Flow& flow, absl::Time now) const {
  const std::optional<absl::Time> last = flow.reassembler.last_delivery();
  return !last.has_value() || now - *last >= options_.idle_after;
}

void VehicleEngine::CheckContiguous(uint64_t session_id, Session& s, absl::Time now) {
  if (s.assocs.empty() || s.flows.empty()) return;
  uint64_t newest = 0;
  for (const auto& [assoc, generation] : s.assocs) newest = std::max(newest, generation);
  if (s.any_contiguous && s.contiguous_generation >= newest) return;
  // The newest generation is contiguous when, on every flow, it started at or before the
  // player's position (an association delivers in order, so its range has no holes) and
  // it is at most contiguity_lag_frames behind: from here on it alone can feed the player.
  // The allowance matters when the new edge is further away than the old one: its frames
  // then always arrive a little after the old edge's, and would never "catch up".
  // Where the edge said it goes on from counts as a start: on an idle flow, an edge at the
  // player's position is contiguous with no frame at all; one beyond it would leave a
  // hole, and is not (until the old edge has filled it). While media flows, the new edge's
  // own frames must have arrived: both edges send until then (make-before-break).
  uint64_t lag = 0;  // frames the new generation trails the player, on its worst flow
  for (const auto& [id, flow] : s.flows) {
    auto cov = flow->coverage.find(newest);
    uint64_t next = flow->reassembler.next_sequence();
    if (cov == flow->coverage.end() || cov->second.first > next ||
        next > cov->second.end + options_.contiguity_lag_frames ||
        (!cov->second.framed && !Idle(*flow, now))) {
      return;
    }
    if (cov->second.framed && next > cov->second.end) lag = std::max(lag, next - cov->second.end);
  }
  // Trailing: confirmed once it has caught up as far as it will (see contiguity_settle).
  if (lag > 0) {
    if (s.catching_generation != newest || lag < s.best_lag) {
      s.catching_generation = newest;
      s.best_lag = lag;
      s.best_lag_at = now;
    }
    if (now - s.best_lag_at < Settle(s, newest)) return;
  }
  s.any_contiguous = true;
  s.contiguous_generation = newest;
  AdvanceKey(s, newest);
  if (options_.on_contiguous) {
    absl::Duration stall = absl::ZeroDuration();
    for (const auto& [id, flow] : s.flows) stall = std::max(stall, flow->reassembler.window_max_gap());
    options_.on_contiguous(session_id, newest, stall);
  }
  v1::ControlMessage progress;
  progress.mutable_progress()->set_session_id(session_id);
  progress.mutable_progress()->set_contiguous(true);
  progress.mutable_progress()->set_contiguous_generation(newest);
  FillProgress(session_id, s, progress.mutable_progress()->mutable_flows());
  for (const auto& [assoc, generation] : s.assocs) SendControl(assoc, session_id, progress);
}

absl::Duration VehicleEngine::Settle(const Session& s, uint64_t generation) const {
  absl::Duration settle = options_.contiguity_settle;
  for (const auto& [assoc, g] : s.assocs) {
    if (g != generation) continue;
    absl::StatusOr<tv1::AssociationInfo> info = endpoint_.GetAssociation(assoc);
    if (!info.ok()) continue;
    for (const tv1::PathInfo& p : info->paths()) {
      if (p.state() == tv1::PATH_STATE_ACTIVE) {
        settle = std::max(settle, 2 * absl::Milliseconds(p.srtt_ms()));
      }
    }
  }
  return settle;
}

void VehicleEngine::OnEvent(const tv1::Event& e) {
  switch (e.type()) {
    case tv1::EVENT_TYPE_ASSOC_LOST:
    case tv1::EVENT_TYPE_ASSOC_CANT_START:
    case tv1::EVENT_TYPE_SHUTDOWN_COMPLETE: {
      auto it = claims_.find(e.assoc_id());
      if (it == claims_.end()) return;
      sessions_[it->second.session].assocs.erase(e.assoc_id());
      claims_.erase(it);
      return;
    }
    default:
      return;
  }
}

void VehicleEngine::FillProgress(uint64_t, const Session& s,
                                 google::protobuf::RepeatedPtrField<v1::FlowProgress>* out) const {
  for (const auto& [id, flow] : s.flows) {
    v1::FlowProgress* p = out->Add();
    p->set_flow_id(id);
    p->set_next_sequence(flow->reassembler.next_sequence());
    p->set_delivered_bytes(flow->reassembler.stats().delivered_bytes);
  }
}

void VehicleEngine::SendControl(transport::AssocId assoc, uint64_t session,
                                const v1::ControlMessage& m) {
  FrameHeader h{.kind = FrameKind::kControl, .flow_id = 0, .flags = 0, .session_id = session};
  absl::Status s = endpoint_.Send(assoc, {.stream = 0}, EncodeFrame(h, m.SerializeAsString()));
  if (!s.ok()) ++counters_.dropped["control_send_failed"];
}

void VehicleEngine::Tick(absl::Time now) {
  if (now < next_progress_) return;
  next_progress_ = now + options_.progress_interval;
  // A flow that went idle during a migration's overlap: the new edge's word now suffices.
  for (auto& [id, s] : sessions_) CheckContiguous(id, s, now);
  for (const auto& [id, s] : sessions_) {
    if (s.assocs.empty()) continue;
    v1::ControlMessage progress;
    progress.mutable_progress()->set_session_id(id);
    progress.mutable_progress()->set_contiguous(s.any_contiguous);
    progress.mutable_progress()->set_contiguous_generation(s.contiguous_generation);
    FillProgress(id, s, progress.mutable_progress()->mutable_flows());
    for (const auto& [assoc, generation] : s.assocs) SendControl(assoc, id, progress);
  }
}

std::vector<uint64_t> VehicleEngine::Sessions() const {
  std::vector<uint64_t> out;
  for (const auto& [id, s] : sessions_) out.push_back(id);
  return out;
}

std::map<uint32_t, VehicleEngine::FlowView> VehicleEngine::Flows(uint64_t session) const {
  std::map<uint32_t, FlowView> out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return out;
  for (const auto& [id, flow] : it->second.flows) {
    out[id] = FlowView{flow->reassembler.next_sequence(), flow->reassembler.stats(),
                       flow->reassembler.buffered_frames()};
  }
  return out;
}

std::vector<uint64_t> VehicleEngine::Generations(uint64_t session) const {
  std::vector<uint64_t> out;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return out;
  for (const auto& [assoc, generation] : it->second.assocs) out.push_back(generation);
  std::sort(out.begin(), out.end());
  return out;
}

std::string VehicleEngine::ServingServer() const {
  for (const auto& [id, s] : sessions_) {
    if (!s.any_contiguous) continue;
    // The newest generation at or below the contiguous one that an association still
    // carries: after a rollback released the confirmed new edge, the old edge serves on.
    const std::string* server = nullptr;
    uint64_t best = 0;
    for (const auto& [assoc, generation] : s.assocs) {
      if (generation <= s.contiguous_generation && (server == nullptr || generation > best)) {
        server = &claims_.at(assoc).server;
        best = generation;
      }
    }
    if (server != nullptr) return *server;
  }
  return "";
}

std::map<transport::AssocId, std::string> VehicleEngine::Servers() const {
  std::map<transport::AssocId, std::string> out;
  for (const auto& [assoc, claim] : claims_) out.emplace(assoc, claim.server);
  return out;
}

}  // namespace smig::dataplane
