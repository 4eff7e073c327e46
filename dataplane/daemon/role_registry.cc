#include "dataplane/daemon/role_registry.h"

#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dataplane/daemon/edge_role.h"
#include "dataplane/daemon/vehicle_role.h"

namespace smig::dataplane {

namespace {

// Every role, in the order messages list them.
constexpr RoleEntry kRoles[] = {
    {.id = v1::ROLE_EDGE, .name = EdgeRole::kName, .make = &EdgeRole::Create,
     .open_endpoints = &EdgeRole::OpenEndpoints},
    {.id = v1::ROLE_VEHICLE, .name = VehicleRole::kName, .make = &VehicleRole::Create,
     .listens = true, .start_companions = &VehicleRole::StartCompanions},
};

// "a", "a or b", "a, b or c".
std::string ListOf(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) absl::StrAppend(&out, i + 1 == items.size() ? " or " : ", ");
    absl::StrAppend(&out, items[i]);
  }
  return out;
}

}  // namespace

const RoleEntry* FindRole(v1::Role id) {
  for (const RoleEntry& e : kRoles) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

absl::StatusOr<const RoleEntry*> GetRole(v1::Role id) {
  const RoleEntry* entry = FindRole(id);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("role must be ", RoleIdList()));
  }
  return entry;
}

const RoleEntry* FindRoleNamed(absl::string_view name) {
  for (const RoleEntry& e : kRoles) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string RoleIdList() {
  std::vector<std::string> ids;
  for (const RoleEntry& e : kRoles) ids.push_back(v1::Role_Name(e.id));
  return ListOf(ids);
}

std::string RoleNameList() {
  std::vector<std::string> names;
  for (const RoleEntry& e : kRoles) names.emplace_back(e.name);
  return ListOf(names);
}

}  // namespace smig::dataplane
