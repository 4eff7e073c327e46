// KubernetesDiscovery: keeps the engine's discovered servers equal to the ready endpoints
// of the data plane's headless Service, by listing its EndpointSlices every few seconds
// (docs/deploy.md, "How the PMM finds the edges").
//
//   absl::StatusOr<KubernetesDiscovery::Options> o =
//       KubernetesDiscovery::InClusterOptions(config.discovery().kubernetes());
//   std::unique_ptr<KubernetesDiscovery> d = KubernetesDiscovery::Start(*o, engine, registry);
//   ...                                   // polls on its own thread until destroyed
//
// A failed poll is logged (a warning, once per distinct error), counted in
// smig_discovery_errors_total, and changes nothing: static servers and the last
// discovered list stay, so an API server blip does not empty the registry.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/proximity/proximity_engine.h"

namespace smig::proximity {

// The servers in an EndpointSliceList (JSON as the API server returns it): one per ready
// endpoint; id = nodeName (else targetRef.name), agent_address = first address + the port
// named "agent", sctp_addresses = its addresses, sctp_port = the port named "sctp" if any.
// Endpoints without an id or without an "agent" port are skipped (they cannot be used).
absl::StatusOr<std::vector<v1::Server>> ServersFromEndpointSlices(absl::string_view json);

class KubernetesDiscovery {
 public:
  struct Options {
    std::string api_url;     // e.g. https://10.96.0.1:443
    std::string token_file;  // bearer token, re-read every poll (kubelet rotates it); optional
    std::string ca_file;     // CA of the API server; empty: the system's CAs
    std::string namespace_name;
    std::string service;     // EndpointSlices labelled kubernetes.io/service-name=<service>
    absl::Duration interval = absl::Seconds(5);
    absl::Duration timeout = absl::Seconds(5);
  };

  // The pod's own view: api from $SMIG_KUBERNETES_API (tests, proxies) or
  // https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; token, CA and (unless the
  // config names one) namespace from the service account's mounted files.
  static absl::StatusOr<Options> InClusterOptions(const v1::Discovery::Kubernetes& config);

  // Polls once right away, then every `interval`, on its own thread. `engine` must
  // outlive the discovery.
  static std::unique_ptr<KubernetesDiscovery> Start(
      Options options, ProximityEngine& engine,
      const std::shared_ptr<prometheus::Registry>& registry);
  ~KubernetesDiscovery();

  // One list and ReplaceDiscovered; else the error (UNAVAILABLE, PERMISSION_DENIED, ...),
  // logged and counted. Thread-safe (the loop thread calls it too).
  absl::Status PollOnce();
  uint64_t failures() const { return failures_.load(); }

 private:
  KubernetesDiscovery(Options options, ProximityEngine& engine,
                      const std::shared_ptr<prometheus::Registry>& registry);
  absl::StatusOr<std::string> Fetch();
  void Loop();

  const Options options_;
  ProximityEngine& engine_;
  prometheus::Counter* errors_ = nullptr;
  std::atomic<uint64_t> failures_{0};
  absl::Mutex poll_mu_;  // one poll at a time (the loop, or a test calling PollOnce)
  std::string last_error_ ABSL_GUARDED_BY(poll_mu_);    // logged once until it changes
  std::string last_servers_ ABSL_GUARDED_BY(poll_mu_);  // likewise
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace smig::proximity
