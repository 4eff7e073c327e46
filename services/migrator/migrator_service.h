// The SMM's gRPC adapter: smig.migrator.v1.Migrator over a MigratorEngine. It converts
// nothing but protos and status codes (common/grpc_status.h, one by one).
//
//   MigratorService service(engine);
//   GrpcServer::Start(options, {&service}, registry);
#pragma once

#include "services/migrator/migrator_engine.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"

namespace smig::migrator {

class MigratorService final : public v1::Migrator::Service {
 public:
  explicit MigratorService(MigratorEngine& engine) : engine_(engine) {}

  grpc::Status CreateSession(grpc::ServerContext*, const v1::CreateSessionRequest* req,
                             v1::Session* resp) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest*,
                            v1::ListSessionsResponse* resp) override;
  grpc::Status Migrate(grpc::ServerContext*, const v1::MigrateRequest* req,
                       v1::Migration* resp) override;
  grpc::Status GetMigration(grpc::ServerContext*, const v1::GetMigrationRequest* req,
                            v1::Migration* resp) override;
  grpc::Status ListMigrations(grpc::ServerContext*, const v1::ListMigrationsRequest* req,
                              v1::ListMigrationsResponse* resp) override;
  grpc::Status WatchMigration(grpc::ServerContext* ctx, const v1::WatchMigrationRequest* req,
                              grpc::ServerWriter<v1::Migration>* writer) override;
  grpc::Status CancelMigration(grpc::ServerContext*, const v1::CancelMigrationRequest* req,
                               v1::Migration* resp) override;

 private:
  MigratorEngine& engine_;
};

}  // namespace smig::migrator
