// Calls a replicated smig service (SMM or MDM replicas on one etcd: one leader, standbys)
// given all of its addresses: changes go to the leader, reads to any replica that answers.
// The one place where smigctl and the MDM's SMM client follow the leader.
//
//   ReplicaClient smm("SMM", SplitAddresses("unix:/run/smm-0.sock,unix:/run/smm-1.sock"),
//                     ClientCredentials());
//   grpc::Status s = smm.CallLeader([&](const std::shared_ptr<grpc::Channel>& ch,
//                                       const std::string& address) {
//     grpc::ClientContext ctx;   // one per attempt
//     ctx.set_deadline(...);
//     return migrator::v1::Migrator::NewStub(ch)->Migrate(&ctx, req, &resp);
//   });
//
// A call is tried on each address in turn, starting with the one that answered last. It
// moves on when the answer says "not here" (IsRetriable: UNAVAILABLE — no connection, no
// leader known, a takeover under way — or FAILED_PRECONDITION from a standby), and stops at
// the first other answer (OK or a real error). After a round of refusals it pauses (50 ms,
// doubling to 400 ms) and starts again, until `retry_budget` (3 s) has passed since the
// first attempt; then UNAVAILABLE naming every address and what each said. One address may
// name several replicas (Kubernetes: a headless Service, balanced round robin call by call):
// a change sent there is retried on a replica's refusal (IsReplicaRefusal), each attempt
// going to the next replica; a read, or a connection that fails, is one call. A changing call is only retried on answers that say it
// was not carried out, so retrying it is safe (a DEADLINE_EXCEEDED is never retried).
//
// Thread-safe; the channels live as long as the client. Channels reconnect within 1 s of a
// replica coming back (gRPC's reconnect backoff is capped), so a restarted replica is
// found again quickly.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "common/grpc_client.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace smig {

// "a, b,,c" -> {"a", "b", "c"}: a comma-separated address list (config fields such as
// `migrator_address`, smigctl's --smm/--mdm).
std::vector<std::string> SplitAddresses(absl::string_view list);

// Whether `s` says that this replica did not act and another one might: UNAVAILABLE, or a
// standby's FAILED_PRECONDITION ("... is a standby ...", "not the leader ...").
bool IsRetriable(const grpc::Status& s);

// Whether `s` is a replica's answer that it did not act because it does not lead: a
// standby's FAILED_PRECONDITION, or UNAVAILABLE "no ... replica leads now". Not a failure
// to connect.
bool IsReplicaRefusal(const grpc::Status& s);

class ReplicaClient {
 public:
  struct Options {
    absl::Duration retry_budget = absl::Seconds(3);
    absl::Duration first_pause = absl::Milliseconds(50);
    absl::Duration max_pause = absl::Milliseconds(400);
  };
  // One attempt on one replica: make a fresh grpc::ClientContext, call, return the status.
  using Call = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& address)>;

  // `service` names it in errors ("SMM"). `addresses` must not be empty.
  ReplicaClient(std::string service, std::vector<std::string> addresses,
                const ClientCredentials& credentials);
  ReplicaClient(std::string service, std::vector<std::string> addresses,
                const ClientCredentials& credentials, Options options);

  // A change: the leader's answer, or UNAVAILABLE "no <service> replica took the call
  // within 3s: <address>: <what it said>; ..." once the budget is spent.
  grpc::Status CallLeader(const Call& call);
  // A read: the first replica's answer that is not UNAVAILABLE.
  grpc::Status CallAny(const Call& call);

  const std::vector<std::string>& addresses() const { return addresses_; }
  // The address that answered last (the leader, after a CallLeader that succeeded).
  std::string last_address() const;
  // "a,b": every address, for messages.
  std::string address_list() const;

 private:
  grpc::Status Run(const Call& call, bool leader_only);

  const std::string service_;
  const std::vector<std::string> addresses_;
  const Options options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  mutable absl::Mutex mu_;
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace smig
