// smig-migrator: the SMM. Runs migrations between edge data planes (their agent API),
// with health, reflection and /metrics. See docs/architecture.md.
#include <prometheus/registry.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "common/config.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "google/protobuf/util/time_util.h"
#include "services/migrator/migrator_service.h"

ABSL_FLAG(std::string, config, "", "MigratorConfig as protobuf JSON (unknown keys are errors)");
ABSL_FLAG(std::string, grpc_address, "", "Override the config's grpc_address");
ABSL_FLAG(std::string, metrics_address, "", "Override the config's metrics_address");

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
  v1::MigratorConfig config;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    absl::StatusOr<v1::MigratorConfig> c =
        smig::LoadJsonConfig<v1::MigratorConfig>(absl::GetFlag(FLAGS_config));
    if (!c.ok()) return Fail(c.status());
    config = *c;
  }
  if (!absl::GetFlag(FLAGS_grpc_address).empty()) config.set_grpc_address(absl::GetFlag(FLAGS_grpc_address));
  if (!absl::GetFlag(FLAGS_metrics_address).empty()) {
    config.set_metrics_address(absl::GetFlag(FLAGS_metrics_address));
  }
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
