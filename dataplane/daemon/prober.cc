#include "dataplane/daemon/prober.h"

#include <arpa/inet.h>
#include <ifaddrs.h>

#include "absl/status/statusor.h"
#include "common/proto_time.h"

namespace smig::dataplane {

namespace tv1 = transport::v1;
namespace pv1 = proximity::v1;

uint32_t Prober::HopsTo(const std::string& ip) {
  in_addr peer{};
  if (inet_pton(AF_INET, ip.c_str(), &peer) != 1) return 0;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  uint32_t hops = 0;
  for (ifaddrs* i = list; i != nullptr && hops == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != AF_INET) {
      continue;
    }
    uint32_t mine = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    uint32_t mask = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
    if ((mine & mask) == (peer.s_addr & mask)) hops = 1;
  }
  freeifaddrs(list);
  return hops;
}

pv1::ProximityReport Prober::Measure(const std::vector<pv1::Server>& servers, absl::Time now) {
  pv1::ProximityReport report;
  *report.mutable_measured_at() = ToProtoTimestamp(now);
  for (const pv1::Server& server : servers) {
    if (server.sctp_addresses().empty() || server.sctp_port() == 0) continue;
    pv1::Measurement* m = report.add_measurements();
    m->set_server_id(server.id());
    auto probe = probes_.find(server.id());
    absl::StatusOr<tv1::AssociationInfo> info =
        probe == probes_.end() ? absl::NotFoundError("") : endpoint_.GetAssociation(probe->second);
    if (!info.ok()) {  // not probed yet, or the probe was lost: (re)connect
      if (probe != probes_.end()) probes_.erase(probe);
      std::vector<std::string> addrs(server.sctp_addresses().begin(), server.sctp_addresses().end());
      if (absl::StatusOr<transport::AssocId> a =
              endpoint_.Connect(addrs, static_cast<uint16_t>(server.sctp_port()));
          a.ok()) {
        probes_[server.id()] = *a;
      }
      continue;
    }
    const tv1::PathInfo* best = nullptr;
    for (const tv1::PathInfo& p : info->paths()) {
      *m->add_paths() = p;
      if (p.state() == tv1::PATH_STATE_ACTIVE && p.srtt_ms() > 0 &&
          (best == nullptr || p.srtt_ms() < best->srtt_ms())) {
        best = &p;
      }
    }
    if (best == nullptr) continue;  // up, but no path measured yet: not reachable
    m->set_reachable(true);
    m->set_srtt_ms(best->srtt_ms());
    m->set_bandwidth_bps(best->cwnd_bytes() * 8.0 / (best->srtt_ms() / 1000.0));
    std::string host = best->address().substr(0, best->address().rfind(':'));
    m->set_hops(HopsTo(host));
  }
  return report;
}

}  // namespace smig::dataplane
