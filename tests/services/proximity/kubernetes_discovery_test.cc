// Kubernetes discovery: the EndpointSlice -> Server mapping, and the client against a fake
// API server (a small Python HTTP server that answers only the exact list URL with the
// right bearer token), including an unreachable API that must leave the registry alone.
#include "services/proximity/kubernetes_discovery.h"

#include <prometheus/registry.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/testbed.h"

namespace smig::proximity {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Two slices of the smig-dataplane Service as `kubectl get endpointslices -o json` shows
// them (trimmed), with fields the PMM does not read left in.
constexpr char kSlices[] = R"json({
  "kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
  "metadata": {"resourceVersion": "4711"},
  "items": [
    {
      "metadata": {"name": "smig-dataplane-abc12", "labels": {"kubernetes.io/service-name": "smig-dataplane"}},
      "addressType": "IPv4",
      "endpoints": [
        {"addresses": ["10.244.1.5"], "conditions": {"ready": true, "serving": true},
         "nodeName": "edge-1", "targetRef": {"kind": "Pod", "name": "smig-dataplane-x1"}},
        {"addresses": ["10.244.2.7", "10.245.2.7"], "conditions": {"ready": true},
         "targetRef": {"kind": "Pod", "name": "smig-dataplane-x2"}},
        {"addresses": ["10.244.3.9"], "conditions": {"ready": false}, "nodeName": "edge-3"}
      ],
      "ports": [{"name": "sctp", "port": 9900, "protocol": "UDP"},
                {"name": "agent", "port": 7400, "protocol": "TCP"}]
    },
    {
      "metadata": {"name": "smig-dataplane-v6"},
      "addressType": "IPv6",
      "endpoints": [{"addresses": ["fd00::4"], "conditions": {"ready": true}, "nodeName": "edge-4"}],
      "ports": [{"name": "agent", "port": 7400, "protocol": "TCP"}]
    },
    {
      "metadata": {"name": "no-agent-port"},
      "endpoints": [{"addresses": ["10.244.5.1"], "conditions": {"ready": true}, "nodeName": "edge-5"}],
      "ports": [{"name": "metrics", "port": 9400}]
    }
  ]
})json";

constexpr char kFakeApi[] = R"py(
import http.server, sys
body = open(sys.argv[1], 'rb').read()
want_path, want_auth = sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get('Authorization') != want_auth:
            code, out = 401, b'{"kind":"Status","message":"Unauthorized"}'
        elif self.path != want_path:
            code, out = 404, b'{"kind":"Status","message":"wrong path ' + self.path.encode() + b'"}'
        else:
            code, out = 200, body
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
)py";

constexpr char kPath[] =
    "/apis/discovery.k8s.io/v1/namespaces/smig/endpointslices"
    "?labelSelector=kubernetes.io%2Fservice-name%3Dsmig-dataplane";

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<std::string> Ids(const std::vector<v1::Server>& servers) {
  std::vector<std::string> ids;
  for (const v1::Server& s : servers) ids.push_back(s.id());
  return ids;
}

