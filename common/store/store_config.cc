#include "common/store/store_config.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::store {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("store.", field, ": ", why));
}

// host:port, host a name, an IPv4 address or a bracketed IPv6 one; no scheme, no path.
absl::Status CheckEndpoint(int i, const std::string& e) {
  const std::string field = absl::StrCat("endpoints[", i, "]");
  if (absl::StrContains(e, "://")) {
    return Invalid(field, absl::StrCat("\"", e, "\" has a scheme; want host:port (2379 is etcd's "
                                            "client port), as in \"10.0.0.7:2379\""));
  }
  const size_t colon = e.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(e.substr(colon + 1), &port) ||
      port < 1 || port > 65535 || absl::StrContains(e, "/")) {
    return Invalid(field, absl::StrCat("\"", e, "\" is not host:port, as in \"10.0.0.7:2379\""));
  }
  return absl::OkStatus();
}

}  // namespace

bool StoreConfigured(const common::v1::StoreConfig& config) {
  return !config.endpoints().empty();
}

absl::Status ValidateStoreConfig(const common::v1::StoreConfig& c) {
  if (c.endpoints().empty()) {
    for (auto [field, set] : {std::pair{"prefix", !c.prefix().empty()},
                              std::pair{"lease_ttl", c.has_lease_ttl()},
                              std::pair{"replica_id", !c.replica_id().empty()},
                              std::pair{"call_timeout", c.has_call_timeout()}}) {
      if (set) {
        return Invalid("endpoints", absl::StrCat("empty, but store.", field,
                                                 " is set: name etcd's endpoints, or leave "
                                                 "store out for one in-memory replica"));
      }
    }
    return absl::OkStatus();
  }
  for (int i = 0; i < c.endpoints_size(); ++i) {
    SMIG_RETURN_IF_ERROR(CheckEndpoint(i, c.endpoints(i)));
  }
  if (!c.prefix().empty() &&
      (!absl::StartsWith(c.prefix(), "/") || !absl::EndsWith(c.prefix(), "/"))) {
    return Invalid("prefix", absl::StrCat("\"", c.prefix(), "\" must start and end with \"/\", "
                                          "as in \"/smig/\""));
  }
  if (c.has_lease_ttl()) {
    const absl::Duration ttl = FromProto(c.lease_ttl());
    if (ttl < absl::Seconds(1) || ttl % absl::Seconds(1) != absl::ZeroDuration()) {
      return Invalid("lease_ttl", absl::StrCat(absl::FormatDuration(ttl),
                                               " is not a whole number of seconds >= 1s "
                                               "(etcd's leases count in seconds)"));
    }
  }
  if (c.has_call_timeout() && FromProto(c.call_timeout()) <= absl::ZeroDuration()) {
    return Invalid("call_timeout",
                   absl::StrCat(absl::FormatDuration(FromProto(c.call_timeout())), " must be > 0"));
  }
  return absl::OkStatus();
}

std::string DefaultReplicaId() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return absl::StrCat("localhost:", getpid());
  }
  return absl::StrCat(host, ":", getpid());
}

std::string ElectionName(const common::v1::StoreConfig& config, absl::string_view service) {
  return absl::StrCat(config.prefix().empty() ? kDefaultPrefix : config.prefix(), "leader/",
                      service);
}

absl::StatusOr<std::unique_ptr<ServiceStore>> ServiceStore::Open(
    const common::v1::StoreConfig& config, absl::string_view service,
    prometheus::Registry* registry, Clock& clock) {
  SMIG_RETURN_IF_ERROR(ValidateStoreConfig(config));
  if (!StoreConfigured(config)) return nullptr;
  const std::vector<std::string> endpoints(config.endpoints().begin(), config.endpoints().end());
  EtcdStore::Options store_options{
      .endpoints = endpoints,
      .prefix = config.prefix().empty() ? kDefaultPrefix : config.prefix()};
  LeaderElection::Options election_options{
      .endpoints = endpoints,
      .name = ElectionName(config, service),
      .id = config.replica_id().empty() ? DefaultReplicaId() : config.replica_id()};
  if (config.has_lease_ttl()) election_options.ttl = FromProto(config.lease_ttl());
  if (config.has_call_timeout()) {
    store_options.call_timeout = FromProto(config.call_timeout());
    election_options.call_timeout = store_options.call_timeout;
  }
  SMIG_ASSIGN_OR_RETURN(std::unique_ptr<EtcdStore> etcd, EtcdStore::Create(store_options));
  std::unique_ptr<ServiceStore> ss(
      new ServiceStore(std::string(service), registry, std::move(etcd)));
  ss->replica_id_ = election_options.id;
  ss->election_name_ = election_options.name;
  SMIG_ASSIGN_OR_RETURN(ss->election_, LeaderElection::Create(election_options, clock));
  LOG(INFO) << service << ": store etcd " << absl::StrJoin(endpoints, ",") << " under "
            << ss->prefix() << ", election " << ss->election_name_ << " as " << ss->replica_id_;
  return ss;
}

ServiceStore::ServiceStore(std::string service, prometheus::Registry* registry,
                           std::unique_ptr<EtcdStore> etcd)
    : metrics_(registry, std::move(service)), etcd_(std::move(etcd)), metered_(*etcd_, metrics_) {}

ServiceStore::~ServiceStore() {
  if (election_ != nullptr) election_->Stop();
}

void ServiceStore::Start(Election::Listener listener) {
  election_->SetListener(metrics_.Observe(std::move(listener)));
  election_->Start();
}

}  // namespace smig::store
