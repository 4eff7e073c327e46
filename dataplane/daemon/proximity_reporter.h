// ProximityReporter: the vehicle's side of the PMM. Every interval it asks the node to
// measure every server the PMM lists (SCTP's own srtt and path states over probe
// associations) and streams the result to the PMM's ReportProximity; it re-lists servers
// every few seconds and reconnects when the PMM goes away.
//
//   ProximityReporter reporter(*node, config.proximity());   // starts its thread
//   ...                                                        // destructor stops it
//
// The vehicle's companion (companion.h): main starts it through the role registry
// (VehicleRole::StartCompanions) when the config names a PMM.
//
// `node` (and `clock`, which paces the reports and the re-listing) must outlive it. The
// gRPC deadlines are in real time whatever the clock.
#pragma once

#include <atomic>
#include <thread>

#include "common/clock.h"
#include "dataplane/daemon/companion.h"
#include "smig/dataplane/v1/config.pb.h"

namespace smig::dataplane {

class ProximityReporter final : public Companion {
 public:
  ProximityReporter(NodeApi& node, v1::ProximityReporting config, Clock& clock = Clock::Real());
  ~ProximityReporter() override;

 private:
  void Run();

  NodeApi& node_;
  v1::ProximityReporting config_;
  Clock& clock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace smig::dataplane
