// smig-proximity: the PMM. It keeps the registry of edge servers (static config,
// RegisterServer heartbeats, Kubernetes EndpointSlices) and each vehicle's proximity and
// server roles, and serves smig.proximity.v1.Proximity (gRPC, with health and reflection)
// and /metrics. See docs/architecture.md.
#include <iostream>
#include <thread>

#include <prometheus/registry.h>

#include "absl/flags/flag.h"
#include "absl/synchronization/notification.h"
#include "common/server_config.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "services/proximity/kubernetes_discovery.h"
#include "services/proximity/proximity_engine.h"
#include "services/proximity/proximity_service.h"

namespace {

namespace v1 = smig::proximity::v1;

int Fail(const absl::Status& s) {
  std::cerr << "smig-proximity: " << s << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "the smig PMM: edge server registry and vehicle proximity.\n"
                   "  smig-proximity --config=proximity.json\n"
                   "Flag names take dashes or underscores.");
  smig::BlockTerminationSignals();  // before any thread starts, so they inherit it

  absl::StatusOr<v1::ProximityConfig> loaded = smig::LoadServerConfig<v1::ProximityConfig>();
  if (!loaded.ok()) return Fail(loaded.status());
  const v1::ProximityConfig& config = *loaded;

  auto registry = std::make_shared<prometheus::Registry>();
  smig::proximity::ProximityEngine::Options eo;
  eo.static_servers.assign(config.servers().begin(), config.servers().end());
  if (config.has_report_ttl()) {
    eo.report_ttl = smig::FromProto(config.report_ttl());
  }
  eo.registry = registry;
  absl::StatusOr<std::unique_ptr<smig::proximity::ProximityEngine>> engine =
      smig::proximity::ProximityEngine::Create(std::move(eo));
  if (!engine.ok()) return Fail(engine.status());

  std::unique_ptr<smig::proximity::KubernetesDiscovery> discovery;
  if (config.discovery().has_kubernetes()) {
    absl::StatusOr<smig::proximity::KubernetesDiscovery::Options> ko =
        smig::proximity::KubernetesDiscovery::InClusterOptions(config.discovery().kubernetes());
    if (!ko.ok()) return Fail(ko.status());
    discovery = smig::proximity::KubernetesDiscovery::Start(*ko, **engine, registry);
  }

  // Expiry happens without any call arriving; this makes watchers hear of it within 1 s.
  absl::Notification stop_sweeping;
  std::thread sweeper([&] {
    while (!stop_sweeping.WaitForNotificationWithTimeout(absl::Seconds(1))) (*engine)->Sweep();
  });

  smig::proximity::ProximityService service(**engine);
  absl::StatusOr<std::unique_ptr<smig::GrpcServer>> server =
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry);
  if (!server.ok()) {
    stop_sweeping.Notify();
    sweeper.join();
    return Fail(server.status());
  }
  std::cout << "{\"service\":\"proximity\",\"grpc_port\":" << (*server)->grpc_port()
            << ",\"metrics_port\":" << (*server)->metrics_port() << "}" << std::endl;

  int sig = smig::WaitForTerminationSignal();
  std::cerr << "smig-proximity: signal " << sig << ": stopping\n";
  (*server)->SetServing("", false);
  (*engine)->CloseWatches();  // watch streams end with UNAVAILABLE instead of hanging
  discovery.reset();
  stop_sweeping.Notify();
  sweeper.join();
  (*server)->Shutdown(absl::Seconds(2));
  return 0;
}
