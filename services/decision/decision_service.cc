#include "services/decision/decision_service.h"

#include "common/grpc_status.h"

namespace smig::decision {

grpc::Status DecisionService::GetPolicy(grpc::ServerContext*, const v1::GetPolicyRequest*,
                                        v1::Policy* resp) {
  *resp = engine_.policy();
  return grpc::Status::OK;
}

grpc::Status DecisionService::UpdatePolicy(grpc::ServerContext*,
                                           const v1::UpdatePolicyRequest* req,
                                           v1::Policy* resp) {
  if (policy_store_ != nullptr) return Reply(policy_store_->Update(req->policy()), resp);
  return Reply(engine_.UpdatePolicy(req->policy()), resp);
}

grpc::Status DecisionService::Evaluate(grpc::ServerContext*, const v1::EvaluateRequest* req,
                                       v1::DecisionRecord* resp) {
  if (req->session_id() == 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("session_id is required"));
  }
  absl::StatusOr<std::vector<migrator::v1::Session>> sessions = clients_.ListSessions();
  if (!sessions.ok()) return ToGrpcStatus(sessions.status());
  absl::StatusOr<migrator::v1::Session> session = FindSession(*sessions, req->session_id());
  if (!session.ok()) return ToGrpcStatus(session.status());
  absl::StatusOr<proximity::v1::VehicleProximity> prox =
      clients_.GetProximity(session->vehicle_id());
  if (!prox.ok()) return ToGrpcStatus(prox.status());
  const Occupancy occupancy = OccupancyOf(*sessions);
  *resp = engine_.Decide(session->session_id(), session->vehicle_id(), session->server_id(),
                         *prox, clock_.Now(), {.peek = true, .occupancy = &occupancy});
  return grpc::Status::OK;
}

grpc::Status DecisionService::ListDecisions(grpc::ServerContext*,
                                            const v1::ListDecisionsRequest* req,
                                            v1::ListDecisionsResponse* resp) {
  for (v1::DecisionRecord& r : engine_.ListDecisions(req->session_id(), req->limit())) {
    *resp->add_decisions() = std::move(r);
  }
  return grpc::Status::OK;
}

}  // namespace smig::decision
