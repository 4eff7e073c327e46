// A service's store and election, from the `store` field of its config
// (smig.common.v1.StoreConfig, proto/smig/common/v1/store.proto). Service-neutral: the MDM
// and the SMM make theirs the same way.
//
//   SMIG_ASSIGN_OR_RETURN(std::unique_ptr<ServiceStore> ss,
//                         ServiceStore::Open(config.store(), "decision", registry.get()));
//   if (ss == nullptr) { ... }            // no store configured: one in-memory replica
//   Store& store = ss->store();           // etcd, under the prefix, failures counted
//   ss->Start({.on_gained = ..., .on_lost = ...});   // campaigns in "<prefix>leader/decision"
//   if (auto term = ss->election().current()) store.Put("decision/x", v, term->fence());
//
// A ServiceStore owns the EtcdStore, the LeaderElection and the StoreMetrics
// (common/store/store_metrics.h: smig_leader, smig_leader_changes_total and
// smig_store_errors_total, labelled service="<service>"). Destroying it stops the election
// (resigning, so a standby takes over at once). The registry and the clock must outlive it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/store/etcd_store.h"
#include "common/store/leader_election.h"
#include "common/store/store_metrics.h"
#include "smig/common/v1/store.pb.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace smig::store {

inline constexpr char kDefaultPrefix[] = "/smig/";

// Whether the config names a store (at least one endpoint).
bool StoreConfigured(const common::v1::StoreConfig& config);
// OK for an empty config (no store) and for a usable one; otherwise INVALID_ARGUMENT naming
// the field as "store.<field>" and saying what is wrong: an endpoint that is not host:port
// (or has a scheme), a prefix that does not start and end with "/", a lease_ttl that is not
// a whole number of seconds >= 1 s, a call_timeout <= 0, or any field set without endpoints.
absl::Status ValidateStoreConfig(const common::v1::StoreConfig& config);
// "<hostname>:<pid>": unique among the replicas of one machine, and readable.
std::string DefaultReplicaId();
// "<prefix>leader/<service>": the election of a service's replicas ("/smig/leader/decision"
// with the default prefix).
std::string ElectionName(const common::v1::StoreConfig& config, absl::string_view service);

class ServiceStore {
 public:
  // nullptr (and OK) when `config` names no store; INVALID_ARGUMENT as ValidateStoreConfig.
  // Connects to nothing yet: etcd may be down now and come up later.
  static absl::StatusOr<std::unique_ptr<ServiceStore>> Open(
      const common::v1::StoreConfig& config, absl::string_view service,
      prometheus::Registry* registry, Clock& clock = Clock::Real());
  ~ServiceStore();

  // Sets the election's listener, behind the leader metrics, and starts campaigning.
  // Once only.
  void Start(Election::Listener listener);

  Store& store() { return metered_; }
  LeaderElection& election() { return *election_; }
  StoreMetrics& metrics() { return metrics_; }
  const std::string& replica_id() const { return replica_id_; }
  const std::string& election_name() const { return election_name_; }
  const std::string& prefix() const { return etcd_->prefix(); }

 private:
  ServiceStore(std::string service, prometheus::Registry* registry,
               std::unique_ptr<EtcdStore> etcd);

  StoreMetrics metrics_;
  std::unique_ptr<EtcdStore> etcd_;
  MeteredStore metered_;
  std::unique_ptr<LeaderElection> election_;
  std::string replica_id_;
  std::string election_name_;
};

}  // namespace smig::store
