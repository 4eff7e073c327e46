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
// Frames before a live flow's checkpoint whose fingerprints the next edge looks for.
constexpr size_t kAlignFrames = 32;
}  // namespace

EdgeEngine::EdgeEngine(transport::Endpoint& endpoint, Options options)
    : endpoint_(endpoint), options_(std::move(options)) {}

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
    Flow& f = s.flows[fs.flow_id()];
    f.state = fs;
    f.source = std::move(source);
    f.vehicle_next = fs.next_sequence();
    f.fingerprints.assign(fs.last_frame_fingerprints().begin(),
                          fs.last_frame_fingerprints().end());
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
  ++send_errors_;
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
    // A new association's HELLO answer: what went out on a lost one may never have
    // arrived. Send again from where the player is.
    if (m.has_hello_ack() && p.next_sequence() < f->second.state.next_sequence()) {
      Rewind(f->second, p.next_sequence(), now);
    }
    f->second.vehicle_next = p.next_sequence();
    f->second.vehicle_reported = true;
  }
}

void EdgeEngine::FillPositions(const Session& s,
                               google::protobuf::RepeatedPtrField<v1::FlowPosition>* out) {
  for (const auto& [fid, f] : s.flows) {
    v1::FlowPosition* p = out->Add();
    p->set_flow_id(fid);
    // SendFrames skips every frame below what the vehicle reported having, so the next
    // frame on the wire is at least that far, whether or not the source has one due.
    p->set_next_sequence(f.vehicle_reported ? std::max(f.state.next_sequence(), f.vehicle_next)
                                            : f.state.next_sequence());
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
    ++send_deferrals_;
    s.retry_send_at = now + kFullBufferRetry;
    return;
  }
  if (!st.ok() && OnSendError(s, st, now)) return;
  s.position_due = false;
}

void EdgeEngine::SendFrames(Session& s, Flow& f, absl::Time now) {
  while (!f.pending.empty()) {
    const media::Chunk& c = f.pending.front().chunk;
    if (f.vehicle_reported && f.state.next_sequence() < f.vehicle_next) {
      // The vehicle already has this frame (another edge sent it): numbered, not sent. A
      // new edge thus starts at the player's position, not at the older checkpoint.
      Advance(f, c, f.pending.front().at);
      ++frames_skipped_;
      f.pending.pop_front();
      continue;
    }
    FrameHeader h{.kind = FrameKind::kData,
                  .flow_id = static_cast<uint16_t>(f.state.flow_id()),
                  .flags = static_cast<uint16_t>(c.end_of_flow ? kFlagEndOfFlow : 0),
                  .session_id = s.state.session_id(),
                  .sequence = f.state.next_sequence(),
                  .source_offset = c.offset};
    const uint64_t copied = s.link->redundant_bytes();
    absl::Status st = s.link->SendData(h.flow_id, EncodeFrame(h, c.data), c.data.size());
    redundant_bytes_ += s.link->redundant_bytes() - copied;
    if (absl::IsUnavailable(st)) {  // full send buffer: stays queued
      ++send_deferrals_;
      s.retry_send_at = now + kFullBufferRetry;
      return;
    }
    if (!st.ok()) {
      // Stays queued: retried on the next Pump, or sent on the next association (which
      // serves again from the vehicle's position anyway).
      OnSendError(s, st, now);
      return;
    }
    Advance(f, c, f.pending.front().at);
    ++f.frames;
    f.bytes += c.data.size();
    ++frames_sent_;
    bytes_sent_ += c.data.size();
    f.pending.pop_front();
  }
  f.dropping = false;  // the vehicle took every queued frame
}

void EdgeEngine::Advance(Flow& f, const media::Chunk& c, absl::Time due) {
  f.history.push_back({f.state.next_sequence(), c.offset, due});
  if (f.history.size() > options_.sent_history) f.history.pop_front();
  if (c.fingerprint != 0) {
    f.fingerprints.push_back(c.fingerprint);
    if (f.fingerprints.size() > options_.sent_history) f.fingerprints.pop_front();
  }
  f.state.set_next_sequence(f.state.next_sequence() + 1);
  f.state.set_source_offset(c.offset + c.data.size());
}

