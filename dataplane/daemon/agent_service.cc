#include "dataplane/daemon/agent_service.h"

#include "common/grpc_status.h"

namespace smig::dataplane {

grpc::Status AgentService::OpenSession(grpc::ServerContext*, const v1::OpenSessionRequest* req,
                                       v1::Session* resp) {
  return Reply(node_.OpenSession(*req), resp);
}

grpc::Status AgentService::ExportState(grpc::ServerContext*, const v1::ExportStateRequest* req,
                                       v1::SessionState* resp) {
  return Reply(node_.ExportState(req->session_id()), resp);
}

grpc::Status AgentService::ImportState(grpc::ServerContext*, const v1::ImportStateRequest* req,
                                       v1::Session* resp) {
  return Reply(node_.ImportState(req->state(), req->fencing_token()), resp);
}

grpc::Status AgentService::ReleaseSession(grpc::ServerContext*,
                                          const v1::ReleaseSessionRequest* req,
                                          v1::ReleaseSessionResponse* resp) {
  return Reply(node_.ReleaseSession(req->session_id(), req->fencing_token()),
               resp->mutable_session());
}

grpc::Status AgentService::GetSession(grpc::ServerContext*, const v1::GetSessionRequest* req,
                                      v1::Session* resp) {
  return Reply(node_.GetSession(req->session_id()), resp);
}

grpc::Status AgentService::ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest*,
                                        v1::ListSessionsResponse* resp) {
  for (v1::Session& s : node_.ListSessions()) *resp->add_sessions() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status AgentService::WatchEvents(grpc::ServerContext* ctx,
                                       const v1::WatchEventsRequest* req,
                                       grpc::ServerWriter<v1::AgentEvent>* writer) {
  std::shared_ptr<DataplaneNode::EventQueue> q = node_.Subscribe(req->session_id());
  // Tells the client it is subscribed (it may WaitForInitialMetadata()), so that a caller
  // can subscribe first and then start what it waits for, without missing the event.
  writer->SendInitialMetadata();
  while (!ctx->IsCancelled()) {
    std::optional<v1::AgentEvent> e = q->Pop(absl::Milliseconds(200));
    if (e && !writer->Write(*e)) break;
  }
  node_.Unsubscribe(q);
  return grpc::Status::OK;
}

}  // namespace smig::dataplane
