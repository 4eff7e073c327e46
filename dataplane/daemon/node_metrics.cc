#include "dataplane/daemon/node_metrics.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;

namespace {
prometheus::Counter& UnlabeledCounter(prometheus::Registry& r, const std::string& name,
                                      const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
}  // namespace

NodeMetrics::NodeMetrics(prometheus::Registry& r, const std::string& role)
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
      queued_dropped(UnlabeledCounter(
          r, "smig_queued_frames_dropped_total",
          "Edge: live frames dropped from a flow's queue at max_queued_bytes because its "
          "vehicle took nothing (never numbered: the player skips ahead, with no hole).")),
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
                          .Register(r)),
      redundant_bytes(prometheus::BuildCounter()
                          .Name("smig_redundant_bytes_total")
                          .Help("Edge: media bytes sent a second time, on a second path of "
                                "the vehicle's association (redundant multipath): what "
                                "redundancy costs on the radios, SCTP overhead aside.")
                          .Register(r)
                          .Add({{"role", role}})),
      sessions_duplicating(prometheus::BuildGauge()
                               .Name("smig_sessions_duplicating")
                               .Help("Edge: sessions sending every frame on two paths now.")
                               .Register(r)
                               .Add({{"role", role}})),
      sessions_redundancy(prometheus::BuildGauge()
                              .Name("smig_sessions_redundancy")
                              .Help("Edge: sessions by redundancy policy (off, auto, always).")
                              .Register(r)),
      stack_events(prometheus::BuildCounter()
                       .Name("smig_sctp_recovery_events_total")
                       .Help("What the SCTP stack counted for all associations of this data "
                             "plane: t3_timeout (retransmission timer expiries), "
                             "fast_retransmit and retransmitted_chunk (DATA chunks sent "
                             "again).")
                       .Register(r)),
      fencing_token(prometheus::BuildGauge()
                        .Name("smig_agent_fencing_token")
                        .Help("The highest SMM fencing token (the leader key's etcd create "
                              "revision) this agent has accepted; 0 until a fenced call came.")
                        .Register(r)
                        .Add({})),
      fenced_requests(prometheus::BuildCounter()
                          .Name("smig_agent_fenced_requests_total")
                          .Help("Agent calls refused because their fencing token was older "
                                "than the highest accepted (a deposed SMM leader), by method.")
                          .Register(r)),
      t3_feed_(stack_events.Add({{"kind", "t3_timeout"}})),
      fast_retransmit_feed_(stack_events.Add({{"kind", "fast_retransmit"}})),
      retransmit_feed_(stack_events.Add({{"kind", "retransmitted_chunk"}})) {
  for (const char* kind : {"unreachable", "potentially_failed", "available", "primary_changed"}) {
    path_events.Add({{"kind", kind}});
  }
  for (const char* method : {"OpenSession", "ImportState", "ReleaseSession"}) {
    fenced_requests.Add({{"method", method}});
  }
}

void NodeMetrics::ExportTotals(uint64_t total_bytes, uint64_t total_frames, size_t sessions_now) {
  bytes_feed_.Update(total_bytes);
  frames_feed_.Update(total_frames);
  sessions.Set(static_cast<double>(sessions_now));
}

void NodeMetrics::ExportStack(tv1::StackKind stack) {
  absl::StatusOr<transport::StackCounters> c = transport::ReadStackCounters(stack);
  if (!c.ok()) return;
  t3_feed_.Update(c->t3_timeouts);
  fast_retransmit_feed_.Update(c->fast_retransmits);
  retransmit_feed_.Update(c->retransmitted_chunks);
}

void NodeMetrics::OnAssociationUp(const tv1::AssociationInfo& info) {
  for (const tv1::PathInfo& p : info.paths()) {
    if (p.state() == tv1::PATH_STATE_ACTIVE) {
      path_state_[{info.assoc_id(), p.address()}] = tv1::EVENT_TYPE_PATH_AVAILABLE;
    }
  }
}

void NodeMetrics::CountPathEvent(const tv1::Event& e,
                                 absl::FunctionRef<bool(transport::AssocId)> carries) {
  const char* kind = nullptr;
  switch (e.type()) {
    case tv1::EVENT_TYPE_PATH_UNREACHABLE: kind = "unreachable"; break;
    case tv1::EVENT_TYPE_PATH_POTENTIALLY_FAILED: kind = "potentially_failed"; break;
    case tv1::EVENT_TYPE_PATH_AVAILABLE: kind = "available"; break;
    case tv1::EVENT_TYPE_PRIMARY_CHANGED: kind = "primary_changed"; break;
    case tv1::EVENT_TYPE_ASSOC_LOST:
    case tv1::EVENT_TYPE_SHUTDOWN_COMPLETE:
      std::erase_if(path_state_, [&](const auto& entry) { return entry.first.first == e.assoc_id(); });
      return;
    default: return;
  }
  path_events.Add({{"kind", kind}}).Increment();
  // Failovers are of paths that carry a session; a probe's dead radio moves no traffic.
  if (e.type() == tv1::EVENT_TYPE_PRIMARY_CHANGED || !carries(e.assoc_id())) return;
  tv1::EventType& last = path_state_[{e.assoc_id(), e.address()}];
  bool was_up = last == tv1::EVENT_TYPE_PATH_AVAILABLE;
  if (was_up && e.type() != tv1::EVENT_TYPE_PATH_AVAILABLE) failovers.Increment();
  last = e.type();
}

}  // namespace smig::dataplane