void EdgeEngine::Pump(absl::Time now) {
  for (auto& [name, feed] : options_.live_feeds) {
    if (!feed->Drain().ok()) ++send_errors_;
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
      Collect(id, f, now);
      if (s.assoc && s.acked && now >= s.retry_send_at) SendFrames(s, f, now);
    }
    // After the frames that were due: they moved each flow past what the vehicle has.
    if (s.position_due && s.assoc && s.acked && now >= s.retry_send_at) SendPosition(s, now);
  }
}

void EdgeEngine::Collect(uint64_t session, Flow& f, absl::Time now) {
  if (Held(f)) return;
  scratch_.clear();
  if (absl::Status st = f.source->Poll(now, scratch_); !st.ok()) ++send_errors_;
  for (media::Chunk& c : scratch_) f.pending.Push(std::move(c), now);
  if (f.source->fd() < 0) return;  // time-driven: held above once full
  auto [frames, bytes] = f.pending.DropOldestOver(options_.max_queued_bytes);
  if (frames == 0) return;
  f.dropped += frames;
  queued_frames_dropped_ += frames;
  if (f.dropping) return;
  f.dropping = true;
  const std::string error = absl::StrCat(
      "flow ", f.state.flow_id(), ": the vehicle takes nothing and ", f.pending.bytes(),
      " bytes of live media are queued (max_queued_bytes ", options_.max_queued_bytes,
      "): dropping the oldest (", bytes, " bytes so far) until it takes frames again");
  LOG(WARNING) << "session " << session << ": " << error;
  if (options_.on_error) options_.on_error(session, error);
}

absl::Duration EdgeEngine::NextWait(absl::Time now) const {
  absl::Duration wait = kMaxWait;
  for (const auto& [id, s] : sessions_) {
    for (const auto& [fid, f] : s.flows) {
      if (!f.pending.empty() && s.acked) {
        wait = std::min(wait, std::max(absl::ZeroDuration(), s.retry_send_at - now));
      }
      if (!Held(f)) wait = std::min(wait, std::max(absl::ZeroDuration(), f.source->NextDue() - now));
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
      const int fd = f.source->fd();
      if (fd >= 0 && std::find(fds.begin(), fds.begin() + feeds, fd) == fds.begin() + feeds) {
        fds.push_back(fd);
      }
    }
  }
  return fds;
}

absl::StatusOr<v1::FlowState> EdgeEngine::Checkpoint(const Flow& f, uint64_t want,
                                                     absl::Time now) const {
  v1::FlowState fs = f.state;
  // At `want` when this edge still knows where that frame was; otherwise at the oldest
  // frame it remembers (duplicates, never holes).
  if (want >= f.state.next_sequence() || f.history.empty()) {
    *fs.mutable_checkpoint_due_at() = ToProtoTimestamp(now);
  } else {
    // The newest sent frame at or before `want` (history is in sequence order).
    auto after = std::upper_bound(
        f.history.begin(), f.history.end(), want,
        [](uint64_t seq, const Sent& sent) { return seq < sent.sequence; });
    const Sent* at = after == f.history.begin() ? &f.history.front() : &*std::prev(after);
    fs.set_next_sequence(at->sequence);
    fs.set_source_offset(at->offset);
    *fs.mutable_checkpoint_due_at() = ToProtoTimestamp(at->due);
  }
  fs.clear_last_frame_fingerprints();
  if (!f.source->ResumesByFingerprint()) return fs;
  // The fingerprints of the kAlignFrames frames before the checkpoint, as far as known.
  const uint64_t checkpoint = fs.next_sequence();
  const uint64_t first = f.state.next_sequence() - f.fingerprints.size();
  for (uint64_t seq = std::max(first, checkpoint - std::min(checkpoint, kAlignFrames));
       seq < checkpoint; ++seq) {
    fs.add_last_frame_fingerprints(f.fingerprints[seq - first]);
  }
  if (fs.last_frame_fingerprints().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "flow ", fs.flow_id(), " of live feed '", fs.source().live_feed(),
        "' has no frame before its checkpoint to find it by"));
  }
  return fs;
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
    if (!f.source->CanMove()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", session, " cannot move: flow ", fid, " reads ",
          media::DescribeSource(f.state.source()),
          ", which only this edge receives (a live stream that can move is a live_feed every "
          "edge ingests)"));
    }
    // Where the player is, when the vehicle said so.
    absl::StatusOr<v1::FlowState> fs =
        Checkpoint(f, f.vehicle_reported ? f.vehicle_next : f.state.next_sequence(), now);
    if (!fs.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("session ", session, " cannot move yet: ", fs.status().message()));
    }
    *out.add_flows() = *std::move(fs);
  }
  return out;
}

