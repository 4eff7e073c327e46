#include "common/replica_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace smig {

std::vector<std::string> SplitAddresses(absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

bool IsRetriable(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) return true;
  if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION) return false;
  const std::string& m = s.error_message();
  return absl::StrContains(m, "is a standby") || absl::StrContains(m, "not the leader");
}

bool IsReplicaRefusal(const grpc::Status& s) {
  const std::string& m = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::FAILED_PRECONDITION:
      return IsRetriable(s);
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StrContains(m, "replica leads now");
    default:
      return false;
  }
}

ReplicaClient::ReplicaClient(std::string service, std::vector<std::string> addresses,
                             const ClientCredentials& credentials)
    : ReplicaClient(std::move(service), std::move(addresses), credentials, Options()) {}

ReplicaClient::ReplicaClient(std::string service, std::vector<std::string> addresses,
                             const ClientCredentials& credentials, Options options)
    : service_(std::move(service)), addresses_(std::move(addresses)), options_(options) {
  grpc::ChannelArguments args;
  // A replica that was killed and restarted is found again within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // An address that names several replicas (a Kubernetes headless Service: one DNS name,
  // every ready pod's IP) is balanced call by call, so a retry after a standby's refusal
  // reaches the next replica. One IP or one unix socket is one backend either way.
  args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  for (const std::string& a : addresses_) {
    channels_.push_back(credentials.Channel(a, args));
  }
}

std::string ReplicaClient::last_address() const {
  absl::MutexLock lock(&mu_);
  return addresses_.empty() ? "" : addresses_[preferred_];
}

std::string ReplicaClient::address_list() const { return absl::StrJoin(addresses_, ","); }

grpc::Status ReplicaClient::CallLeader(const Call& call) { return Run(call, true); }
grpc::Status ReplicaClient::CallAny(const Call& call) { return Run(call, false); }

grpc::Status ReplicaClient::Run(const Call& call, bool leader_only) {
  if (addresses_.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("no ", service_, " address configured"));
  }
  // One address may name several replicas (round robin, above): a round tries it twice, so
  // that a standby's refusal is followed at once by a call to the next one. Only a replica's
  // own refusal is retried there: "cannot connect" to the one address is answered at once.
  const bool one = addresses_.size() == 1;
  const size_t round = one ? 2 : addresses_.size();
  const absl::Time end = absl::Now() + options_.retry_budget;
  absl::Duration pause = options_.first_pause;
  std::vector<std::string> said(addresses_.size());
  size_t start;
  {
    absl::MutexLock lock(&mu_);
    start = preferred_;
  }
  for (;;) {
    for (size_t k = 0; k < round; ++k) {
      const size_t i = (start + k) % addresses_.size();
      grpc::Status s = call(channels_[i], addresses_[i]);
      const bool refused = one           ? leader_only && IsReplicaRefusal(s)
                           : leader_only ? IsRetriable(s)
                                         : s.error_code() == grpc::StatusCode::UNAVAILABLE;
      if (!refused) {
        absl::MutexLock lock(&mu_);
        preferred_ = i;
        return s;
      }
      said[i] = absl::StrCat(addresses_[i], ": ", s.error_message());
    }
    const absl::Time now = absl::Now();
    if (now + pause > end) break;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, options_.max_pause);
  }
  return grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      absl::StrCat("no ", service_, " replica ", leader_only ? "led and took" : "answered",
                   " the call within ", absl::FormatDuration(options_.retry_budget), ": ",
                   absl::StrJoin(said, "; ")));
}

}  // namespace smig
