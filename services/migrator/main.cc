// smig-migrator: the SMM. Runs migrations between edge data planes (their agent API),
// with health, reflection and /metrics. With a `store` (etcd) in its config, its sessions
// and migration journal live there and several replicas elect the one that acts (see
// docs/architecture.md, "The SMM's journal, replicas and reconciliation").
//
//   smig-migrator --config=migrator.json
#include <prometheus/registry.h>

#include "common/logging.h"
#include "common/proto_time.h"
#include "common/server_main.h"
#include "common/status_macros.h"
#include "common/store/store_config.h"
#include "services/migrator/migrator_service.h"

namespace {

namespace v1 = smig::migrator::v1;

absl::Status Serve(const v1::MigratorConfig& config) {
  if (config.servers().empty() && config.proximity_address().empty()) {
    return absl::InvalidArgumentError(
        "the config needs servers (agent addresses) or a proximity_address (the PMM's registry)");
  }
  SMIG_ASSIGN_OR_RETURN(smig::ClientCredentials credentials,
                        smig::ClientCredentials::FromConfig(config.client_tls()));
  smig::migrator::GrpcAgentOptions agent_options{
      .rpc_timeout = smig::FromProtoOr(config.rpc_timeout(), absl::Seconds(5)),
      .credentials = std::move(credentials)};
  std::unique_ptr<smig::migrator::AgentDirectory> agents = smig::migrator::MakeGrpcAgentDirectory(
      {config.servers().begin(), config.servers().end()}, config.proximity_address(), agent_options);
  std::unique_ptr<smig::migrator::TargetPicker> picker =
      smig::migrator::MakePmmTargetPicker(config.proximity_address(), agent_options);
  auto registry = std::make_shared<prometheus::Registry>();
  // With a store: etcd (failures counted in smig_store_errors_total{service="migrator"}) and
  // the election "<prefix>leader/migrator" (smig_leader{service="migrator"}). Without: one
  // replica, in memory, unfenced (token 0).
  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::store::ServiceStore> store,
      smig::store::ServiceStore::Open(config.store(), "migrator", registry.get()));
  smig::migrator::MigratorEngine::Options options{
      .overlap_timeout = smig::FromProtoOr(config.overlap_timeout(), absl::Seconds(10))};
  if (!config.has_audit_interval()) {
    options.audit_interval = absl::Seconds(10);
  } else if (absl::Duration d = smig::FromProto(config.audit_interval()); d > absl::ZeroDuration()) {
    options.audit_interval = d;  // else "0s": none
  }
  if (store != nullptr) {
    // The agents' fencing token is the leadership's revision: the engine takes it from the
    // term each call is made under (Options::fencing_token is for an SMM without one).
    options.store = &store->store();
    options.election = &store->election();
    options.replica_id = store->replica_id();
  }
  smig::migrator::MigratorEngine engine(*agents, picker.get(), options, registry.get());
  if (store != nullptr) {
    store->Start(engine.Listener());  // campaigns from now on
    LOG(INFO) << "SMM replica " << store->replica_id() << " campaigns in "
              << store->election_name() << "; journal under " << store->prefix()
              << options.store_prefix;
  }
  smig::migrator::MigratorService service(engine);

  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry));
  smig::ServeUntilTerminated("migrator", *server, [&] {
    // Migrations in flight roll back while this replica still leads; then it resigns
    // (revoking the lease), so that a standby leads within a round trip, not a TTL.
    engine.Stop();
    if (store != nullptr) store->election().Stop();
  });
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return smig::ServerMain<v1::MigratorConfig>(argc, argv,
                                              "the smig SMM (service migration).\n"
                                              "  smig-migrator --config=migrator.json",
                                              Serve);
}
