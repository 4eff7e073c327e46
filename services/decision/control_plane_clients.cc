#include "services/decision/control_plane_clients.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/replica_client.h"
#include "common/status_macros.h"

namespace smig::decision {

namespace {

absl::Status NotConfigured(absl::string_view key) {
  return absl::FailedPreconditionError(absl::StrCat("smig-decision has no ", key, " configured"));
}

}  // namespace

absl::StatusOr<migrator::v1::Session> FindSession(
    const std::vector<migrator::v1::Session>& sessions, uint64_t session_id) {
  for (const migrator::v1::Session& s : sessions) {
    if (s.session_id() == session_id) return s;
  }
  return absl::NotFoundError(absl::StrCat("session ", session_id, " is not known to the SMM"));
}

absl::StatusOr<migrator::v1::Session> FindSession(ControlPlaneClients& clients,
                                                  uint64_t session_id) {
  SMIG_ASSIGN_OR_RETURN(std::vector<migrator::v1::Session> sessions, clients.ListSessions());
  return FindSession(sessions, session_id);
}

Occupancy OccupancyOf(const std::vector<migrator::v1::Session>& sessions) {
  Occupancy o;
  for (const migrator::v1::Session& s : sessions) {
    ++o.servers[s.server_id()].serving;
    if (!s.migration_id().empty() && !s.migration_to_server_id().empty()) {
      ++o.servers[s.migration_to_server_id()].arriving;
    }
  }
  return o;
}

std::unique_ptr<GrpcControlPlaneClients> GrpcControlPlaneClients::Create(
    const std::string& proximity_address, const std::string& migrator_address,
    const ClientCredentials& credentials, absl::Duration rpc_timeout) {
  std::unique_ptr<GrpcControlPlaneClients> c(new GrpcControlPlaneClients());
  c->rpc_timeout_ = rpc_timeout;
  if (!proximity_address.empty()) {
    c->pmm_ = proximity::v1::Proximity::NewStub(credentials.Channel(proximity_address));
  }
  if (std::vector<std::string> smms = SplitAddresses(migrator_address); !smms.empty()) {
    c->smm_ = std::make_unique<ReplicaClient>("SMM", std::move(smms), credentials);
  }
  return c;
}

void GrpcControlPlaneClients::SetDeadline(grpc::ClientContext& ctx) const {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
}

absl::StatusOr<std::vector<migrator::v1::Session>> GrpcControlPlaneClients::ListSessions() {
  if (smm_ == nullptr) return NotConfigured("migrator_address");
  migrator::v1::ListSessionsResponse resp;
  grpc::Status s = smm_->CallAny([&](const std::shared_ptr<grpc::Channel>& ch, const std::string&) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    resp.Clear();
    return migrator::v1::Migrator::NewStub(ch)->ListSessions(&ctx, {}, &resp);
  });
  SMIG_RETURN_IF_ERROR(FromGrpcStatus(s, "SMM ListSessions"));
  return std::vector<migrator::v1::Session>(resp.sessions().begin(), resp.sessions().end());
}

absl::StatusOr<proximity::v1::VehicleProximity> GrpcControlPlaneClients::GetProximity(
    const std::string& vehicle_id) {
  if (pmm_ == nullptr) return NotConfigured("proximity_address");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  proximity::v1::GetProximityRequest req;
  req.set_vehicle_id(vehicle_id);
  proximity::v1::VehicleProximity resp;
  SMIG_RETURN_IF_ERROR(FromGrpcStatus(pmm_->GetProximity(&ctx, req, &resp),
                                      absl::StrCat("PMM GetProximity(", vehicle_id, ")")));
  return resp;
}

absl::StatusOr<std::string> GrpcControlPlaneClients::Migrate(uint64_t session_id,
                                                             const std::string& target,
                                                             const std::string& reason,
                                                             const std::string& request_id) {
  if (smm_ == nullptr) return NotConfigured("migrator_address");
  migrator::v1::MigrateRequest req;
  req.set_session_id(session_id);
  req.set_target_server_id(target);
  req.set_reason(reason);
  req.set_request_id(request_id);
  req.set_trigger(migrator::v1::TRIGGER_AUTO);
  migrator::v1::Migration resp;
  // To the SMM leader, whichever replica that is (a standby's refusal moves on).
  grpc::Status s = smm_->CallLeader([&](const std::shared_ptr<grpc::Channel>& ch,
                                        const std::string&) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    return migrator::v1::Migrator::NewStub(ch)->Migrate(&ctx, req, &resp);
  });
  SMIG_RETURN_IF_ERROR(
      FromGrpcStatus(s, absl::StrCat("SMM Migrate(session ", session_id, ")")));
  return resp.id();
}

absl::Status GrpcControlPlaneClients::WatchProximity(
    const std::function<void(const proximity::v1::VehicleProximity&)>& on_update) {
  if (pmm_ == nullptr) return NotConfigured("proximity_address");
  grpc::ClientContext ctx;  // no deadline: the stream lasts as long as both sides do
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return absl::CancelledError("watch cancelled");
    watch_ = &ctx;
  }
  proximity::v1::WatchProximityRequest req;  // empty vehicle_id: every vehicle
  std::unique_ptr<grpc::ClientReader<proximity::v1::VehicleProximity>> reader =
      pmm_->WatchProximity(&ctx, req);
  proximity::v1::VehicleProximity update;
  while (reader->Read(&update)) on_update(update);
  grpc::Status s = reader->Finish();
  absl::MutexLock lock(&mu_);
  watch_ = nullptr;
  if (cancelled_) return absl::CancelledError("watch cancelled");
  if (s.ok()) return absl::UnavailableError("PMM WatchProximity: the PMM ended the stream");
  return FromGrpcStatus(s, "PMM WatchProximity");
}

void GrpcControlPlaneClients::CancelWatch() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (watch_ != nullptr) watch_->TryCancel();
}

}  // namespace smig::decision
