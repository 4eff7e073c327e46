// smig-migrator: the SMM. Runs migrations between edge data planes (their agent API),
// with health, reflection and /metrics. See docs/architecture.md.
#include <prometheus/registry.h>

#include "common/proto_time.h"
#include "common/server_main.h"
#include "common/status_macros.h"
#include "services/migrator/migrator_service.h"

namespace {

namespace v1 = smig::migrator::v1;

absl::Status Serve(const v1::MigratorConfig& config) {
  if (config.servers().empty() && config.proximity_address().empty()) {
    return absl::InvalidArgumentError(
        "the config needs servers (agent addresses) or a proximity_address (the PMM's registry)");
  }
  smig::migrator::GrpcAgentOptions agent_options{
      .rpc_timeout = smig::FromProtoOr(config.rpc_timeout(), absl::Seconds(5))};
  std::unique_ptr<smig::migrator::AgentDirectory> agents = smig::migrator::MakeGrpcAgentDirectory(
      {config.servers().begin(), config.servers().end()}, config.proximity_address(), agent_options);
  std::unique_ptr<smig::migrator::TargetPicker> picker =
      smig::migrator::MakePmmTargetPicker(config.proximity_address(), agent_options.rpc_timeout);
  auto registry = std::make_shared<prometheus::Registry>();
  smig::migrator::MigratorEngine engine(
      *agents, picker.get(),
      {.overlap_timeout = smig::FromProtoOr(config.overlap_timeout(), absl::Seconds(10)),
       // The token the agents fence with: none (kUnfenced) while one SMM runs alone. With a
       // leader election (issue 14) this becomes the leader's, e.g.
       // [&election] { return election.fencing_token(); }.
       .fencing_token = nullptr},
      registry.get());
  smig::migrator::MigratorService service(engine);

  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry));
  smig::ServeUntilTerminated("migrator", *server);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return smig::ServerMain<v1::MigratorConfig>(argc, argv,
                                              "the smig SMM (service migration).\n"
                                              "  smig-migrator --config=migrator.json",
                                              Serve);
}
