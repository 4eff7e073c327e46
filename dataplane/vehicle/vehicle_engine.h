// VehicleEngine: the vehicle side of the data plane, over one transport::Endpoint that the
// edges connect to. It
//  - accepts the sessions it is given (AdmitSession: the session key), checks each
//    association's HELLO with that session's key of the HELLO's generation, answers with a
//    HelloAck that proves it holds the key, and binds the association to one session and
//    generation, aborting associations whose HELLO is wrong, replayed, missing, for a
//    session it was not given, or conflicting;
//  - drops and counts frames that fail validation, so nothing from them reaches the player;
//  - merges every association's DATA frames per flow through a FlowReassembler and hands
//    each payload to `deliver` exactly once, in order;
//  - answers HELLOs with the player's position, reports Progress, and says when the newest
//    generation's association carries every flow contiguously (make-before-break).
//
//   VehicleEngine engine(endpoint, {.deliver = [&](uint64_t s, uint32_t f,
//                                                  absl::string_view data) {...}});
//   engine.AdmitSession(session_id, key);   // the key its creator got from the SMM
//   while (running) engine.Handle(endpoint.Receive(absl::Milliseconds(10)), absl::Now());
//
// Not thread-safe: one loop owns it. `endpoint` must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "dataplane/protocol/frame.h"
#include "dataplane/protocol/hello.h"
#include "dataplane/transport/endpoint.h"
#include "dataplane/vehicle/reassembler.h"
#include "smig/dataplane/v1/wire.pb.h"

namespace smig::dataplane {

class VehicleEngine {
 public:
  struct Options {
    // Receives each flow's payloads exactly once, in order.
    std::function<void(uint64_t session, uint32_t flow, absl::string_view data)> deliver;
    // Told of every refused frame or association, with its reason (the label of
    // smig_frames_dropped_total) and whether the association was aborted for it.
    std::function<void(transport::AssocId assoc, absl::string_view reason, bool aborted)> on_drop;
    // Told when a generation's association becomes contiguous for every flow, with the
    // largest delivery pause any flow saw since that generation's HELLO (its migration's
    // stall; for the first generation, since the session began).
    std::function<void(uint64_t session, uint64_t generation, absl::Duration stall)> on_contiguous;
    FlowReassembler::Options reassembly;
    absl::Duration progress_interval = absl::Milliseconds(100);
    // How far (in frames) a new generation may trail the player and still count as
    // contiguous: the player's pause at cut-over is at most about this much of the stream
    // (16 frames of 1316 bytes: 84 ms at 2 Mbit/s).
    uint64_t contiguity_lag_frames = 16;
    // While it trails at all, it is confirmed only once its lag has stopped shrinking for
    // this long, or for twice the new association's srtt if that is longer: a new edge
    // catching up (its association still in slow start) would otherwise be confirmed,
    // and the old edge released, with the player up to contiguity_lag_frames ahead of it
    // (a 96 ms stall measured on 40-75 ms cell paths). One that is simply further away
    // settles at its distance and is then confirmed.
    absl::Duration contiguity_settle = absl::Milliseconds(100);
    // A flow is idle when it has delivered nothing for this long (or never): then a new
    // edge's stated position alone can confirm it. While media flows, the new edge's own
    // frames must arrive first, so old and new edge overlap (make-before-break).
    absl::Duration idle_after = absl::Milliseconds(200);
  };
  // Every reason Counters::dropped may hold (FrameErrorName()s included), so that the
  // metric can show each at zero before it first happens.
  static constexpr const char* kDropReasons[] = {
      "too_short", "bad_magic", "bad_version", "bad_kind", "bad_length", "bad_control",
      "unexpected_control", "duplicate_hello", "no_hello", "wrong_session", "wrong_stream",
      "bad_hello", "stale_generation", "conflicting_claim", "control_send_failed",
      "unknown_session", "replayed_hello"};
  // How many generations past the last confirmed one a HELLO may claim: each costs one
  // HMAC to check, and a forged claim must stay cheap to refuse.
  static constexpr uint64_t kMaxGenerationsAhead = 1024;
  // Why frames or associations were refused; the names label smig_frames_dropped_total.
  struct Counters {
    std::map<std::string, uint64_t> dropped;  // reason -> frames
    uint64_t hello_rejected = 0;
    uint64_t associations_aborted = 0;
  };
  struct FlowView {
    uint64_t next_sequence = 0;
    FlowReassembler::Stats stats;
    size_t buffered_frames = 0;
  };

  VehicleEngine(transport::Endpoint& endpoint, Options options);

  // Accepts `session`'s edges from now on: `key` is its session key of generation 1
  // (kSessionKeySize bytes; INVALID_ARGUMENT otherwise). Again with the same key: OK;
  // with another: ALREADY_EXISTS.
  absl::Status AdmitSession(uint64_t session, std::string key);

