// The gRPC adapter of the agent API (smig.dataplane.v1.DataplaneAgent): converts and
// forwards to a DataplaneNode, mapping absl::Status codes to gRPC codes one by one.
//
//   AgentService service(node);   // node must outlive the service
//   GrpcServer::Start(options, {&service}, registry);
#pragma once

#include "dataplane/daemon/node.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"

namespace smig::dataplane {

class AgentService final : public v1::DataplaneAgent::Service {
 public:
  explicit AgentService(DataplaneNode& node) : node_(node) {}

  grpc::Status OpenSession(grpc::ServerContext*, const v1::OpenSessionRequest* req,
                           v1::Session* resp) override;
  grpc::Status ExportState(grpc::ServerContext*, const v1::ExportStateRequest* req,
                           v1::SessionState* resp) override;
  grpc::Status ImportState(grpc::ServerContext*, const v1::ImportStateRequest* req,
                           v1::Session* resp) override;
  grpc::Status ReleaseSession(grpc::ServerContext*, const v1::ReleaseSessionRequest* req,
                              v1::ReleaseSessionResponse* resp) override;
  grpc::Status GetSession(grpc::ServerContext*, const v1::GetSessionRequest* req,
                          v1::Session* resp) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* req,
                            v1::ListSessionsResponse* resp) override;
  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::AgentEvent>* writer) override;

 private:
  DataplaneNode& node_;
};

}  // namespace smig::dataplane
