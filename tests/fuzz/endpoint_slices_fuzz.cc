// The PMM's Kubernetes discovery (services/proximity/kubernetes_discovery.h): the body the
// API server returns for the data planes' EndpointSlices, ServersFromEndpointSlices.
// Checks that a body is either refused with INVALID_ARGUMENT or gives servers that each
// have an id, an agent address and at least one SCTP address, no id twice.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "services/proximity/kubernetes_discovery.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using smig::fuzz::Check;
  absl::StatusOr<std::vector<smig::proximity::v1::Server>> servers =
      smig::proximity::ServersFromEndpointSlices(
          absl::string_view(reinterpret_cast<const char*>(data), size));
  Check(servers.ok() || absl::IsInvalidArgument(servers.status()),
        "a bad EndpointSliceList is INVALID_ARGUMENT");
  if (!servers.ok()) return 0;
  std::set<std::string> ids;
  for (const auto& s : *servers) {
    Check(!s.id().empty(), "a discovered server has an id");
    Check(ids.insert(s.id()).second, "no server id twice");
    Check(!s.agent_address().empty(), "a discovered server has an agent address");
    Check(!s.sctp_addresses().empty(), "a discovered server has an SCTP address");
  }
  return 0;
}