void EdgeEngine::Rewind(Flow& f, uint64_t want, absl::Time now) {
  // A source that cannot serve again goes on (the vehicle counts the hole).
  if (!f.source->CanResume()) return;
  if (f.history.empty() || want >= f.state.next_sequence()) return;
  // The newest sent frame at or before `want` (history is in sequence order), or the
  // oldest one remembered (duplicates, never holes, as far as history reaches).
  auto after = std::upper_bound(
      f.history.begin(), f.history.end(), want,
      [](uint64_t seq, const Sent& sent) { return seq < sent.sequence; });
  const Sent at = after == f.history.begin() ? f.history.front() : *std::prev(after);
  if (at.sequence >= f.state.next_sequence()) return;
  // On the same source where it can (a UDP feed of the flow's own: no second socket can
  // bind its port, but its ring still holds the datagrams), else on a new one opened at
  // the checkpoint (a file, a cursor on a standing feed).
  absl::Status in_place = f.source->SeekTo(at.offset);
  if (absl::IsUnimplemented(in_place)) {
    absl::StatusOr<v1::FlowState> fs = Checkpoint(f, want, now);
    absl::StatusOr<std::unique_ptr<media::Source>> source =
        fs.ok() ? OpenSource(*fs, now) : fs.status();
    in_place = source.status();
    if (source.ok()) f.source = std::move(*source);
  }
  if (!in_place.ok()) {
    ++send_errors_;
    LOG(WARNING) << "flow " << f.state.flow_id() << ": cannot serve again from sequence "
                 << at.sequence << " (" << in_place << "); going on from "
                 << f.state.next_sequence();
    return;
  }
  const uint64_t again = f.state.next_sequence() - at.sequence;
  while (!f.history.empty() && f.history.back().sequence >= at.sequence) f.history.pop_back();
  f.fingerprints.resize(f.fingerprints.size() - std::min<size_t>(again, f.fingerprints.size()));
  f.pending.clear();
  f.state.set_next_sequence(at.sequence);
  f.state.set_source_offset(at.offset);
  *f.state.mutable_checkpoint_due_at() = ToProtoTimestamp(at.due);
  f.state.clear_last_frame_fingerprints();
  frames_resent_ += again;
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
  for (const auto& [fid, f] : s.flows) {
    v1::FlowStatus* fl = out.add_flows();
    fl->set_flow_id(fid);
    fl->set_next_sequence(f.state.next_sequence());
    fl->set_source_offset(f.state.source_offset());
    fl->set_frames(f.frames);
    fl->set_bytes(f.bytes);
    fl->set_queued_frames(f.pending.size());
    fl->set_queued_bytes(f.pending.bytes());
    fl->set_queued_frames_dropped(f.dropped);
  }
  if (s.assoc) {
    if (absl::StatusOr<tv1::AssociationInfo> a = endpoint_.GetAssociation(*s.assoc); a.ok()) {
      *out.add_associations() = *a;
    }
  }
  return out;
}

}  // namespace smig::dataplane
