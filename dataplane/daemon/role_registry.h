// The roles a data plane can take, by config.role(): the one place where each is
// registered, with its name (--role's value, the metrics' "role" label) and its factory.
//
//   const RoleEntry* entry = FindRole(config.role());
//   if (entry == nullptr) return absl::InvalidArgumentError(absl::StrCat("role must be ", RoleIdList()));
//   absl::StatusOr<std::unique_ptr<Role>> role = entry->make(std::move(env), deps);
//
// Adding a role (say, a fleet host running many simulated vehicles): write a class that
// implements Role (role.h) with a static Create, give it a value in v1::Role
// (proto/smig/dataplane/v1/agent.proto), and add one line to kRoles in role_registry.cc.
// Neither the loop nor node.cc changes.
//
// The table is static and immutable: safe from any thread.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/daemon/role.h"
#include "smig/dataplane/v1/agent.pb.h"

namespace smig::dataplane {

struct RoleEntry {
  v1::Role id;
  absl::string_view name;
  RoleFactory make;
};

// Null for a role nobody registered (ROLE_UNSPECIFIED included).
const RoleEntry* FindRole(v1::Role id);
const RoleEntry* FindRoleNamed(absl::string_view name);
// The registered roles for messages: "ROLE_EDGE or ROLE_VEHICLE", "edge or vehicle".
std::string RoleIdList();
std::string RoleNameList();

}  // namespace smig::dataplane
