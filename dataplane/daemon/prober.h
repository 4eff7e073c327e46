// Prober: how near each edge server is, as a vehicle sees it. It keeps one probe
// association per server, to the server's probe port (opened on first use, re-opened when
// lost), and reads SCTP's own measurements on it: each path's state and srtt, and the
// best path's bandwidth (cwnd / srtt). Probes carry no data; the heartbeats are the
// measurement.
//
//   Prober prober(endpoint);
//   proximity::v1::ProximityReport r = prober.Measure(servers, absl::Now());
//   // a server probed for the first time is listed, not yet reachable
//
// Ownership: the probe associations live on `endpoint` (the vehicle's), which outlives
// the prober. Not thread-safe: the node's loop calls it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "dataplane/transport/endpoint.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace smig::dataplane {

class Prober {
 public:
  explicit Prober(transport::Endpoint& endpoint) : endpoint_(endpoint) {}

  // One measurement per listed server with an SCTP address and port, stamped `now`
  // (serving_server_id is left to the caller).
  proximity::v1::ProximityReport Measure(const std::vector<proximity::v1::Server>& servers,
                                         absl::Time now);

  // 1 when `ip` is on a subnet of one of this host's interfaces (no router in between),
  // else 0: the number of routers is not known without traceroute, which smig does not do.
  static uint32_t HopsTo(const std::string& ip);

 private:
  transport::Endpoint& endpoint_;
  std::map<std::string, transport::AssocId> probes_;  // server id -> probe association
};

}  // namespace smig::dataplane
