// EtcdStore: the Store (common/store/store.h) on an etcd v3 cluster, over gRPC.
//
//   absl::StatusOr<std::unique_ptr<EtcdStore>> store =
//       EtcdStore::Create({.endpoints = {"127.0.0.1:2379"}, .prefix = "/smig/"});
//   (*store)->Put("policy", bytes, Fence{});      // etcd key "/smig/policy"
//   (*store)->Put("journal/7", j, leadership.fence());
//
// Every key is stored under `prefix`; List and Get return keys without it. A fenced write
// is one etcd Txn: if the fence's leader key still has create revision leader_revision, the
// writes; otherwise nothing, and FAILED_PRECONDITION "fenced: ..." with the key, the
// revision the fence expected and the one etcd has. List reads in pages of 1000 keys, all
// at the revision of the first page.
//
// Each call has a deadline of `call_timeout` per endpoint tried; endpoints are tried in
// turn while they cannot be reached (etcd_client.h), and when none can be, UNAVAILABLE
// names them. Creating the store does not connect. Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/store/etcd_client.h"
#include "common/store/store.h"

namespace smig::store {

class EtcdStore final : public Store {
 public:
  struct Options {
    std::vector<std::string> endpoints;  // host:port of etcd members (client URLs)
    std::string prefix = "/smig/";
    absl::Duration call_timeout = absl::Seconds(2);
  };

  // INVALID_ARGUMENT without endpoints, or with a call_timeout <= 0.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Create(Options options);

  absl::StatusOr<std::optional<Entry>> Get(const std::string& key) override;
  absl::StatusOr<std::vector<Entry>> List(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              const Fence& fence) override;
  absl::Status Delete(const std::string& key, const Fence& fence) override;
  absl::StatusOr<int64_t> Apply(absl::Span<const Write> writes, const Fence& fence) override;

  const std::string& prefix() const { return prefix_; }

 private:
  explicit EtcdStore(Options options);
  Entry ToEntry(const mvccpb::KeyValue& kv) const;

  std::string prefix_;
  EtcdClient etcd_;
};

}  // namespace smig::store
