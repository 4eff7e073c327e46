// RecordingAgent: a gRPC DataplaneAgent service that keeps no sessions of its own. It
// answers OpenSession, ImportState, ReleaseSession and GetSession as an edge would for any
// session, ListSessions with none, and records every request it got, so that a test sees
// what an SMM (GrpcAgent) really sent over the wire.
//
//   RecordingAgent agent("edge-1");
//   auto server = *GrpcServer::Start({.metrics_address = ""}, {&agent}, nullptr);
//   ... MakeGrpcAgentDirectory({{"edge-1", "127.0.0.1:<port>"}}, "", {}) ...
//   agent.imports()[0].fencing_token();   // 57
//
// Thread-safe (gRPC's threads call it, the test reads it).
#pragma once

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"

namespace smig::testing {

class RecordingAgent final : public dataplane::v1::DataplaneAgent::Service {
 public:
  using Session = dataplane::v1::Session;
  explicit RecordingAgent(std::string server_id) : server_id_(std::move(server_id)) {}

  grpc::Status OpenSession(grpc::ServerContext*, const dataplane::v1::OpenSessionRequest* req,
                           Session* resp) override {
    absl::MutexLock lock(&mu_);
    opens_.push_back(*req);
    *resp = Describe(req->session_id(), 1);
    return grpc::Status::OK;
  }
  grpc::Status ImportState(grpc::ServerContext*, const dataplane::v1::ImportStateRequest* req,
                           Session* resp) override {
    absl::MutexLock lock(&mu_);
    imports_.push_back(*req);
    *resp = Describe(req->state().session_id(), req->state().generation());
    return grpc::Status::OK;
  }
  grpc::Status ReleaseSession(grpc::ServerContext*,
                              const dataplane::v1::ReleaseSessionRequest* req,
                              dataplane::v1::ReleaseSessionResponse* resp) override {
    absl::MutexLock lock(&mu_);
    releases_.push_back(*req);
    *resp->mutable_session() = Describe(req->session_id(), 1);
    resp->mutable_session()->set_phase(dataplane::v1::SESSION_PHASE_RELEASING);
    return grpc::Status::OK;
  }
  grpc::Status GetSession(grpc::ServerContext*, const dataplane::v1::GetSessionRequest* req,
                          Session* resp) override {
    *resp = Describe(req->session_id(), 1);
    return grpc::Status::OK;
  }
  grpc::Status ListSessions(grpc::ServerContext*, const dataplane::v1::ListSessionsRequest*,
                            dataplane::v1::ListSessionsResponse*) override {
    return grpc::Status::OK;
  }

  std::vector<dataplane::v1::OpenSessionRequest> opens() const {
    absl::MutexLock lock(&mu_);
    return opens_;
  }
  std::vector<dataplane::v1::ImportStateRequest> imports() const {
    absl::MutexLock lock(&mu_);
    return imports_;
  }
  std::vector<dataplane::v1::ReleaseSessionRequest> releases() const {
    absl::MutexLock lock(&mu_);
    return releases_;
  }

 private:
  Session Describe(uint64_t session, uint64_t generation) const {
    Session s;
    s.set_session_id(session);
    s.set_role(dataplane::v1::ROLE_EDGE);
    s.set_phase(dataplane::v1::SESSION_PHASE_SERVING);
    s.set_generation(generation);
    s.set_server_id(server_id_);
    return s;
  }

  const std::string server_id_;
  mutable absl::Mutex mu_;
  std::vector<dataplane::v1::OpenSessionRequest> opens_ ABSL_GUARDED_BY(mu_);
  std::vector<dataplane::v1::ImportStateRequest> imports_ ABSL_GUARDED_BY(mu_);
  std::vector<dataplane::v1::ReleaseSessionRequest> releases_ ABSL_GUARDED_BY(mu_);
};

}  // namespace smig::testing
