// NodeMetrics: the Prometheus series of one data plane. The engines keep cumulative
// counts; the node's loop asks its role every few hundred ms to export them, and the role
// adds the difference to these series.
//
//   NodeMetrics metrics(*registry, "vehicle");            // registers every family
//   metrics.ExportTotals(bytes, frames, sessions);         // what every role counts
//   metrics.CountPathEvent(event, [&](transport::AssocId a) { return role.Carries(a); });
//   CounterFeed skipped(metrics.skipped);                  // a role's own counter
//   skipped.Update(engine.frames_skipped());               // adds what grew
//
// Every family is registered on every data plane, whatever its role, so each node's page
// lists the same names (a series a role never counts stays at 0). The series only one
// role feeds (capacity, live feeds, drop reasons, per-path gauges) are added and updated
// by that role (edge_role.cc, vehicle_role.cc).
//
// Ownership: the series live in `registry`, which must outlive this object. Not
// thread-safe: the node's loop updates it (prometheus-cpp makes scraping safe).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "dataplane/transport/endpoint.h"
#include "dataplane/transport/stack_counters.h"

namespace smig::dataplane {

// A counter fed from a cumulative total: Update adds only what grew since the last call.
class CounterFeed {
 public:
  explicit CounterFeed(prometheus::Counter& counter) : counter_(&counter) {}
  void Update(uint64_t total) {
    if (total > seen_) counter_->Increment(static_cast<double>(total - seen_));
    seen_ = std::max(seen_, total);
  }

 private:
  prometheus::Counter* counter_;
  uint64_t seen_ = 0;
};

class NodeMetrics {
 public:
  // `role` labels the series both roles count (bytes, frames, sessions, failovers).
  NodeMetrics(prometheus::Registry& registry, const std::string& role);

  // The role's cumulative media bytes and frames (sent or delivered), and its sessions now.
  void ExportTotals(uint64_t total_bytes, uint64_t total_frames, size_t sessions_now);
  // Records which paths of a new association are up (confirmed by its handshake or a
  // heartbeat); the others were never up, and losing one is no failover.
  void OnAssociationUp(const transport::v1::AssociationInfo& info);
  // Counts a path state change by kind, and a failover when a path that was up, of an
  // association that `carries` a session, stops carrying traffic (once, for PF then
  // unreachable).
  void CountPathEvent(const transport::v1::Event& e,
                      absl::FunctionRef<bool(transport::AssocId)> carries);
  // The SCTP stack's own loss-recovery counters (transport/stack_counters.h), if it has any.
  void ExportStack(transport::v1::StackKind stack);

  // Every series, in registration order (the order of the page). bytes, frames,
  // sessions, path_events and failovers are fed through the two calls above; roles feed
  // the others directly.
  prometheus::Counter& bytes;
  prometheus::Counter& frames;
  prometheus::Family<prometheus::Counter>& dropped;  // {reason}
  prometheus::Counter& duplicates;
  prometheus::Counter& send_errors;
  prometheus::Counter& send_deferrals;
  prometheus::Counter& skipped;
  prometheus::Counter& resent;
  prometheus::Counter& queued_dropped;
  prometheus::Gauge& sessions;
  prometheus::Histogram& migration_stall;
  prometheus::Family<prometheus::Counter>& path_events;  // {kind}
  prometheus::Counter& failovers;
  prometheus::Family<prometheus::Gauge>& capacity;
  prometheus::Family<prometheus::Gauge>& path_srtt;  // {server, peer}
  prometheus::Family<prometheus::Gauge>& path_up;    // {server, peer}
  prometheus::Family<prometheus::Counter>& live_feed_bytes;  // {feed}
  // Redundant multipath (edge): second copies' media bytes, sessions sending two copies
  // now, and sessions by policy.
  prometheus::Counter& redundant_bytes;
  prometheus::Gauge& sessions_duplicating;
  prometheus::Family<prometheus::Gauge>& sessions_redundancy;  // {policy}
  prometheus::Family<prometheus::Counter>& stack_events;     // {kind}
  // SMM leader fencing (fencing.h): the highest token the agent has accepted, and the
  // calls it refused because their token was older, by agent method (OpenSession,
  // ImportState, ReleaseSession; each registered at 0).
  prometheus::Gauge& fencing_token;
  prometheus::Family<prometheus::Counter>& fenced_requests;  // {method}

 private:
  CounterFeed bytes_feed_{bytes}, frames_feed_{frames};
  CounterFeed t3_feed_, fast_retransmit_feed_, retransmit_feed_;
  // The last state each path reported, to count a failover once (PF then unreachable).
  std::map<std::pair<transport::AssocId, std::string>, transport::v1::EventType> path_state_;
};

}  // namespace smig::dataplane