TEST(EndpointSlicesTest, ReadyEndpointsWithAnAgentPortBecomeServers) {
  absl::StatusOr<std::vector<v1::Server>> servers = ServersFromEndpointSlices(kSlices);
  ASSERT_TRUE(servers.ok()) << servers.status();
  // edge-3 is not ready; edge-5's slice has no "agent" port.
  ASSERT_THAT(Ids(*servers), ElementsAre("edge-1", "smig-dataplane-x2", "edge-4"));
  const v1::Server& e1 = (*servers)[0];
  EXPECT_EQ(e1.agent_address(), "10.244.1.5:7400");
  EXPECT_THAT(e1.sctp_addresses(), ElementsAre("10.244.1.5"));
  EXPECT_EQ(e1.sctp_port(), 9900u);
  const v1::Server& x2 = (*servers)[1];  // no nodeName: the pod's name
  EXPECT_EQ(x2.agent_address(), "10.244.2.7:7400");
  EXPECT_THAT(x2.sctp_addresses(), ElementsAre("10.244.2.7", "10.245.2.7"));
  const v1::Server& e4 = (*servers)[2];
  EXPECT_EQ(e4.agent_address(), "[fd00::4]:7400");
  EXPECT_EQ(e4.sctp_port(), 0u);

  absl::StatusOr<std::vector<v1::Server>> bad = ServersFromEndpointSlices("{\"items\": 3}");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InClusterOptionsTest, ComesFromTheEnvironment) {
  v1::Discovery::Kubernetes k;
  EXPECT_EQ(KubernetesDiscovery::InClusterOptions(k).status().code(),
            absl::StatusCode::kInvalidArgument);  // no service
  k.set_service("smig-dataplane");
  k.set_namespace_("edge");

  unsetenv("SMIG_KUBERNETES_API");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  absl::StatusOr<KubernetesDiscovery::Options> o = KubernetesDiscovery::InClusterOptions(k);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->api_url, "https://10.96.0.1:6443");
  EXPECT_EQ(o->namespace_name, "edge");
  EXPECT_EQ(o->token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");

  setenv("SMIG_KUBERNETES_API", "http://127.0.0.1:1", 1);
  o = KubernetesDiscovery::InClusterOptions(k);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->api_url, "http://127.0.0.1:1");

  unsetenv("SMIG_KUBERNETES_API");
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(KubernetesDiscovery::InClusterOptions(k).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

class FakeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testbed::ScratchDir() + "/fake-k8s";
    std::filesystem::create_directories(dir_);
    Write(dir_ + "/slices.json", kSlices);
    Write(dir_ + "/api.py", kFakeApi);
    Write(dir_ + "/token", "test-token\n");  // a trailing newline, as mounted files have
    absl::StatusOr<std::unique_ptr<testbed::Process>> p = testbed::Process::Start(
        {"python3", dir_ + "/api.py", dir_ + "/slices.json", kPath, "Bearer test-token"},
        dir_ + "/api.out");
    ASSERT_TRUE(p.ok()) << p.status();
    api_ = std::move(*p);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (port_ == 0 && absl::Now() < deadline) {
      std::ifstream in(dir_ + "/api.out");
      std::string line;
      if (std::getline(in, line) && absl::SimpleAtoi(line, &port_)) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_GT(port_, 0) << "the fake API server did not start: " << api_->Stderr();

    ProximityEngine::Options o;
    v1::Server s;
    s.set_id("static-1");
    s.set_agent_address("192.0.2.1:7400");
    o.static_servers = {s};
    engine_ = *ProximityEngine::Create(std::move(o));
  }
  void TearDown() override {
    api_.reset();
    std::filesystem::remove_all(dir_);
    std::error_code ec;  // the per-process scratch dir too, if nothing else is in it
    std::filesystem::remove(std::filesystem::path(dir_).parent_path(), ec);
  }

  KubernetesDiscovery::Options Options() {
    KubernetesDiscovery::Options o;
    o.api_url = absl::StrCat("http://127.0.0.1:", port_, "/");
    o.token_file = dir_ + "/token";
    o.namespace_name = "smig";
    o.service = "smig-dataplane";
    return o;
  }

  std::string dir_;
  std::unique_ptr<testbed::Process> api_;
  int port_ = 0;
  std::unique_ptr<ProximityEngine> engine_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
};

TEST_F(FakeApiTest, ListsTheServicesEndpointSlicesIntoTheRegistry) {
  auto d = KubernetesDiscovery::Start(Options(), *engine_, registry_);
  // Start polls at once on its own thread.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (engine_->ListServers().size() < 4 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<v1::Server> list = engine_->ListServers();
  ASSERT_THAT(Ids(list), ElementsAre("edge-1", "edge-4", "smig-dataplane-x2", "static-1"));
  EXPECT_EQ(list[0].source(), v1::SERVER_SOURCE_KUBERNETES);
  EXPECT_EQ(list[0].agent_address(), "10.244.1.5:7400");
  EXPECT_EQ(list[3].source(), v1::SERVER_SOURCE_STATIC);
  EXPECT_TRUE(d->PollOnce().ok());
  EXPECT_EQ(d->failures(), 0u);
}

TEST_F(FakeApiTest, FailuresAreCountedAndChangeNothing) {
  auto ok = KubernetesDiscovery::Start(Options(), *engine_, registry_);
  ASSERT_TRUE(ok->PollOnce().ok());
  ASSERT_EQ(engine_->ListServers().size(), 4u);
  ok.reset();

  KubernetesDiscovery::Options wrong_token = Options();
  Write(dir_ + "/other-token", "nope");
  wrong_token.token_file = dir_ + "/other-token";
  wrong_token.interval = absl::Hours(1);
  auto d = KubernetesDiscovery::Start(wrong_token, *engine_, registry_);
  absl::Status s = d->PollOnce();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(s.message(), HasSubstr("401"));

  KubernetesDiscovery::Options wrong_service = Options();
  wrong_service.service = "other";
  auto d2 = KubernetesDiscovery::Start(wrong_service, *engine_, registry_);
  EXPECT_EQ(d2->PollOnce().code(), absl::StatusCode::kNotFound);

  api_.reset();  // the API server goes away
  KubernetesDiscovery::Options gone = Options();
  gone.interval = absl::Hours(1);
  auto d3 = KubernetesDiscovery::Start(gone, *engine_, registry_);
  s = d3->PollOnce();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_GE(d3->failures(), 1u);

  // The static server and the last discovered ones are all still there.
  EXPECT_EQ(engine_->ListServers().size(), 4u);
  double errors = 0;
  for (const prometheus::MetricFamily& f : registry_->Collect()) {
    if (f.name == "smig_discovery_errors_total") errors = f.metric.at(0).counter.value;
  }
  EXPECT_GE(errors, 3);
}

}  // namespace
}  // namespace smig::proximity
