// The gRPC adapter of the MDM (smig.decision.v1.Decision): converts and forwards to a
// DecisionEngine, looks sessions and proximity up through ControlPlaneClients, and maps
// absl::Status codes to gRPC codes one by one.
//
//   DecisionService service(engine, clients);  // both (and the clock) must outlive it
//   GrpcServer::Start(options, {&service}, registry);
//
//   // A replica of several (policy_store.h): UpdatePolicy goes through the store, and only
//   // the leader takes it (FAILED_PRECONDITION naming the leader elsewhere).
//   DecisionService service(engine, clients, Clock::Real(), &policy_store);
#pragma once

#include "common/clock.h"
#include "services/decision/control_plane_clients.h"
#include "services/decision/decision_engine.h"
#include "services/decision/policy_store.h"
#include "smig/decision/v1/decision.grpc.pb.h"

namespace smig::decision {

class DecisionService final : public v1::Decision::Service {
 public:
  // Evaluate decides at the clock's time. `policy_store` (may be null: one replica, the
  // policy in memory) must outlive the service.
  DecisionService(DecisionEngine& engine, ControlPlaneClients& clients,
                  Clock& clock = Clock::Real(), PolicyStore* policy_store = nullptr)
      : engine_(engine), clients_(clients), clock_(clock), policy_store_(policy_store) {}

  grpc::Status GetPolicy(grpc::ServerContext*, const v1::GetPolicyRequest*,
                         v1::Policy* resp) override;
  grpc::Status UpdatePolicy(grpc::ServerContext*, const v1::UpdatePolicyRequest* req,
                            v1::Policy* resp) override;
  // Decides for one session now; never migrates, and only reads the session's dwell state
  // (the background loop owns it, see AutoMigrator).
  grpc::Status Evaluate(grpc::ServerContext*, const v1::EvaluateRequest* req,
                        v1::DecisionRecord* resp) override;
  grpc::Status ListDecisions(grpc::ServerContext*, const v1::ListDecisionsRequest* req,
                             v1::ListDecisionsResponse* resp) override;

 private:
  DecisionEngine& engine_;
  ControlPlaneClients& clients_;
  Clock& clock_;
  PolicyStore* const policy_store_;
};

}  // namespace smig::decision
