// EdgeEngine: the edge side of the data plane. For each session it serves, it opens an
// association to the vehicle's radios, claims it with a HELLO, and once the vehicle
// answers, frames each flow's source chunks (stream flow_id + 1) with sequence numbers
// that continue the session's; by the session's redundancy policy, a RedundantLink sends
// them twice, on two paths, while that helps. It exports a session's state as a
// checkpoint the next edge can serve from, and releases a session with a graceful
// shutdown.
//
//   EdgeEngine edge(endpoint, {.server_id = "edge-a", .make_source = ...});
//   edge.Serve(state, absl::Now());                 // OpenSession / ImportState
//   while (running) {
//     edge.Handle(endpoint.Receive(edge.NextWait(absl::Now())), absl::Now());
//     edge.Pump(absl::Now());
//   }
//
// Not thread-safe: one loop owns it. `endpoint` must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dataplane/edge/edge_flow.h"
#include "dataplane/edge/redundant_link.h"
#include "dataplane/media/source.h"
#include "dataplane/media/udp_source.h"
#include "dataplane/protocol/frame.h"
#include "dataplane/protocol/hello.h"
#include "dataplane/transport/endpoint.h"
#include "smig/dataplane/v1/agent.pb.h"
#include "smig/dataplane/v1/session.pb.h"
#include "smig/dataplane/v1/wire.pb.h"

namespace smig::dataplane {

class EdgeEngine {
 public:
  using SourceFactory = std::function<absl::StatusOr<std::unique_ptr<media::Source>>(
      const v1::FlowState& flow, absl::Time now)>;
  struct Options {
    std::string server_id;
    SourceFactory make_source;
    // Told when the vehicle reports a newer generation contiguous: this edge may release.
    std::function<void(uint64_t session, uint64_t generation)> on_superseded;
    // A session's trouble worth an operator's eye, in words (the vehicle did not answer its
    // HELLO in time, ...); the session goes on trying. Unset: logged only.
    std::function<void(uint64_t session, const std::string& error)> on_error;
    // Frames kept per flow after sending, to export a checkpoint at the vehicle's position.
    size_t sent_history = 16384;
    // Sessions served at once; Serve() refuses more with RESOURCE_EXHAUSTED.
    size_t max_sessions = 256;
    // Standing live feeds by name (Source.live_feed). Pump reads them whether or not a
    // flow does, so each ring always holds the feed's recent datagrams.
    std::map<std::string, std::shared_ptr<media::UdpFeed>> live_feeds;
    // An association the vehicle has not answered this long after Connect (no ASSOC_UP,
    // or no HelloAck) is aborted and the session connects again, leading with the next
    // radio: a lost notification or an unanswered HELLO never leaves a session waiting.
    absl::Duration handshake_timeout = absl::Seconds(10);
    // How often each session asks the endpoint whether its association still exists. A
    // stack may drop an association without a notification that reaches the engine (seen
    // under overload); an idle session sends nothing that would fail, so it asks.
    absl::Duration liveness_interval = absl::Seconds(1);
    // A released session whose graceful shutdown has not completed this long (no
    // SHUTDOWN_COMPLETE) is aborted and forgotten.
    absl::Duration release_timeout = absl::Seconds(10);
    // What one flow may queue while its vehicle takes nothing (not connected, not
    // answering, a full send buffer). A time-driven source (a VOD file) is then not polled:
    // it waits and catches up, losing nothing. A live source must be read on: its oldest
    // queued frames are dropped (before they are numbered: the player skips ahead, with
    // no hole), counted, and reported through on_error once per episode.
    uint64_t max_queued_bytes = 16 << 20;
  };

  EdgeEngine(transport::Endpoint& endpoint, Options options);

  // Starts serving `state` from its checkpoint. ALREADY_EXISTS if the session is served
  // here, INVALID_ARGUMENT for a state without flows or vehicle addresses, FAILED_PRECONDITION
  // for another format_version, RESOURCE_EXHAUSTED at max_sessions, or the source's error.
  // A live_feed flow: NOT_FOUND if this edge does not ingest the feed, FAILED_PRECONDITION
  // if the checkpoint's datagrams are not (or not once) among its recent ones.
  absl::Status Serve(const v1::SessionState& state, absl::Time now);
  // A checkpoint at the vehicle's last reported position (or at what was sent, when the
  // vehicle has not reported yet). NOT_FOUND for an unknown session; FAILED_PRECONDITION
  // for a session that cannot move: a flow whose source says it cannot (Source::CanMove:
  // udp_listen, tcp_listen; only this edge receives it), or a live_feed flow before its
  // first frame (nothing to align on).
  absl::StatusOr<v1::SessionState> Export(uint64_t session, absl::Time now) const;
  // Graceful: queued frames are delivered, then the association shuts down. Succeeds for
  // every session served here: one without an association, or whose association cannot
  // shut down (gone at the stack, or the stack refuses), is aborted and forgotten at once;
  // a session already releasing is left to finish (at most release_timeout). NOT_FOUND
  // only for a session not served here (never, or no more).
  absl::Status Release(uint64_t session);

