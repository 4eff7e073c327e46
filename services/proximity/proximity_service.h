// The gRPC adapter of the PMM (smig.proximity.v1.Proximity): converts and forwards to a
// ProximityEngine, mapping absl::Status codes to gRPC codes one by one.
//
//   ProximityService service(engine);   // engine must outlive the service
//   GrpcServer::Start(options, {&service}, registry);
#pragma once

#include "services/proximity/proximity_engine.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"

namespace smig::proximity {

class ProximityService final : public v1::Proximity::Service {
 public:
  explicit ProximityService(ProximityEngine& engine) : engine_(engine) {}

  grpc::Status RegisterServer(grpc::ServerContext*, const v1::RegisterServerRequest* req,
                              v1::Server* resp) override;
  grpc::Status ListServers(grpc::ServerContext*, const v1::ListServersRequest* req,
                           v1::ListServersResponse* resp) override;
  // The first rejected report ends the stream with its status (a vehicle that sends bad
  // reports should hear why, not be ignored); otherwise one reply when the client closes.
  grpc::Status ReportProximity(grpc::ServerContext*, grpc::ServerReader<v1::ProximityReport>* reader,
                               v1::ReportProximityResponse* resp) override;
  grpc::Status GetProximity(grpc::ServerContext*, const v1::GetProximityRequest* req,
                            v1::VehicleProximity* resp) override;
  // Runs until the client cancels, or UNAVAILABLE when the server shuts down (so that the
  // client reconnects to the next PMM).
  grpc::Status WatchProximity(grpc::ServerContext* ctx, const v1::WatchProximityRequest* req,
                              grpc::ServerWriter<v1::VehicleProximity>* writer) override;

 private:
  ProximityEngine& engine_;
};

}  // namespace smig::proximity
