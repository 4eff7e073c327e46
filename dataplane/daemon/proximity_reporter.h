// ProximityReporter: the vehicle's side of the PMM. Every interval it asks the node to
// measure every server the PMM lists (SCTP's own srtt and path states over probe
// associations) and streams the result to the PMM's ReportProximity; it re-lists servers
// every few seconds and reconnects when the PMM goes away.
//
//   ProximityReporter reporter(*node, config.proximity());   // starts its thread
//   ...                                                        // destructor stops it
//
// `node` (and `clock`, which paces the reports and the re-listing) must outlive it. The
// gRPC deadlines are in real time whatever the clock.
#pragma once

#include <atomic>
#include <thread>

#include "common/clock.h"
#include "dataplane/daemon/node.h"
#include "smig/dataplane/v1/config.pb.h"

namespace smig::dataplane {

class ProximityReporter {
 public:
  ProximityReporter(DataplaneNode& node, v1::ProximityReporting config,
                    Clock& clock = Clock::Real());
  ~ProximityReporter();

 private:
  void Run();

  DataplaneNode& node_;
  v1::ProximityReporting config_;
  Clock& clock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace smig::dataplane
