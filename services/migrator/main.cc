// smig-migrator: the SMM. Runs migrations between edge data planes (their agent API),
// with health, reflection and /metrics. See docs/architecture.md.
#include <prometheus/registry.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "common/server_config.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "google/protobuf/util/time_util.h"
#include "services/migrator/migrator_service.h"


namespace {
namespace v1 = smig::migrator::v1;
using google::protobuf::util::TimeUtil;

int Fail(const absl::Status& s) {
  std::cerr << "smig-migrator: " << s << "\n";
  return 2;
}
absl::Duration Or(const google::protobuf::Duration& d, absl::Duration fallback) {
  int64_t ns = TimeUtil::DurationToNanoseconds(d);
  return ns > 0 ? absl::Nanoseconds(ns) : fallback;
}
}  // namespace

int main(int argc, char** argv) {
  smig::ParseFlags(argc, argv,
                   "the smig SMM (service migration).\n"
                   "  smig-migrator --config=migrator.json");
  smig::BlockTerminationSignals();
  absl::StatusOr<v1::MigratorConfig> loaded = smig::LoadServerConfig<v1::MigratorConfig>();
  if (!loaded.ok()) return Fail(loaded.status());
  const v1::MigratorConfig& config = *loaded;
  if (config.servers().empty() && config.proximity_address().empty()) {
    return Fail(absl::InvalidArgumentError(
        "the config needs servers (agent addresses) or a proximity_address (the PMM's registry)"));
  }

  smig::migrator::GrpcAgentOptions agent_options{.rpc_timeout = Or(config.rpc_timeout(), absl::Seconds(5))};
  std::unique_ptr<smig::migrator::AgentDirectory> agents = smig::migrator::MakeGrpcAgentDirectory(
      {config.servers().begin(), config.servers().end()}, config.proximity_address(), agent_options);
  std::unique_ptr<smig::migrator::TargetPicker> picker =
      smig::migrator::MakePmmTargetPicker(config.proximity_address(), agent_options.rpc_timeout);
  auto registry = std::make_shared<prometheus::Registry>();
  smig::migrator::MigratorEngine engine(
      *agents, picker.get(), {.overlap_timeout = Or(config.overlap_timeout(), absl::Seconds(10))},
      registry.get());
  smig::migrator::MigratorService service(engine);

  absl::StatusOr<std::unique_ptr<smig::GrpcServer>> server =
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry);
  if (!server.ok()) return Fail(server.status());
  std::cout << "{\"service\":\"migrator\",\"grpc_port\":" << (*server)->grpc_port()
            << ",\"metrics_port\":" << (*server)->metrics_port() << "}" << std::endl;
  int sig = smig::WaitForTerminationSignal();
  std::cerr << "smig-migrator: signal " << sig << ": stopping\n";
  (*server)->Shutdown(absl::Seconds(2));
  return 0;
}
