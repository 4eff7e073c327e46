// StoreMetrics: what a replicated control-plane service tells Prometheus about its store
// and its election, the same for every service (label service = decision, migrator, ...):
//   smig_leader{service}                  gauge, 1 while this replica leads, else 0
//   smig_leader_changes_total{service}    counter, terms this replica began leading
//   smig_store_errors_total{service,op}   counter, store calls that failed
//                                         (op = get | list | put | delete | apply)
// MeteredStore is a Store that counts its inner store's failures there.
//
//   StoreMetrics metrics(registry.get(), "decision");     // registry may be null
//   MeteredStore store(*etcd, metrics);                    // use `store`, not `*etcd`
//   election->SetListener(metrics.Observe({.on_gained = ..., .on_lost = ...}));
//
// Every series exists from the start (at 0), so rates and alerts see zeros, not gaps. A
// failure is any non-OK status, a fenced write (FAILED_PRECONDITION) included: it did not
// happen. Thread-safe. The registry must outlive the metrics, the metrics and the inner
// store the MeteredStore, and the metrics any listener Observe returned.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/store/election.h"
#include "common/store/store.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace smig::store {

class StoreMetrics {
 public:
  // The op label values of smig_store_errors_total.
  static constexpr absl::string_view kOps[] = {"get", "list", "put", "delete", "apply"};

  StoreMetrics(prometheus::Registry* registry, std::string service);
  StoreMetrics(const StoreMetrics&) = delete;
  StoreMetrics& operator=(const StoreMetrics&) = delete;

  // smig_leader; a change from 0 to 1 also counts in smig_leader_changes_total.
  void SetLeading(bool leading);
  // smig_store_errors_total{op}; `op` is one of kOps (any other is ignored).
  void CountError(absl::string_view op);
  // `inner` with SetLeading(true) before its on_gained and SetLeading(false) before its
  // on_lost.
  Election::Listener Observe(Election::Listener inner);

  const std::string& service() const { return service_; }

 private:
  const std::string service_;
  absl::Mutex mu_;
  prometheus::Gauge* leader_ = nullptr;
  prometheus::Counter* changes_ = nullptr;
  absl::flat_hash_map<std::string, prometheus::Counter*> errors_;
};

class MeteredStore final : public Store {
 public:
  MeteredStore(Store& inner, StoreMetrics& metrics) : inner_(inner), metrics_(metrics) {}

  absl::StatusOr<std::optional<Entry>> Get(const std::string& key) override;
  absl::StatusOr<std::vector<Entry>> List(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              const Fence& fence) override;
  absl::Status Delete(const std::string& key, const Fence& fence) override;
  absl::StatusOr<int64_t> Apply(absl::Span<const Write> writes, const Fence& fence) override;

 private:
  Store& inner_;
  StoreMetrics& metrics_;
};

}  // namespace smig::store
