#include "services/proximity/proximity_service.h"

#include "common/grpc_status.h"
#include "common/proto_time.h"

namespace smig::proximity {

grpc::Status ProximityService::RegisterServer(grpc::ServerContext*,
                                              const v1::RegisterServerRequest* req,
                                              v1::Server* resp) {
  return Reply(engine_.Register(req->server(), FromProto(req->ttl())), resp);
}

grpc::Status ProximityService::ListServers(grpc::ServerContext*, const v1::ListServersRequest*,
                                           v1::ListServersResponse* resp) {
  for (v1::Server& s : engine_.ListServers()) *resp->add_servers() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status ProximityService::ReportProximity(grpc::ServerContext*,
                                               grpc::ServerReader<v1::ProximityReport>* reader,
                                               v1::ReportProximityResponse* resp) {
  v1::ProximityReport report;
  uint64_t n = 0;
  while (reader->Read(&report)) {
    if (absl::Status s = engine_.Report(report); !s.ok()) return ToGrpcStatus(s);
    ++n;
  }
  resp->set_reports(n);
  return grpc::Status::OK;
}

grpc::Status ProximityService::GetProximity(grpc::ServerContext*, const v1::GetProximityRequest* req,
                                            v1::VehicleProximity* resp) {
  return Reply(engine_.Get(req->vehicle_id()), resp);
}

grpc::Status ProximityService::WatchProximity(grpc::ServerContext* ctx,
                                              const v1::WatchProximityRequest* req,
                                              grpc::ServerWriter<v1::VehicleProximity>* writer) {
  std::shared_ptr<ProximityWatch> w = engine_.Watch(req->vehicle_id());
  // Polling with a short timeout is how a synchronous handler notices the client leaving.
  while (!ctx->IsCancelled()) {
    std::optional<v1::VehicleProximity> p = w->Pop(absl::Milliseconds(200));
    if (p && !writer->Write(*p)) break;
    if (w->closed()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the PMM is shutting down");
  }
  return grpc::Status::OK;  // dropping `w` unsubscribes
}

}  // namespace smig::proximity
