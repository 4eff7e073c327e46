// smig-decision: the MDM. Decides whether and where each session should move (latency,
// bandwidth, load; margin and dwell), explains every decision, and in automatic mode asks
// the SMM to migrate. See proto/smig/decision/v1/decision.proto. With a `store` (etcd) in
// its config, several replicas share the policy and only the elected one migrates.
//
//   smig-decision --config=decision.json [--grpc-address=...] [--metrics-address=...]
#include <fstream>
#include <sstream>

#include <prometheus/registry.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/server_main.h"
#include "common/status_macros.h"
#include "common/store/store_config.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "services/decision/auto_migrator.h"
#include "services/decision/control_plane_clients.h"
#include "services/decision/decision_engine.h"
#include "services/decision/decision_service.h"
#include "services/decision/policy_store.h"

namespace {

namespace v1 = smig::decision::v1;

// proto3 cannot tell `"margin": 0` from no margin at all, so the JSON itself says which
// policy keys the file sets; every other one takes its default.
absl::StatusOr<v1::Policy> PolicyFromConfig(const std::string& path, const v1::Policy& given) {
  v1::Policy p = smig::decision::DefaultPolicy();
  if (path.empty()) return p;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  google::protobuf::Struct json;
  if (!google::protobuf::util::JsonStringToMessage(ss.str(), &json).ok()) return p;
  auto top = json.fields().find("policy");
  if (top == json.fields().end()) return p;
  const auto& keys = top->second.struct_value().fields();
  auto has = [&keys](const char* snake, const char* camel) {
    return keys.contains(snake) || keys.contains(camel);
  };
  if (has("latency_weight", "latencyWeight")) p.set_latency_weight(given.latency_weight());
  if (has("bandwidth_weight", "bandwidthWeight")) p.set_bandwidth_weight(given.bandwidth_weight());
  if (has("load_weight", "loadWeight")) p.set_load_weight(given.load_weight());
  if (has("margin", "margin")) p.set_margin(given.margin());
  if (has("max_load", "maxLoad")) p.set_max_load(given.max_load());
  if (given.max_migrations_per_server() != 0) {
    p.set_max_migrations_per_server(given.max_migrations_per_server());
  }
  if (given.has_dwell()) *p.mutable_dwell() = given.dwell();
  if (given.mode() != v1::MODE_UNSPECIFIED) p.set_mode(given.mode());
  if (absl::Status s = smig::decision::ValidatePolicy(p); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": policy: ", s.message()));
  }
  return p;
}

absl::Status Serve(const v1::DecisionConfig& config) {
  SMIG_ASSIGN_OR_RETURN(v1::Policy policy,
                        PolicyFromConfig(absl::GetFlag(FLAGS_config), config.policy()));
  auto registry = std::make_shared<prometheus::Registry>();
  smig::decision::DecisionEngine engine(registry.get());
  SMIG_RETURN_IF_ERROR(engine.UpdatePolicy(policy).status());
  SMIG_ASSIGN_OR_RETURN(smig::ClientCredentials credentials,
                        smig::ClientCredentials::FromConfig(config.client_tls()));
  std::unique_ptr<smig::decision::GrpcControlPlaneClients> clients =
      smig::decision::GrpcControlPlaneClients::Create(config.proximity_address(),
                                                      config.migrator_address(), credentials);

  // With a store: the policy lives there, the replicas elect a leader, and only the leader
  // migrates. Without: one replica, everything in memory.
  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::store::ServiceStore> store,
      smig::store::ServiceStore::Open(config.store(), "decision", registry.get()));
  std::unique_ptr<smig::decision::PolicyStore> policy_store;
  smig::decision::AutoMigrator::MayAct may_act;
  if (store != nullptr) {
    policy_store = std::make_unique<smig::decision::PolicyStore>(
        engine, store->store(), store->election(),
        smig::decision::PolicyStore::Options{.configured = policy,
                                             .replica_id = store->replica_id()});
    policy_store->Start();  // the stored policy is in force before the first call
    store->Start(policy_store->Listener());
    may_act = [p = policy_store.get()] { return p->MayAct(); };
  }
  smig::decision::DecisionService service(engine, *clients, smig::Clock::Real(),
                                          policy_store.get());

  SMIG_ASSIGN_OR_RETURN(
      std::unique_ptr<smig::GrpcServer> server,
      smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config), {&service}, registry));

  // The loop needs both neighbours; without them the policy, Evaluate errors and the
  // history are still served.
  std::unique_ptr<smig::decision::AutoMigrator> loop;
  if (!config.proximity_address().empty() && !config.migrator_address().empty()) {
    loop = std::make_unique<smig::decision::AutoMigrator>(
        engine, *clients, smig::decision::AutoMigrator::Options{}, smig::Clock::Real(),
        may_act);
    loop->Start();
  } else {
    LOG(WARNING) << "proximity_address or migrator_address not configured: "
                    "no background decisions";
  }
  smig::ServeUntilTerminated("decision", *server, [&] {
    if (loop) loop->Stop();  // no Migrate is sent after this
    // Resign (revoking the lease), so that a standby leads within a round trip rather than
    // a lease's TTL; UpdatePolicy calls still draining are then refused.
    if (store != nullptr) store->election().Stop();
    if (policy_store) policy_store->Stop();
  });
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return smig::ServerMain<v1::DecisionConfig>(argc, argv,
                                               "the smig MDM: should a session move, and where.\n"
                                               "  smig-decision --config=decision.json\n"
                                               "Flag names take dashes or underscores.",
                                               Serve);
}
