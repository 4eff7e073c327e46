#include "common/store/store_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace smig::store {

StoreMetrics::StoreMetrics(prometheus::Registry* registry, std::string service)
    : service_(std::move(service)) {
  if (registry == nullptr) return;
  leader_ = &prometheus::BuildGauge()
                 .Name("smig_leader")
                 .Help("1 while this replica leads its service's election, else 0")
                 .Register(*registry)
                 .Add({{"service", service_}});
  changes_ = &prometheus::BuildCounter()
                  .Name("smig_leader_changes_total")
                  .Help("Terms this replica began leading its service's election")
                  .Register(*registry)
                  .Add({{"service", service_}});
  auto& errors = prometheus::BuildCounter()
                     .Name("smig_store_errors_total")
                     .Help("Control-plane store (etcd) calls that failed, by operation")
                     .Register(*registry);
  for (absl::string_view op : kOps) {
    errors_[op] = &errors.Add({{"service", service_}, {"op", std::string(op)}});
  }
}

void StoreMetrics::SetLeading(bool leading) {
  if (leader_ == nullptr) return;
  absl::MutexLock lock(&mu_);  // "was it 0?" and the set are one step
  const bool rose = leading && leader_->Value() == 0;
  leader_->Set(leading ? 1 : 0);
  if (rose) changes_->Increment();
}

void StoreMetrics::CountError(absl::string_view op) {
  if (auto it = errors_.find(op); it != errors_.end()) it->second->Increment();
}

Election::Listener StoreMetrics::Observe(Election::Listener inner) {
  return {.on_gained =
              [this, f = std::move(inner.on_gained)](const Leadership& l) {
                SetLeading(true);
                if (f) f(l);
              },
          .on_lost =
              [this, f = std::move(inner.on_lost)](const Leadership& l, const absl::Status& why) {
                SetLeading(false);
                if (f) f(l, why);
              }};
}

namespace {

template <typename T>
T Counted(T result, StoreMetrics& metrics, absl::string_view op) {
  if (!result.ok()) metrics.CountError(op);
  return result;
}

}  // namespace

absl::StatusOr<std::optional<Entry>> MeteredStore::Get(const std::string& key) {
  return Counted(inner_.Get(key), metrics_, "get");
}

absl::StatusOr<std::vector<Entry>> MeteredStore::List(const std::string& prefix) {
  return Counted(inner_.List(prefix), metrics_, "list");
}

absl::StatusOr<int64_t> MeteredStore::Put(const std::string& key, const std::string& value,
                                          const Fence& fence) {
  return Counted(inner_.Put(key, value, fence), metrics_, "put");
}

absl::Status MeteredStore::Delete(const std::string& key, const Fence& fence) {
  return Counted(inner_.Delete(key, fence), metrics_, "delete");
}

absl::StatusOr<int64_t> MeteredStore::Apply(absl::Span<const Write> writes, const Fence& fence) {
  return Counted(inner_.Apply(writes, fence), metrics_, "apply");
}

}  // namespace smig::store
