#include "common/store/etcd_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/logging.h"

namespace smig::store {
namespace {

std::shared_ptr<grpc::Channel> NewChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 100);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

EtcdClient::EtcdClient(std::vector<std::string> endpoints, absl::Duration call_timeout)
    : endpoint_list_(absl::StrJoin(endpoints, ", ")), call_timeout_(call_timeout) {
  CHECK(!endpoints.empty()) << "EtcdClient needs at least one endpoint";
  for (std::string& e : endpoints) {
    auto m = std::make_unique<Member>();
    m->endpoint = std::move(e);
    m->channel = NewChannel(m->endpoint);
    m->kv = etcdserverpb::KV::NewStub(m->channel);
    m->lease = etcdserverpb::Lease::NewStub(m->channel);
    m->election = v3electionpb::Election::NewStub(m->channel);
    members_.push_back(std::move(m));
  }
}

EtcdClient::Member& EtcdClient::preferred() { return *members_[preferred_ % members_.size()]; }

void EtcdClient::Failed(const Member& member) {
  size_t at = preferred_.load();
  // Only the first of several concurrent failures of one member moves on.
  if (members_[at % members_.size()].get() == &member) {
    preferred_.compare_exchange_strong(at, (at + 1) % members_.size());
  }
}

absl::Status EtcdClient::Call(absl::string_view what, const Rpc& rpc, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) timeout = call_timeout_;
  std::vector<std::string> unreachable;
  for (size_t i = 0; i < members_.size(); ++i) {
    Member& m = preferred();
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    grpc::Status s = rpc(m, ctx);
    if (s.ok()) return absl::OkStatus();
    // A deadline that passed before the channel ever connected is the member's absence,
    // not a slow answer.
    bool absent = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                  (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                   m.channel->GetState(false) != GRPC_CHANNEL_READY);
    if (!absent) return FromGrpcStatus(s, absl::StrCat("etcd ", what, " at ", m.endpoint));
    VLOG(1) << "etcd " << what << ": " << m.endpoint << " unreachable: " << s.error_message();
    unreachable.push_back(absl::StrCat(m.endpoint, " unreachable: ", s.error_message()));
    Failed(m);
  }
  return absl::UnavailableError(absl::StrCat("etcd ", what, ": ", absl::StrJoin(unreachable, "; ")));
}

std::string PrefixRangeEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace smig::store
