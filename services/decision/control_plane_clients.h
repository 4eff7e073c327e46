// What the MDM needs from the rest of the control plane, behind one small interface so the
// adapter and the automatic loop are tested with a fake: sessions and Migrate from the SMM,
// proximity from the PMM.
//
//   auto clients = GrpcControlPlaneClients::Create("pmm:7100", "smm:7300", ClientCredentials());
//   absl::StatusOr<migrator::v1::Session> s = FindSession(*clients, 42);   // NOT_FOUND names 42
//   absl::StatusOr<std::string> migration_id =
//       clients->Migrate(42, "edge-2", "edge-2 costs 0.61 vs ...", decision_id);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/replica_client.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "common/grpc_client.h"
#include "services/decision/decision_engine.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace smig::decision {

class ControlPlaneClients {
 public:
  virtual ~ControlPlaneClients() = default;

  // The SMM's sessions (ListSessions).
  virtual absl::StatusOr<std::vector<migrator::v1::Session>> ListSessions() = 0;
  // The PMM's view of one vehicle (GetProximity).
  virtual absl::StatusOr<proximity::v1::VehicleProximity> GetProximity(
      const std::string& vehicle_id) = 0;
  // Asks the SMM to move a session (trigger TRIGGER_AUTO); returns the migration id. The
  // same request_id returns the same migration, so a retried call never moves it twice.
  virtual absl::StatusOr<std::string> Migrate(uint64_t session_id, const std::string& target,
                                              const std::string& reason,
                                              const std::string& request_id) = 0;
  // Follows the PMM's WatchProximity for every vehicle, calling `on_update` (on the calling
  // thread) for each message. Blocks until the stream ends, returning why, or until
  // CancelWatch() is called from another thread (then CANCELLED).
  virtual absl::Status WatchProximity(
      const std::function<void(const proximity::v1::VehicleProximity&)>& on_update) = 0;
  // Ends a WatchProximity in progress and makes later ones return CANCELLED at once.
  virtual void CancelWatch() = 0;
};

// The one asked for among `sessions`; NOT_FOUND naming it if the SMM does not know it.
absl::StatusOr<migrator::v1::Session> FindSession(
    const std::vector<migrator::v1::Session>& sessions, uint64_t session_id);
// ListSessions, then FindSession.
absl::StatusOr<migrator::v1::Session> FindSession(ControlPlaneClients& clients,
                                                  uint64_t session_id);
// The sessions each server serves and the migrations in flight to each (a migrating
// session counts at its server until it has moved).
Occupancy OccupancyOf(const std::vector<migrator::v1::Session>& sessions);

// The real clients, over plaintext gRPC. An empty address makes every call to that service
// FAILED_PRECONDITION, so smig-decision still serves its policy and history without it.
// `migrator_address` may list several SMM replicas, comma-separated: Migrate goes to the
// leader, ListSessions to any (ReplicaClient, common/replica_client.h).
class GrpcControlPlaneClients final : public ControlPlaneClients {
 public:
  static std::unique_ptr<GrpcControlPlaneClients> Create(
      const std::string& proximity_address, const std::string& migrator_address,
      const ClientCredentials& credentials, absl::Duration rpc_timeout = absl::Seconds(5));

  absl::StatusOr<std::vector<migrator::v1::Session>> ListSessions() override;
  absl::StatusOr<proximity::v1::VehicleProximity> GetProximity(
      const std::string& vehicle_id) override;
  absl::StatusOr<std::string> Migrate(uint64_t session_id, const std::string& target,
                                      const std::string& reason,
                                      const std::string& request_id) override;
  absl::Status WatchProximity(
      const std::function<void(const proximity::v1::VehicleProximity&)>& on_update) override;
  void CancelWatch() override;

 private:
  GrpcControlPlaneClients() = default;
  void SetDeadline(grpc::ClientContext& ctx) const;

  absl::Duration rpc_timeout_;
  std::unique_ptr<proximity::v1::Proximity::Stub> pmm_;  // null: no proximity_address
  std::unique_ptr<ReplicaClient> smm_;  // null: no migrator_address
  absl::Mutex mu_;
  grpc::ClientContext* watch_ ABSL_GUARDED_BY(mu_) = nullptr;  // the stream in progress
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace smig::decision
