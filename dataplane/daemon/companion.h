// Companions: what a role runs beside its node once the node has started, like the
// vehicle's ProximityReporter. main starts them through the role's registry entry
// (RoleEntry::start_companions, role_registry.h) and destroys them before it stops the node:
//
//   SMIG_ASSIGN_OR_RETURN(std::unique_ptr<Companion> companions,
//                         entry->start_companions(config, *node));   // null: none
//   ...
//   companions.reset();   // stopped (joined) here
//   node->Stop(grace);
//
// A companion reaches the node through NodeApi, from its own threads. The node outlives it.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "smig/dataplane/v1/config.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace smig::dataplane {

// What companions may call on the running node, from any thread. DataplaneNode implements
// it; when a companion needs another of the node's calls, declare it here too.
class NodeApi {
 public:
  virtual ~NodeApi() = default;
  virtual proximity::v1::ProximityReport MeasureProximity(
      const std::vector<proximity::v1::Server>& servers) = 0;
};

// Runs beside the node; its destructor stops it.
class Companion {
 public:
  virtual ~Companion() = default;
};

// Starts a role's companions: null when the config asks for none; an error (INVALID_ARGUMENT
// for an incomplete config) stops the data plane from starting.
using CompanionStarter = absl::StatusOr<std::unique_ptr<Companion>> (*)(
    const v1::DataplaneConfig& config, NodeApi& node);

}  // namespace smig::dataplane
