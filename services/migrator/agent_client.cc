#include "services/migrator/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "smig/dataplane/v1/agent.grpc.pb.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"

namespace smig::migrator {
namespace {

namespace pv1 = ::smig::proximity::v1;

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

class GrpcContiguityWatch : public ContiguityWatch {
 public:
  GrpcContiguityWatch(dv1::DataplaneAgent::Stub& stub, uint64_t session) {
    dv1::WatchEventsRequest req;
    req.set_session_id(session);
    reader_ = stub.WatchEvents(&ctx_, req);
    // The agent sends its initial metadata once it has subscribed; gRPC wants this before
    // any Read. A failed call returns at once (Await then reports the stream broken).
    reader_->WaitForInitialMetadata();
    thread_ = std::thread([this] {
      for (dv1::AgentEvent e; reader_->Read(&e);) {
        if (!e.has_contiguous_generation()) continue;
        absl::MutexLock lock(&mu_);
        contiguous_ = std::max(contiguous_, e.contiguous_generation());
      }
      absl::MutexLock lock(&mu_);
      broken_ = true;
    });
  }
  ~GrpcContiguityWatch() override {
    ctx_.TryCancel();
    thread_.join();
  }
  absl::Status Await(uint64_t generation, absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return broken_ || contiguous_ >= generation;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
    if (contiguous_ >= generation) return absl::OkStatus();
    if (broken_) return absl::UnavailableError("the edge's event stream ended");
    return absl::DeadlineExceededError(
        absl::StrCat("the vehicle has not confirmed generation ", generation, " yet"));
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<dv1::AgentEvent>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  uint64_t contiguous_ ABSL_GUARDED_BY(mu_) = 0;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

class GrpcAgent : public Agent {
 public:
  GrpcAgent(std::string id, std::string address, GrpcAgentOptions options)
      : id_(std::move(id)),
        address_(std::move(address)),
        options_(options),
        stub_(dv1::DataplaneAgent::NewStub(options_.credentials.Channel(address_))) {}

  const std::string& server_id() const override { return id_; }
  const std::string& address() const override { return address_; }

  absl::StatusOr<dv1::Session> OpenSession(const dv1::OpenSessionRequest& request) override {
    return Call<dv1::Session>("OpenSession", request, &dv1::DataplaneAgent::Stub::OpenSession);
  }
  absl::StatusOr<dv1::SessionState> ExportState(uint64_t session) override {
    dv1::ExportStateRequest req;
    req.set_session_id(session);
    return Call<dv1::SessionState>("ExportState", req, &dv1::DataplaneAgent::Stub::ExportState);
  }
  absl::StatusOr<dv1::Session> ImportState(const dv1::SessionState& state,
                                           uint64_t fencing_token) override {
    dv1::ImportStateRequest req;
    *req.mutable_state() = state;
    req.set_fencing_token(fencing_token);
    return Call<dv1::Session>("ImportState", req, &dv1::DataplaneAgent::Stub::ImportState);
  }
  absl::StatusOr<dv1::Session> ReleaseSession(uint64_t session, uint64_t fencing_token) override {
    dv1::ReleaseSessionRequest req;
    req.set_session_id(session);
    req.set_fencing_token(fencing_token);
    SMIG_ASSIGN_OR_RETURN(dv1::ReleaseSessionResponse r,
                          Call<dv1::ReleaseSessionResponse>(
                              "ReleaseSession", req, &dv1::DataplaneAgent::Stub::ReleaseSession));
    return r.session();
  }
  absl::StatusOr<dv1::Session> GetSession(uint64_t session) override {
    dv1::GetSessionRequest req;
    req.set_session_id(session);
    return Call<dv1::Session>("GetSession", req, &dv1::DataplaneAgent::Stub::GetSession);
  }
  absl::StatusOr<std::vector<dv1::Session>> ListSessions() override {
    SMIG_ASSIGN_OR_RETURN(dv1::ListSessionsResponse r,
                          Call<dv1::ListSessionsResponse>("ListSessions", dv1::ListSessionsRequest(),
                                                          &dv1::DataplaneAgent::Stub::ListSessions));
    return std::vector<dv1::Session>(r.sessions().begin(), r.sessions().end());
  }
  absl::Status Ping() override {
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::min(options_.rpc_timeout, absl::Seconds(2)));
    dv1::ListSessionsResponse resp;
    grpc::Status s = stub_->ListSessions(&ctx, dv1::ListSessionsRequest(), &resp);
    if (s.ok()) return absl::OkStatus();
    // Any failure of this call means the agent cannot serve the SMM now, so UNAVAILABLE;
    // gRPC's own code stays in the text ("DEADLINE_EXCEEDED: Deadline Exceeded").
    return absl::UnavailableError(
        absl::StrCat(absl::StatusCodeToString(FromGrpcStatus(s).code()), ": ", s.error_message()));
  }
  absl::StatusOr<std::unique_ptr<ContiguityWatch>> WatchContiguity(uint64_t session) override {
    return std::make_unique<GrpcContiguityWatch>(*stub_, session);
  }

 private:
  template <typename Resp, typename Req, typename Method>
  absl::StatusOr<Resp> Call(absl::string_view name, const Req& req, Method method) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, options_.rpc_timeout);
    Resp resp;
    grpc::Status s = ((*stub_).*method)(&ctx, req, &resp);
    // Says which call to which server failed: "ExportState at edge-1 (10.0.0.1:7400): ...".
    SMIG_RETURN_IF_ERROR(FromGrpcStatus(s, absl::StrCat(name, " at ", id_, " (", address_, ")")));
    return resp;
  }

