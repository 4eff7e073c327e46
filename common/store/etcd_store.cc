#include "common/store/etcd_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace smig::store {
namespace {

namespace pb = ::etcdserverpb;

constexpr int64_t kPageSize = 1000;

absl::Status CheckKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Create(Options options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("EtcdStore: no endpoints");
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("EtcdStore: call_timeout must be > 0");
  }
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(options)));
}

EtcdStore::EtcdStore(Options options)
    : prefix_(std::move(options.prefix)),
      etcd_(std::move(options.endpoints), options.call_timeout) {}

Entry EtcdStore::ToEntry(const mvccpb::KeyValue& kv) const {
  std::string key = kv.key();
  if (absl::StartsWith(key, prefix_)) key.erase(0, prefix_.size());
  return Entry{std::move(key), kv.value(), kv.create_revision(), kv.mod_revision()};
}

absl::StatusOr<std::optional<Entry>> EtcdStore::Get(const std::string& key) {
  SMIG_RETURN_IF_ERROR(CheckKey(key));
  pb::RangeRequest req;
  req.set_key(prefix_ + key);
  pb::RangeResponse resp;
  SMIG_RETURN_IF_ERROR(etcd_.Call("Range", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.kv->Range(&ctx, req, &resp);
  }));
  if (resp.kvs_size() == 0) return std::nullopt;
  return ToEntry(resp.kvs(0));
}

absl::StatusOr<std::vector<Entry>> EtcdStore::List(const std::string& prefix) {
  std::string begin = prefix_ + prefix;
  pb::RangeRequest req;
  req.set_key(begin);
  req.set_range_end(PrefixRangeEnd(begin));
  req.set_limit(kPageSize);
  std::vector<Entry> out;
  // Bounded: every page but the last holds kPageSize keys and moves `key` past them.
  while (true) {
    pb::RangeResponse resp;
    SMIG_RETURN_IF_ERROR(etcd_.Call("Range", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
      return m.kv->Range(&ctx, req, &resp);
    }));
    for (const mvccpb::KeyValue& kv : resp.kvs()) out.push_back(ToEntry(kv));
    if (!resp.more() || resp.kvs_size() == 0) break;
    // The next page starts right after the last key, at the first page's revision.
    req.set_key(resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0'));
    if (req.revision() == 0) req.set_revision(resp.header().revision());
  }
  return out;
}

absl::StatusOr<int64_t> EtcdStore::Put(const std::string& key, const std::string& value,
                                       const Fence& fence) {
  if (!fence.empty()) return Apply({Write::Put(key, value)}, fence);
  SMIG_RETURN_IF_ERROR(CheckKey(key));
  pb::PutRequest req;
  req.set_key(prefix_ + key);
  req.set_value(value);
  pb::PutResponse resp;
  SMIG_RETURN_IF_ERROR(etcd_.Call("Put", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.kv->Put(&ctx, req, &resp);
  }));
  return resp.header().revision();
}

absl::Status EtcdStore::Delete(const std::string& key, const Fence& fence) {
  if (!fence.empty()) return Apply({Write::Delete(key)}, fence).status();
  SMIG_RETURN_IF_ERROR(CheckKey(key));
  pb::DeleteRangeRequest req;
  req.set_key(prefix_ + key);
  pb::DeleteRangeResponse resp;
  return etcd_.Call("DeleteRange", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.kv->DeleteRange(&ctx, req, &resp);
  });
}

absl::StatusOr<int64_t> EtcdStore::Apply(absl::Span<const Write> writes, const Fence& fence) {
  SMIG_RETURN_IF_ERROR(ValidateWrites(writes));
  pb::TxnRequest req;
  if (!fence.empty()) {
    pb::Compare* c = req.add_compare();
    c->set_result(pb::Compare::EQUAL);
    c->set_target(pb::Compare::CREATE);
    c->set_key(fence.leader_key);
    c->set_create_revision(fence.leader_revision);
    // When the fence fails, read the leader key to say what etcd has instead.
    req.add_failure()->mutable_request_range()->set_key(fence.leader_key);
  }
  for (const Write& w : writes) {
    pb::RequestOp* op = req.add_success();
    if (w.kind == Write::Kind::kPut) {
      op->mutable_request_put()->set_key(prefix_ + w.key);
      op->mutable_request_put()->set_value(w.value);
    } else {
      op->mutable_request_delete_range()->set_key(prefix_ + w.key);
    }
  }
  pb::TxnResponse resp;
  SMIG_RETURN_IF_ERROR(etcd_.Call("Txn", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.kv->Txn(&ctx, req, &resp);
  }));
  if (resp.succeeded()) return resp.header().revision();
  std::string now = "it does not exist";
  if (resp.responses_size() > 0 && resp.responses(0).response_range().kvs_size() > 0) {
    now = absl::StrCat("it has create revision ",
                       resp.responses(0).response_range().kvs(0).create_revision());
  }
  return absl::FailedPreconditionError(
      absl::StrCat("fenced: leader key ", fence.leader_key, " with create revision ",
                   fence.leader_revision, " no longer leads (", now,
                   "); the write was not made"));
}

}  // namespace smig::store
