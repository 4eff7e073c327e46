// EtcdClient: gRPC channels and stubs to the members of one etcd cluster, and unary calls
// that fail over between them. Shared by EtcdStore and LeaderElection; not a general etcd
// client.
//
//   EtcdClient etcd({"127.0.0.1:2379", "127.0.0.1:22379"}, absl::Seconds(2));
//   etcdserverpb::RangeRequest req;  req.set_key("/smig/x");
//   etcdserverpb::RangeResponse resp;
//   absl::Status s = etcd.Call("Range", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
//     return m.kv->Range(&ctx, req, &resp);
//   });
//   // UNAVAILABLE "etcd Range: 127.0.0.1:2379 unreachable: ..." if no member answers.
//
// A call starts at the member that answered last and moves to the next one only when the
// member cannot be reached (UNAVAILABLE, or a deadline that passed while its channel was not
// connected); every attempt has its own deadline. A write that fails with UNAVAILABLE or
// DEADLINE_EXCEEDED may still have happened.
//
// Channels reconnect after 100 ms at first and at most 1 s apart (gRPC's defaults grow to
// 120 s, far too slow for a store that restarts). Thread-safe; members live as long as the
// client.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "etcd/v3electionpb/v3election.grpc.pb.h"

namespace smig::store {

class EtcdClient {
 public:
  struct Member {
    std::string endpoint;  // host:port
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<v3electionpb::Election::Stub> election;
  };
  using Rpc = std::function<grpc::Status(Member&, grpc::ClientContext&)>;

  // `endpoints` must not be empty.
  EtcdClient(std::vector<std::string> endpoints, absl::Duration call_timeout);

  // Runs `rpc` as described above; `what` names the call in errors ("etcd <what>: ...").
  // `timeout` replaces the call timeout when set.
  absl::Status Call(absl::string_view what, const Rpc& rpc,
                    absl::Duration timeout = absl::ZeroDuration());

  // The member calls start at, for streams (which do not fail over by themselves).
  Member& preferred();
  // Moves preferred() on to the next member, after `member` failed.
  void Failed(const Member& member);

  absl::Duration call_timeout() const { return call_timeout_; }
  // "a:1, b:2", for messages.
  const std::string& endpoints() const { return endpoint_list_; }

 private:
  std::vector<std::unique_ptr<Member>> members_;
  std::string endpoint_list_;
  absl::Duration call_timeout_;
  std::atomic<size_t> preferred_{0};
};

// The end of the range of every key that starts with `prefix` (etcd's "prefix + 1");
// "\0" (every key) when `prefix` is empty or all 0xff.
std::string PrefixRangeEnd(absl::string_view prefix);

}  // namespace smig::store