  std::string id_, address_;
  GrpcAgentOptions options_;
  std::unique_ptr<dv1::DataplaneAgent::Stub> stub_;
};

class GrpcAgentDirectory : public AgentDirectory {
 public:
  GrpcAgentDirectory(std::vector<v1::StaticServer> servers, const std::string& pmm,
                     GrpcAgentOptions options)
      : options_(options) {
    for (const v1::StaticServer& s : servers) addresses_[s.id()] = s.agent_address();
    if (!pmm.empty()) {
      pmm_ = pv1::Proximity::NewStub(options_.credentials.Channel(pmm));
    }
  }

  absl::StatusOr<std::shared_ptr<Agent>> Find(const std::string& server_id) override {
    absl::MutexLock lock(&mu_);
    if (!addresses_.contains(server_id) && pmm_) RefreshFromPmm();
    auto addr = addresses_.find(server_id);
    if (addr == addresses_.end()) {
      return absl::NotFoundError(absl::StrCat("server ", server_id, " is unknown",
                                              pmm_ ? " (not in the PMM's registry)" : ""));
    }
    // One channel per server, re-made if the registry moved it.
    std::shared_ptr<GrpcAgent>& agent = agents_[server_id];
    if (!agent || agent->address() != addr->second) {
      agent = std::make_shared<GrpcAgent>(server_id, addr->second, options_);
    }
    return agent;
  }

  absl::StatusOr<std::vector<std::string>> ListServers() override {
    absl::MutexLock lock(&mu_);
    if (pmm_) RefreshFromPmm();
    std::vector<std::string> ids;
    for (const auto& [id, address] : addresses_) ids.push_back(id);
    return ids;
  }

 private:
  void RefreshFromPmm() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    grpc::ClientContext ctx;
    SetDeadline(ctx, options_.rpc_timeout);
    pv1::ListServersResponse resp;
    if (!pmm_->ListServers(&ctx, pv1::ListServersRequest(), &resp).ok()) return;
    for (const pv1::Server& s : resp.servers()) addresses_[s.id()] = s.agent_address();
  }

  GrpcAgentOptions options_;
  std::unique_ptr<pv1::Proximity::Stub> pmm_;
  absl::Mutex mu_;
  std::map<std::string, std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<GrpcAgent>> agents_ ABSL_GUARDED_BY(mu_);
};

class PmmTargetPicker : public TargetPicker {
 public:
  PmmTargetPicker(const std::string& pmm, const GrpcAgentOptions& options)
      : timeout_(options.rpc_timeout), stub_(pv1::Proximity::NewStub(options.credentials.Channel(pmm))) {}

  absl::StatusOr<std::string> Pick(const v1::Session& session) override {
    grpc::ClientContext ctx;
    SetDeadline(ctx, timeout_);
    pv1::GetProximityRequest req;
    req.set_vehicle_id(session.vehicle_id());
    pv1::VehicleProximity p;
    SMIG_RETURN_IF_ERROR(FromGrpcStatus(stub_->GetProximity(&ctx, req, &p),
                                        absl::StrCat("PMM GetProximity(", session.vehicle_id(), ")")));
    for (const pv1::ServerProximity& sp : p.servers()) {
      if (sp.role() == pv1::ROLE_NEW_TARGET && sp.server_id() != session.server_id()) {
        return sp.server_id();
      }
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "no server is nearer to vehicle ", session.vehicle_id(), " than ", session.server_id()));
  }

 private:
  absl::Duration timeout_;
  std::unique_ptr<pv1::Proximity::Stub> stub_;
};

}  // namespace

bool IsFenced(const absl::Status& status) {
  return absl::IsFailedPrecondition(status) && absl::StrContains(status.message(), "fenced: ");
}

std::unique_ptr<AgentDirectory> MakeGrpcAgentDirectory(std::vector<v1::StaticServer> servers,
                                                       const std::string& pmm_address,
                                                       GrpcAgentOptions options) {
  return std::make_unique<GrpcAgentDirectory>(std::move(servers), pmm_address, options);
}

std::unique_ptr<TargetPicker> MakePmmTargetPicker(const std::string& pmm_address,
                                                  const GrpcAgentOptions& options) {
  if (pmm_address.empty()) return nullptr;
  return std::make_unique<PmmTargetPicker>(pmm_address, options);
}

}  // namespace smig::migrator