  void Handle(const absl::StatusOr<std::optional<transport::Incoming>>& in, absl::Time now);
  // Sends every chunk that is due.
  void Pump(absl::Time now);
  // How long the loop may wait before Pump has work (sources with a schedule).
  absl::Duration NextWait(absl::Time now) const;
  // Descriptors of live sources (UDP, TCP): the loop also wakes when one is readable, so a
  // live datagram is forwarded at once rather than at the next timer tick.
  std::vector<int> SourceFds() const;

  std::vector<uint64_t> Sessions() const;
  // True for an association this edge opened for a session.
  bool Carries(transport::AssocId assoc) const { return by_assoc_.contains(assoc); }
  absl::StatusOr<v1::Session> Describe(uint64_t session) const;
  uint64_t frames_sent() const { return counters_.frames_sent; }
  uint64_t bytes_sent() const { return counters_.bytes_sent; }
  uint64_t send_errors() const { return counters_.send_errors; }
  // Sends deferred because an association's send buffer was full (not errors: the frames
  // stay queued and go out once there is room).
  uint64_t send_deferrals() const { return counters_.send_deferrals; }
  // Frames not sent because the vehicle reported it already had them (from another edge):
  // a new edge starts at the player's position rather than at the older checkpoint.
  uint64_t frames_skipped() const { return counters_.frames_skipped; }
  // Frames sent again after a reconnect: the vehicle's HelloAck showed they were lost
  // with the previous association.
  uint64_t frames_resent() const { return counters_.frames_resent; }
  // Queued live frames dropped because their vehicle took nothing (max_queued_bytes).
  uint64_t queued_frames_dropped() const { return counters_.queued_frames_dropped; }
  // Media bytes sent as second copies on another path (redundancy's cost), all sessions.
  uint64_t redundant_bytes() const { return counters_.redundant_bytes; }
  // Sessions sending two copies right now, and sessions by redundancy policy (as applied).
  size_t sessions_duplicating() const;
  std::map<v1::RedundancyPolicy, size_t> sessions_by_redundancy() const;
  size_t max_sessions() const { return options_.max_sessions; }
  const std::map<std::string, std::shared_ptr<media::UdpFeed>>& live_feeds() const {
    return options_.live_feeds;
  }

 private:
  struct Session {
    v1::SessionState state;
    std::optional<transport::AssocId> assoc;
    // Signs with the session key of state.generation (state.session_key).
    std::optional<HelloAuthenticator> auth;
    v1::Hello hello;        // the last HELLO sent: its answer must be for it
    bool acked = false;     // the vehicle accepted our HELLO (and proved it holds the key)
    // Its HelloAck asked for an EdgePosition, not sent yet (the send buffer was full).
    bool position_due = false;
    bool releasing = false;
    absl::Time release_deadline = absl::InfiniteFuture();  // set by the first Pump after Release
    absl::Time connected_at = absl::InfinitePast();   // when Connect returned `assoc`
    // The last sign of life of `assoc`: its ASSOC_UP, or a message from the vehicle on it
    // (a vehicle reports progress every 100 ms). Pump checks an association that has been
    // silent for liveness_interval, and again every liveness_interval.
    absl::Time last_heard = absl::InfinitePast();
    // The send buffer was full: retry then instead of spinning (sends never block the loop,
    // so one slow vehicle cannot stall the other sessions).
    absl::Time retry_send_at = absl::InfinitePast();
    absl::Time next_connect = absl::InfinitePast();
    std::map<uint32_t, EdgeFlow> flows;
    std::unique_ptr<RedundantLink> link;  // DATA goes out through it
  };

  // The source of one flow: a cursor on a standing feed (aligned on the checkpoint) or
  // what options_.make_source makes.
  absl::StatusOr<std::unique_ptr<media::Source>> OpenSource(const v1::FlowState& fs,
                                                            absl::Time now) const;
  void OnControl(Session& s, const v1::ControlMessage& m, absl::Time now);
  // The session's association is gone: by an event, a send error (NOT_FOUND), a failed
  // check or a timeout. Forgets it (aborting it at the endpoint unless `ended`, i.e. the
  // stack already ended it, so that a reconnect to the same vehicle is not refused), and
  // has Pump connect again after a back-off; `rotate` leads with the next radio. A
  // releasing session is forgotten: true then (`s` is gone).
  bool AssociationGone(uint64_t session, absl::Time now, bool ended, bool rotate);
  // A send on the session's association failed with `st`: NOT_FOUND means the stack no
  // longer has it (AssociationGone). Counts the error; true if the association is gone.
  bool OnSendError(Session& s, const absl::Status& st, absl::Time now);
  // Where each flow goes on from: the next frame it will send, past what the vehicle has.
  static void FillPositions(const Session& s,
                            google::protobuf::RepeatedPtrField<v1::FlowPosition>* out);
  void SendPosition(Session& s, absl::Time now);
  void SendHello(Session& s, absl::Time now);
  // Sends the flow's queued frames, unless the send buffer was full a moment ago.
  void SendFrames(Session& s, EdgeFlow& f, absl::Time now);

  transport::Endpoint& endpoint_;
  Options options_;
  std::map<uint64_t, Session> sessions_;
  std::map<transport::AssocId, uint64_t> by_assoc_;
  const EdgeFlow::Opener open_source_;  // OpenSource, for flows that serve again
  EdgeCounters counters_;
};

}  // namespace smig::dataplane
