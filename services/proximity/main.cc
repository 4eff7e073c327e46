// smig-proximity: the PMM. It keeps the registry of edge servers (static config,
// RegisterServer heartbeats, Kubernetes EndpointSlices) and each vehicle's proximity and
// server roles, and serves smig.proximity.v1.Proximity (gRPC, with health and reflection)
// and /metrics. See docs/architecture.md.
#include <thread>

#include <prometheus/registry.h>

#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "common/server_main.h"
#include "common/status_macros.h"
#include "services/proximity/kubernetes_discovery.h"
#include "services/proximity/proximity_engine.h"
#include "services/proximity/proximity_service.h"

namespace {

namespace v1 = smig::proximity::v1;

// Expiry happens without any call arriving; sweeping every second makes watchers hear of
// it within 1 s. Sweeps on its own thread until destroyed.
class Sweeper {
 public:
  explicit Sweeper(smig::proximity::ProximityEngine& engine)
      : thread_([this, &engine] {
          while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) engine.Sweep();
        }) {}
  ~Sweeper() {
    stop_.Notify();
    thread_.join();
  }

 private:
  absl::Notification stop_;
  std::thread thread_;
};

absl::Status Serve(const v1::ProximityConfig& config) {
  auto registry = std::make_shared<prometheus::Registry>();
  smig::proximity::ProximityEngine::Options eo;
  eo.static_servers.assign(config.servers().begin(), config.servers().end());
  if (config.has_report_ttl()) eo.report_ttl = smig::FromProto(config.report_ttl());
  eo.registry = registry;
  SMIG_ASSIGN_OR_RETURN(std::unique_ptr<smig::proximity::ProximityEngine> engine,
                        smig::proximity::ProximityEngine::Create(std::move(eo)));

  std::unique_ptr<smig::proximity::KubernetesDiscovery> discovery;
  if (config.discovery().has_kubernetes()) {
    SMIG_ASSIGN_OR_RETURN(
        smig::proximity::KubernetesDiscovery::Options ko,
        smig::proximity::KubernetesDiscovery::InClusterOptions(config.discovery().kubernetes()));
    discovery = smig::proximity::KubernetesDiscovery::Start(std::move(ko), *engine, registry);
  }
  auto sweeper = std::make_unique<Sweeper>(*engine);

  smig::proximity::ProximityService service(*engine);
  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry));
  smig::ServeUntilTerminated("proximity", *server, [&] {
    engine->CloseWatches();  // watch streams end with UNAVAILABLE instead of hanging
    discovery.reset();
    sweeper.reset();
  });
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return smig::ServerMain<v1::ProximityConfig>(
      argc, argv,
      "the smig PMM: edge server registry and vehicle proximity.\n"
      "  smig-proximity --config=proximity.json\n"
      "Flag names take dashes or underscores.",
      Serve);
}