  // Feeds what Endpoint::Receive() returned (messages, events, or nothing).
  void Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in, absl::Time now);
  // Periodic work: progress reports. Handle() calls it too.
  void Tick(absl::Time now);

  const Counters& counters() const { return counters_; }
  // The sessions admitted (with or without an association).
  std::vector<uint64_t> Sessions() const;
  std::map<uint32_t, FlowView> Flows(uint64_t session) const;
  // The generations that have a live association, per session.
  std::vector<uint64_t> Generations(uint64_t session) const;
  // The edge server id each authenticated association's HELLO named.
  std::map<transport::AssocId, std::string> Servers() const;
  // True for an association that an edge's HELLO bound to a session (not a probe).
  bool Carries(transport::AssocId assoc) const { return claims_.contains(assoc); }
  // The server whose association carries the newest contiguous generation of a session
  // (the lowest session id, if several): the one the player depends on now; if that
  // association has gone (a migration rolled back after the vehicle confirmed its target),
  // the one with the newest older generation. "" if none.
  std::string ServingServer() const;

 private:
  struct Claim {  // what an association's HELLO bound it to
    uint64_t session = 0;
    uint64_t generation = 0;
    std::string server;
  };
  // The sequence numbers one generation covers on a flow: [first, end). Its frames
  // extend it, and so does the edge's stated position (Hello.positions, EdgePosition): an
  // edge at position p goes on from p, so it covers [p, p) even before any frame follows.
  struct Coverage {
    uint64_t first = 0;
    uint64_t end = 0;
    bool framed = false;  // a data frame of this generation arrived on the flow
  };
  struct Flow {
    explicit Flow(const FlowReassembler::Options& o) : reassembler(o) {}
    FlowReassembler reassembler;
    std::map<uint64_t, Coverage> coverage;  // generation -> range
  };
  struct Session {
    // The key as admitted (generation 1), and the key of key_generation: the newest
    // generation confirmed contiguous. HELLOs of older generations are refused; newer ones
    // are checked with the key ratcheted forward. So the old and the new edge of a
    // migration are both accepted during its overlap, and the old one no more after it.
    std::string admitted_key;
    std::string key;
    uint64_t key_generation = 1;
    std::map<uint64_t, std::set<std::string>> nonces;  // generation -> HELLO nonces seen
    std::map<uint32_t, std::unique_ptr<Flow>> flows;
    std::map<transport::AssocId, uint64_t> assocs;  // association -> generation
    uint64_t contiguous_generation = 0;
    bool any_contiguous = false;
    // The newest generation's catching up: its smallest lag (frames behind the player on
    // its worst flow) so far, and when that was reached.
    uint64_t catching_generation = 0;
    uint64_t best_lag = 0;
    absl::Time best_lag_at;
  };

  void OnMessage(const transport::Message& m, absl::Time now);
  void OnEvent(const transport::v1::Event& e);
  void OnHello(transport::AssocId assoc, const v1::Hello& hello, absl::Time now);
  void OnData(transport::AssocId assoc, const FrameView& frame, absl::Time now);
  // An edge's statement of where it goes on from (HELLO or EdgePosition).
  void OnPositions(const Claim& claim, Session& s,
                   const google::protobuf::RepeatedPtrField<v1::FlowPosition>& positions);
  Flow& FlowOf(Session& s, uint32_t flow_id);
  static void Cover(Flow& flow, uint64_t generation, uint64_t first, uint64_t end, bool framed);
  void Drop(transport::AssocId assoc, absl::string_view reason, bool abort);
  void SendControl(transport::AssocId assoc, uint64_t session, const v1::ControlMessage& m);
  void FillProgress(uint64_t session_id, const Session& s,
                    google::protobuf::RepeatedPtrField<v1::FlowProgress>* out) const;
  void CheckContiguous(uint64_t session_id, Session& s, absl::Time now);
  bool Idle(const Flow& flow, absl::Time now) const;
  // contiguity_settle, or twice the largest srtt of the generation's association.
  absl::Duration Settle(const Session& s, uint64_t generation) const;

  // A HELLO's authenticator: its session's key ratcheted to its generation; the drop
  // reason if it cannot be checked.
  absl::StatusOr<HelloAuthenticator> KeyFor(const Session& s, const v1::Hello& hello) const;
  // The newest generation is confirmed: its key becomes the base, older nonces go.
  static void AdvanceKey(Session& s, uint64_t generation);

  transport::Endpoint& endpoint_;
  Options options_;
  Counters counters_;
  std::map<transport::AssocId, Claim> claims_;
  std::map<uint64_t, Session> sessions_;
  absl::Time next_progress_ = absl::InfinitePast();
  std::vector<std::string> ready_;  // scratch for delivered payloads
};

}  // namespace smig::dataplane
