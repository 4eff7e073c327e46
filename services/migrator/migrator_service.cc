#include "services/migrator/migrator_service.h"

#include <algorithm>

#include "common/grpc_status.h"

namespace smig::migrator {

grpc::Status MigratorService::CreateSession(grpc::ServerContext*,
                                            const v1::CreateSessionRequest* req,
                                            v1::Session* resp) {
  return Reply(engine_.CreateSession(*req), resp);
}

grpc::Status MigratorService::ListSessions(grpc::ServerContext*,
                                           const v1::ListSessionsRequest* req,
                                           v1::ListSessionsResponse* resp) {
  absl::StatusOr<std::vector<v1::Session>> sessions = engine_.ListSessions();
  if (!sessions.ok()) return ToGrpcStatus(sessions.status());
  std::sort(sessions->begin(), sessions->end(), [](const v1::Session& a, const v1::Session& b) {
    return a.session_id() < b.session_id();
  });
  uint32_t matched = 0;
  for (v1::Session& s : *sessions) {
    if (!req->vehicle_id().empty() && s.vehicle_id() != req->vehicle_id()) continue;
    if (!req->server_id().empty() && s.server_id() != req->server_id() &&
        s.migration_to_server_id() != req->server_id()) {
      continue;
    }
    if (req->limit() == 0 || matched < req->limit()) *resp->add_sessions() = std::move(s);
    ++matched;
  }
  resp->set_matched(matched);
  return grpc::Status::OK;
}

grpc::Status MigratorService::Migrate(grpc::ServerContext*, const v1::MigrateRequest* req,
                                      v1::Migration* resp) {
  return Reply(engine_.Migrate(*req), resp);
}

grpc::Status MigratorService::GetMigration(grpc::ServerContext*,
                                           const v1::GetMigrationRequest* req,
                                           v1::Migration* resp) {
  return Reply(engine_.GetMigration(req->migration_id()), resp);
}

grpc::Status MigratorService::ListMigrations(grpc::ServerContext*,
                                             const v1::ListMigrationsRequest* req,
                                             v1::ListMigrationsResponse* resp) {
  absl::StatusOr<std::vector<v1::Migration>> migrations = engine_.ListMigrations(req->session_id());
  if (!migrations.ok()) return ToGrpcStatus(migrations.status());
  for (v1::Migration& m : *migrations) *resp->add_migrations() = std::move(m);
  return grpc::Status::OK;
}

grpc::Status MigratorService::WatchMigration(grpc::ServerContext* ctx,
                                             const v1::WatchMigrationRequest* req,
                                             grpc::ServerWriter<v1::Migration>* writer) {
  uint64_t seen = 0;
  while (!ctx->IsCancelled()) {
    absl::StatusOr<std::optional<v1::Migration>> m =
        engine_.WaitForChange(req->migration_id(), seen, absl::Milliseconds(200));
    if (!m.ok()) return ToGrpcStatus(m.status());
    if (!m->has_value()) continue;
    if (!writer->Write(**m)) break;
    if ((*m)->phase() == v1::PHASE_DONE || (*m)->phase() == v1::PHASE_ROLLED_BACK) break;
  }
  return grpc::Status::OK;
}

grpc::Status MigratorService::CancelMigration(grpc::ServerContext*,
                                              const v1::CancelMigrationRequest* req,
                                              v1::Migration* resp) {
  return Reply(engine_.CancelMigration(req->migration_id(), req->reason()), resp);
}

}  // namespace smig::migrator
