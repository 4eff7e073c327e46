#include "services/proximity/kubernetes_discovery.h"

#include <curl/curl.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/logging.h"
#include "google/protobuf/util/json_util.h"
#include "services/proximity/endpointslice.pb.h"

namespace smig::proximity {

namespace {

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";
// A list of a few hundred edges is well under this; more means something is wrong.
constexpr size_t kMaxBody = 32 << 20;

std::string HostPort(const std::string& host, uint32_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return v6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * n > kMaxBody) return 0;  // makes curl fail the transfer
  body->append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::vector<v1::Server>> ServersFromEndpointSlices(absl::string_view json) {
  k8s::EndpointSliceList list;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(std::string(json), &list, o);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an EndpointSliceList: ", std::string(s.message())));
  }
  std::vector<v1::Server> servers;
  std::set<std::string> ids;
  for (const k8s::EndpointSlice& slice : list.items()) {
    uint32_t agent_port = 0, sctp_port = 0;
    for (const k8s::EndpointPort& p : slice.ports()) {
      if (p.name() == "agent") agent_port = static_cast<uint32_t>(p.port());
      if (p.name() == "sctp") sctp_port = static_cast<uint32_t>(p.port());
    }
    if (agent_port == 0) continue;  // no agent API: the SMM could not drive these edges
    for (const k8s::Endpoint& e : slice.endpoints()) {
      if (!e.conditions().ready() || e.addresses().empty()) continue;
      std::string id = !e.node_name().empty() ? e.node_name() : e.target_ref().name();
      // One data plane per node (a DaemonSet); a second endpoint of a node is a pod being
      // replaced, and the first is as good as any.
      if (id.empty() || !ids.insert(id).second) continue;
      v1::Server& srv = servers.emplace_back();
      srv.set_id(id);
      srv.set_agent_address(HostPort(e.addresses(0), agent_port));
      *srv.mutable_sctp_addresses() = e.addresses();
      srv.set_sctp_port(sctp_port);
    }
  }
  return servers;
}

absl::StatusOr<KubernetesDiscovery::Options> KubernetesDiscovery::InClusterOptions(
    const v1::Discovery::Kubernetes& config) {
  if (config.service().empty()) {
    return absl::InvalidArgumentError("discovery.kubernetes.service is empty");
  }
  Options o;
  o.service = config.service();
  o.token_file = absl::StrCat(kServiceAccountDir, "/token");
  o.ca_file = absl::StrCat(kServiceAccountDir, "/ca.crt");
  if (const char* api = std::getenv("SMIG_KUBERNETES_API"); api && *api) {
    o.api_url = api;
  } else {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host) {
      return absl::FailedPreconditionError(
          "discovery.kubernetes: KUBERNETES_SERVICE_HOST is unset (not in a pod?); "
          "set SMIG_KUBERNETES_API to name the API server");
    }
    std::string h = host;
    if (h.find(':') != std::string::npos) h = absl::StrCat("[", h, "]");
    o.api_url = absl::StrCat("https://", h, ":", port && *port ? port : "443");
  }
  o.namespace_name = config.namespace_();
  if (o.namespace_name.empty()) {
    std::string path = absl::StrCat(kServiceAccountDir, "/namespace");
    absl::StatusOr<std::string> ns = ReadFile(path);
    if (!ns.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "discovery.kubernetes: no namespace in the config and ", ns.status().message()));
    }
    o.namespace_name = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return o;
}

KubernetesDiscovery::KubernetesDiscovery(Options options, ProximityEngine& engine,
                                         const std::shared_ptr<prometheus::Registry>& registry)
    : options_(std::move(options)), engine_(engine) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (registry) {
    errors_ = &prometheus::BuildCounter()
                   .Name("smig_discovery_errors_total")
                   .Help("Kubernetes EndpointSlice lists that failed (the registry kept its servers).")
                   .Register(*registry)
                   .Add({});
  }
}

std::unique_ptr<KubernetesDiscovery> KubernetesDiscovery::Start(
    Options options, ProximityEngine& engine,
    const std::shared_ptr<prometheus::Registry>& registry) {
  std::unique_ptr<KubernetesDiscovery> d(new KubernetesDiscovery(std::move(options), engine, registry));
  d->thread_ = std::thread([p = d.get()] { p->Loop(); });
  return d;
}

KubernetesDiscovery::~KubernetesDiscovery() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void KubernetesDiscovery::Loop() {
  do {
    (void)PollOnce();  // logs and counts its own failures
  } while (!stop_.WaitForNotificationWithTimeout(options_.interval));
}

absl::StatusOr<std::string> KubernetesDiscovery::Fetch() {
  std::string url = absl::StrCat(absl::StripSuffix(options_.api_url, "/"),
                                 "/apis/discovery.k8s.io/v1/namespaces/", options_.namespace_name,
                                 "/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D",
                                 options_.service);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  struct curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  // Re-read every time: projected service-account tokens are rotated by the kubelet.
  if (!options_.token_file.empty()) {
    if (absl::StatusOr<std::string> token = ReadFile(options_.token_file); token.ok()) {
      std::string h = absl::StrCat("Authorization: Bearer ", absl::StripAsciiWhitespace(*token));
      headers = curl_slist_append(headers, h.c_str());
    }
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: we have threads
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!options_.ca_file.empty() && ReadFile(options_.ca_file).ok()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ",
                                               error[0] ? error : curl_easy_strerror(rc)));
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    std::string msg = absl::StrCat("GET ", url, ": HTTP ", code, ": ", body.substr(0, 300));
    if (code == 401 || code == 403) return absl::PermissionDeniedError(msg);
    if (code == 404) return absl::NotFoundError(msg);
    return absl::UnavailableError(msg);
  }
  return body;
}

absl::Status KubernetesDiscovery::PollOnce() {
  absl::MutexLock lock(&poll_mu_);
  absl::StatusOr<std::string> body = Fetch();
  absl::StatusOr<std::vector<v1::Server>> servers =
      body.ok() ? ServersFromEndpointSlices(*body) : body.status();
  if (!servers.ok()) {
    ++failures_;
    if (errors_) errors_->Increment();
    // Once per distinct error: an unreachable API would otherwise log every 5 s forever.
    if (std::string e = servers.status().ToString(); e != last_error_) {
      LOG(WARNING) << "kubernetes discovery failed (keeping the servers): " << e;
      last_error_ = e;
    }
    return servers.status();
  }
  if (!last_error_.empty()) LOG(INFO) << "kubernetes discovery works again";
  last_error_.clear();
  std::vector<std::string> ids;
  for (const v1::Server& s : *servers) ids.push_back(absl::StrCat(s.id(), "=", s.agent_address()));
  if (std::string now = absl::StrJoin(ids, " "); now != last_servers_) {
    LOG(INFO) << "kubernetes discovery: " << ids.size() << " ready edge(s): " << now;
    last_servers_ = now;
  }
  engine_.ReplaceDiscovered(*servers);
  return absl::OkStatus();
}

}  // namespace smig::proximity
