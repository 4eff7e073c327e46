// The roles a data plane can take, by config.role(): the one place where each is
// registered, with its name (--role's value, the metrics' "role" label), its factory, and
// what main sets up around its node: whether the node's endpoint listens, the role's
// other endpoints, the companions that run beside the node (companion.h).
//
//   SMIG_ASSIGN_OR_RETURN(const RoleEntry* entry, GetRole(config.role()));
//   // main, before the node starts:
//   options.listen = entry->listens;   // the node's endpoint
//   if (entry->open_endpoints) SMIG_RETURN_IF_ERROR(entry->open_endpoints(config, options,
//                                                                         open, deps));
//   // DataplaneNode::Start:
//   SMIG_ASSIGN_OR_RETURN(std::unique_ptr<Role> role, entry->make(std::move(env), deps));
//   // main, once the node runs (companions are destroyed before the node stops):
//   if (entry->start_companions) {
//     SMIG_ASSIGN_OR_RETURN(companions, entry->start_companions(config, *node));
//   }
//
// Adding a role (say, a fleet host running many simulated vehicles): write a class that
// implements Role (role.h) with a static Create (and, if it needs them, a static
// EndpointsOpener and CompanionStarter), give it a value in v1::Role
// (proto/smig/dataplane/v1/agent.proto), and add one entry to kRoles in role_registry.cc.
// Neither the loop (node.cc) nor main.cc changes: neither names a role.
//
// The table is static and immutable: safe from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/daemon/companion.h"
#include "dataplane/daemon/role.h"
#include "smig/dataplane/v1/agent.pb.h"

namespace smig::dataplane {

struct RoleEntry {
  v1::Role id;
  absl::string_view name;
  RoleFactory make;
  // What main sets up around the node:
  bool listens = false;  // the node's endpoint accepts associations (a vehicle's: edges connect)
  EndpointsOpener open_endpoints = nullptr;     // the role's other endpoints; null: none
  CompanionStarter start_companions = nullptr;  // what runs beside the node; null: none
};

// Null for a role nobody registered (ROLE_UNSPECIFIED included).
const RoleEntry* FindRole(v1::Role id);
// FindRole, or INVALID_ARGUMENT "role must be ROLE_EDGE or ROLE_VEHICLE".
absl::StatusOr<const RoleEntry*> GetRole(v1::Role id);
const RoleEntry* FindRoleNamed(absl::string_view name);
// The registered roles for messages: "ROLE_EDGE or ROLE_VEHICLE", "edge or vehicle".
std::string RoleIdList();
std::string RoleNameList();

}  // namespace smig::dataplane
