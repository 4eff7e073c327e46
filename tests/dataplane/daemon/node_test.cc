// The data plane node and its agent API, end to end over gRPC, with the fake transport:
// open a session on edge A, migrate it to edge B with ExportState/ImportState, watch the
// vehicle report B contiguous, release A; and the agent's errors for bad requests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "common/grpc_server.h"
#include "dataplane/daemon/agent_service.h"
#include "dataplane/daemon/node.h"
#include "dataplane/daemon/role_registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_endpoint.h"
#include "tests/fakes/session_keys.h"
#include "tests/integration/testbed.h"

#include <fstream>

namespace smig::dataplane {
namespace {

using google::protobuf::util::TimeUtil;
using transport::testing::FakeNetwork;

const std::string kKey = testing::TestSessionKey("node-test");
constexpr uint64_t kChunks = 300;
constexpr absl::Duration kPeriod = absl::Milliseconds(3);

std::string Payload(uint64_t k) { return absl::StrCat("chunk-", k, ";"); }

// VOD-like: chunk k of a synthetic stream is due at anchor + (k - first) * kPeriod.
class PacedSource : public media::Source {
 public:
  PacedSource(uint64_t first, absl::Time anchor) : next_(first), first_(first), anchor_(anchor) {}
  absl::Status Poll(absl::Time now, std::vector<media::Chunk>& out) override {
    while (next_ < kChunks && Due(next_) <= now) {
      out.push_back({next_, Payload(next_), next_ + 1 == kChunks});
      ++next_;
    }
    return absl::OkStatus();
  }
  int fd() const override { return -1; }
  absl::Time NextDue() const override { return next_ < kChunks ? Due(next_) : absl::InfiniteFuture(); }

 private:
  absl::Time Due(uint64_t k) const { return anchor_ + static_cast<int64_t>(k - first_) * kPeriod; }
  uint64_t next_, first_;
  absl::Time anchor_;
};

// Collects what the vehicle delivers (the loop thread writes, the test reads).
struct Player {
  absl::Mutex mu;
  std::string bytes ABSL_GUARDED_BY(mu);
};
class MemorySink : public media::Sink {
 public:
  explicit MemorySink(Player& p) : p_(p) {}
  absl::Status Write(absl::string_view d) override {
    absl::MutexLock lock(&p_.mu);
    p_.bytes.append(d.data(), d.size());
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  Player& p_;
};

struct Running {
  std::unique_ptr<DataplaneNode> node;
  std::unique_ptr<AgentService> service;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<v1::DataplaneAgent::Stub> stub;
};

class NodeTest : public ::testing::Test {
 protected:
  Running Start(v1::Role role, const std::string& name, const std::string& addr,
                bool metrics = false) {
    v1::DataplaneConfig c;
    c.set_role(role);
    c.set_server_id(name);
    (*c.mutable_sinks())[0].set_udp("127.0.0.1:1");  // replaced by MemorySink below
    if (role == v1::ROLE_EDGE) {
      for (const auto& [feed, address] : edge_live_feeds_) (*c.mutable_live_feeds())[feed] = address;
    }
    DataplaneNode::Deps d;
    d.config = c;
    d.endpoint = net_.CreateEndpoint({.local_addresses = {addr}, .port = static_cast<uint16_t>(
                                          role == v1::ROLE_VEHICLE ? 6000 : 0),
                                      .listen = role == v1::ROLE_VEHICLE});
    auto registry = std::make_shared<prometheus::Registry>();
    d.registry = registry;
    d.make_source = [](const v1::FlowState& f, absl::Time now) -> absl::StatusOr<std::unique_ptr<media::Source>> {
      absl::Time anchor = now;
      if (f.has_checkpoint_due_at()) {
        anchor = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(f.checkpoint_due_at()));
      }
      return std::make_unique<PacedSource>(f.source_offset(), anchor);
    };
    d.make_sink = [this](const v1::Sink&) -> absl::StatusOr<std::unique_ptr<media::Sink>> {
      return std::make_unique<MemorySink>(player_);
    };
    Running r;
    r.node = *DataplaneNode::Start(std::move(d));
    r.service = std::make_unique<AgentService>(*r.node);
    r.server = *GrpcServer::Start({.metrics_address = metrics ? "127.0.0.1:0" : ""},
                                  {r.service.get()}, registry);
    r.stub = v1::DataplaneAgent::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", r.server->grpc_port()), grpc::InsecureChannelCredentials()));
    return r;
  }

  v1::OpenSessionRequest Open() {
    v1::OpenSessionRequest r;
    r.set_session_id(42);
    r.add_vehicle_addresses("10.9.0.1");
    r.set_vehicle_port(6000);
    r.add_flows()->mutable_source()->set_file("synthetic");
    r.set_session_key(kKey);
    return r;
  }
  // The vehicle is given session 42 (its key), as its creator does.
  static void Admit(Running& vehicle, uint64_t session = 42) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest r;
    r.set_session_id(session);
    r.set_session_key(kKey);
    v1::Session s;
    grpc::Status st = vehicle.stub->OpenSession(&ctx, r, &s);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(s.role(), v1::ROLE_VEHICLE);
  }

  std::string Played() {
    absl::MutexLock lock(&player_.mu);
    return player_.bytes;
  }
  std::string Expected(uint64_t upto) {
    std::string s;
    for (uint64_t k = 0; k < upto; ++k) s += Payload(k);
    return s;
  }

  FakeNetwork net_;
  Player player_;
  std::map<std::string, std::string> edge_live_feeds_;  // for edges started from now on
};

// A free UDP port on loopback (bound, read and released).
uint16_t FreeUdpPort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST_F(NodeTest, OpenMigrateReleaseThroughTheAgentApiLosesAndRepeatsNothing) {
  Running vehicle = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1", /*metrics=*/true);
  Admit(vehicle);
  Running a = Start(v1::ROLE_EDGE, "edge-a", "10.1.0.1");
  Running b = Start(v1::ROLE_EDGE, "edge-b", "10.2.0.1");

  grpc::ClientContext watch_ctx;
  v1::WatchEventsRequest watch_req;
  watch_req.set_session_id(42);
  auto watch = vehicle.stub->WatchEvents(&watch_ctx, watch_req);

  {
    grpc::ClientContext ctx;
    v1::Session s;
    grpc::Status st = a.stub->OpenSession(&ctx, Open(), &s);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(s.role(), v1::ROLE_EDGE);
  }
  absl::SleepFor(absl::Milliseconds(300));
  v1::SessionState state;
  {
    grpc::ClientContext ctx;
    v1::ExportStateRequest req;
    req.set_session_id(42);
    ASSERT_TRUE(a.stub->ExportState(&ctx, req, &state).ok());
    EXPECT_EQ(state.generation(), 2u);
    EXPECT_GT(state.flows(0).next_sequence(), 0u);
  }
  {
    grpc::ClientContext ctx;
    v1::ImportStateRequest req;
    *req.mutable_state() = state;
    v1::Session s;
    grpc::Status st = b.stub->ImportState(&ctx, req, &s);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // The vehicle tells when generation 2 (edge B) carries the flow contiguously.
  bool contiguous = false;
  for (v1::AgentEvent e; !contiguous && watch->Read(&e);) {
    contiguous = e.has_contiguous_generation() && e.contiguous_generation() == 2;
  }
  ASSERT_TRUE(contiguous);
  {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(42);
    v1::ReleaseSessionResponse resp;
    ASSERT_TRUE(a.stub->ReleaseSession(&ctx, req, &resp).ok());
  }
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Played().size() < Expected(kChunks).size() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Played(), Expected(kChunks));  // every chunk once, in order
  {
    grpc::ClientContext ctx;
    v1::GetSessionRequest req;
    req.set_session_id(42);
    v1::Session s;
    ASSERT_TRUE(vehicle.stub->GetSession(&ctx, req, &s).ok());
    EXPECT_EQ(s.flows(0).frames(), kChunks);
    EXPECT_GT(s.flows(0).duplicates_dropped(), 0u);  // A and B overlapped
  }
  // One migration measured: its stall is in the histogram, and small (make-before-break).
  std::string metrics = testbed::HttpGet(vehicle.server->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, ::testing::HasSubstr("smig_migration_stall_seconds_count 1"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("smig_migration_stall_seconds_bucket{le=\"0.1\"} 1"));
  watch_ctx.TryCancel();
  a.node->Stop(absl::Seconds(1));
  b.node->Stop(absl::Seconds(1));
  vehicle.node->Stop(absl::ZeroDuration());
}

TEST_F(NodeTest, BadRequestsGetPreciseCodes) {
  Running vehicle = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1");
  Running a = Start(v1::ROLE_EDGE, "edge-a", "10.1.0.1");
  auto call_import = [](Running& r, const v1::SessionState& s) {
    grpc::ClientContext ctx;
    v1::ImportStateRequest req;
    *req.mutable_state() = s;
    v1::Session resp;
    return r.stub->ImportState(&ctx, req, &resp);
  };
  v1::SessionState wrong_version;
  wrong_version.set_format_version(7);
  wrong_version.set_session_id(1);
  grpc::Status st = call_import(a, wrong_version);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("version 7"));

  EXPECT_EQ(call_import(vehicle, wrong_version).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::SessionState no_flows;
  no_flows.set_format_version(1);
  no_flows.set_session_id(3);
  no_flows.add_vehicle_addresses("10.9.0.1");
  no_flows.set_vehicle_port(6000);
  EXPECT_EQ(call_import(a, no_flows).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  v1::GetSessionRequest get;
  get.set_session_id(404);
  v1::Session s;
  st = vehicle.stub->GetSession(&ctx, get, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("404"));

  grpc::ClientContext ctx2;
  v1::ExportStateRequest exp;
  exp.set_session_id(404);
  v1::SessionState out;
  EXPECT_EQ(a.stub->ExportState(&ctx2, exp, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext ctx3;
  v1::OpenSessionRequest open = Open();
  open.set_session_id(0);
  EXPECT_EQ(a.stub->OpenSession(&ctx3, open, &s).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  a.node->Stop(absl::ZeroDuration());
  vehicle.node->Stop(absl::ZeroDuration());
}

TEST_F(NodeTest, LiveFeedsAreCheckedAtStart) {
  auto deps = [this](v1::Role role, const std::string& feed, const std::string& address) {
    DataplaneNode::Deps d;
    d.config.set_role(role);
    d.config.set_server_id("edge-a");
    (*d.config.mutable_live_feeds())[feed] = address;
    d.endpoint = net_.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
    return d;
  };
  absl::StatusOr<std::unique_ptr<DataplaneNode>> bad =
      DataplaneNode::Start(deps(v1::ROLE_EDGE, "channel-1", "localhost:5004"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("live_feeds[\"channel-1\"]"));
  EXPECT_EQ(DataplaneNode::Start(deps(v1::ROLE_EDGE, "", "127.0.0.1:0")).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<DataplaneNode>> vehicle =
      DataplaneNode::Start(deps(v1::ROLE_VEHICLE, "channel-1", "127.0.0.1:0"));
  EXPECT_THAT(vehicle.status().message(), ::testing::HasSubstr("live_feeds are for edges"));
}

// The roles come from a registry; its answers are the ones the agent API always gave.
TEST_F(NodeTest, UnknownRolesAndCallsARoleDoesNotServeAreRefusedByName) {
  DataplaneNode::Deps d;
  d.endpoint = net_.CreateEndpoint({.local_addresses = {"10.1.0.1"}, .listen = false});
  absl::StatusOr<std::unique_ptr<DataplaneNode>> none = DataplaneNode::Start(std::move(d));
  EXPECT_EQ(none.status(), absl::InvalidArgumentError("role must be ROLE_EDGE or ROLE_VEHICLE"));

  Running vehicle = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1");
  Running a = Start(v1::ROLE_EDGE, "edge-a", "10.1.0.1");
  const absl::Status not_an_edge =
      absl::FailedPreconditionError("this data plane is a vehicle, not an edge");
  EXPECT_EQ(vehicle.node->OpenSession(Open()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(vehicle.node->ExportState(42).status(), not_an_edge);
  EXPECT_EQ(vehicle.node->ReleaseSession(42, 0).status(), not_an_edge);
  EXPECT_TRUE(vehicle.node->ListSessions().empty());
  proximity::v1::Server server;
  server.set_id("edge-a");
  server.add_sctp_addresses("10.1.0.1");
  server.set_sctp_port(7000);
  EXPECT_EQ(vehicle.node->MeasureProximity({server}).measurements_size(), 1);
  // An edge measures nothing: an empty report.
  EXPECT_EQ(a.node->MeasureProximity({server}).ByteSizeLong(), 0u);
  a.node->Stop(absl::ZeroDuration());
  vehicle.node->Stop(absl::ZeroDuration());
}

// What main sets up around a node comes from the role's registry entry: a vehicle's
// endpoint listens; an edge with a probe_port also opens a listening probe endpoint; a
// vehicle that names a PMM needs a vehicle_id for its reporter.
TEST_F(NodeTest, WhatMainSetsUpAroundANodeComesFromTheRegistry) {
  const RoleEntry* edge = *GetRole(v1::ROLE_EDGE);
  const RoleEntry* vehicle = *GetRole(v1::ROLE_VEHICLE);
  EXPECT_FALSE(edge->listens);
  EXPECT_TRUE(vehicle->listens);
  EXPECT_EQ(vehicle->open_endpoints, nullptr);
  EXPECT_EQ(edge->start_companions, nullptr);

  std::vector<transport::EndpointOptions> opened;
  const EndpointOpener open = [&](const transport::EndpointOptions& o)
      -> absl::StatusOr<std::unique_ptr<transport::Endpoint>> {
    opened.push_back(o);
    return net_.CreateEndpoint(o);
  };
  const transport::EndpointOptions node_endpoint{.local_addresses = {"10.1.0.1"}, .port = 7000};
  v1::DataplaneConfig config;
  NodeDeps deps;
  ASSERT_TRUE(edge->open_endpoints(config, node_endpoint, open, deps).ok());
  EXPECT_TRUE(opened.empty());  // no probe_port: no probe endpoint
  config.set_probe_port(70000);
  EXPECT_EQ(edge->open_endpoints(config, node_endpoint, open, deps),
            absl::InvalidArgumentError("probe_port is above 65535"));
  config.set_probe_port(7001);
  ASSERT_TRUE(edge->open_endpoints(config, node_endpoint, open, deps).ok());
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].local_addresses, node_endpoint.local_addresses);
  EXPECT_EQ(opened[0].port, 7001);
  EXPECT_TRUE(opened[0].listen);
  EXPECT_NE(deps.probe_endpoint, nullptr);

  Running car = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1");
  v1::DataplaneConfig vconfig;
  absl::StatusOr<std::unique_ptr<Companion>> none = vehicle->start_companions(vconfig, *car.node);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);  // no PMM: nothing beside the node
  vconfig.mutable_proximity()->set_pmm_address("127.0.0.1:1");
  EXPECT_EQ(vehicle->start_companions(vconfig, *car.node).status(),
            absl::InvalidArgumentError("proximity reporting needs proximity.vehicle_id"));
  car.node->Stop(absl::ZeroDuration());
}

// SMM leader fencing over the agent API: once a call carried token 57, a call with an older
// token (a deposed leader's) is refused by each fenced method and changes nothing; the
// same, a newer or no token (0) is accepted; the metrics show the highest and the refusals.
TEST_F(NodeTest, CallsWithAnOlderFencingTokenAreRefusedAndChangeNothing) {
  Running vehicle = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1");
  Running a = Start(v1::ROLE_EDGE, "edge-a", "10.1.0.1", /*metrics=*/true);
  auto open = [&](uint64_t session, uint64_t token) {
    grpc::ClientContext ctx;
    v1::OpenSessionRequest req = Open();
    req.set_session_id(session);
    req.set_fencing_token(token);
    v1::Session s;
    return a.stub->OpenSession(&ctx, req, &s);
  };
  auto import = [&](const v1::SessionState& state, uint64_t token) {
    grpc::ClientContext ctx;
    v1::ImportStateRequest req;
    *req.mutable_state() = state;
    req.set_fencing_token(token);
    v1::Session s;
    return a.stub->ImportState(&ctx, req, &s);
  };
  auto release = [&](uint64_t session, uint64_t token) {
    grpc::ClientContext ctx;
    v1::ReleaseSessionRequest req;
    req.set_session_id(session);
    req.set_fencing_token(token);
    v1::ReleaseSessionResponse resp;
    return a.stub->ReleaseSession(&ctx, req, &resp);
  };
  auto get = [&](uint64_t session) -> absl::StatusOr<v1::Session> {
    grpc::ClientContext ctx;
    v1::GetSessionRequest req;
    req.set_session_id(session);
    v1::Session s;
    grpc::Status st = a.stub->GetSession(&ctx, req, &s);
    if (!st.ok()) return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
    return s;
  };
  auto expect_fenced = [](const grpc::Status& st, const std::string& what) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << what;
    EXPECT_EQ(st.error_message(), "fenced: token 41 is older than 57: a newer SMM leader acts")
        << what;
  };

  grpc::Status st = open(42, 57);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(a.node->fencing_token(), 57u);
  absl::StatusOr<v1::Session> before = get(42);
  ASSERT_TRUE(before.ok()) << before.status();

  // A deposed leader (token 41) tries each fenced call: nothing changes.
  expect_fenced(open(43, 41), "OpenSession");
  EXPECT_EQ(get(43).status().code(), absl::StatusCode::kNotFound);
  v1::SessionState other;
  other.set_format_version(1);
  other.set_session_id(44);
  other.set_generation(2);
  other.set_session_key(kKey);
  other.add_vehicle_addresses("10.9.0.1");
  other.set_vehicle_port(6000);
  other.add_flows()->mutable_source()->set_file("synthetic");
  expect_fenced(import(other, 41), "ImportState");
  EXPECT_EQ(get(44).status().code(), absl::StatusCode::kNotFound);
  expect_fenced(release(42, 41), "ReleaseSession");
  absl::StatusOr<v1::Session> after = get(42);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->phase(), v1::SESSION_PHASE_RELEASING);
  EXPECT_EQ(after->generation(), before->generation());
  EXPECT_EQ(a.node->fencing_token(), 57u);

  // A newer leader (60) is accepted and fences the one before it; 0 (a tool) passes.
  st = import(other, 60);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(get(44).ok());
  EXPECT_EQ(a.node->fencing_token(), 60u);
  st = release(44, 57);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(st.error_message(), "fenced: token 57 is older than 60: a newer SMM leader acts");
  EXPECT_TRUE(open(45, 0).ok());
  EXPECT_EQ(a.node->fencing_token(), 60u);
  st = release(42, 60);
  ASSERT_TRUE(st.ok()) << st.error_message();

  std::string page = testbed::HttpGet(a.server->metrics_port(), "/metrics");
  EXPECT_THAT(page, ::testing::HasSubstr("smig_agent_fencing_token 60"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        "smig_agent_fenced_requests_total{method=\"OpenSession\"} 1"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        "smig_agent_fenced_requests_total{method=\"ImportState\"} 1"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        "smig_agent_fenced_requests_total{method=\"ReleaseSession\"} 2"));
  a.node->Stop(absl::ZeroDuration());
  vehicle.node->Stop(absl::ZeroDuration());
}

TEST_F(NodeTest, MetricsPassPromtoolAndCountWhatHappened) {
  if (std::system("command -v promtool >/dev/null") != 0) GTEST_SKIP() << "needs promtool";
  Running vehicle = Start(v1::ROLE_VEHICLE, "car", "10.9.0.1", /*metrics=*/true);
  Admit(vehicle);
  const uint16_t feed_port = FreeUdpPort();
  edge_live_feeds_ = {{"channel-1", absl::StrCat("127.0.0.1:", feed_port)}};
  Running a = Start(v1::ROLE_EDGE, "edge-a", "10.1.0.1", /*metrics=*/true);
  {  // 3 datagrams of 100 bytes on the standing feed, which nobody watches
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(feed_port),
                   .sin_addr = {htonl(INADDR_LOOPBACK)}};
    for (int i = 0; i < 3; ++i) {
      ::sendto(fd, std::string(100, 'x').data(), 100, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    }
    ::close(fd);
  }
  grpc::ClientContext ctx;
  v1::Session s;
  ASSERT_TRUE(a.stub->OpenSession(&ctx, Open(), &s).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Played().size() < Expected(kChunks).size() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(300));  // a metrics export round
  for (Running* r : {&vehicle, &a}) {
    std::string page = testbed::HttpGet(r->server->metrics_port(), "/metrics");
    size_t body = page.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << page;
    std::string path = ::testing::TempDir() + "/metrics.txt";
    std::ofstream(path) << page.substr(body + 4);
    absl::StatusOr<std::string> lint = testbed::Sh("promtool check metrics < " + path);
    EXPECT_TRUE(lint.ok()) << lint.status();
    EXPECT_THAT(page, ::testing::HasSubstr("smig_sessions_active"));
  }
  std::string car = testbed::HttpGet(vehicle.server->metrics_port(), "/metrics");
  EXPECT_THAT(car, ::testing::HasSubstr(absl::StrCat("smig_frames_total{role=\"vehicle\"} ", kChunks)));
  // The vehicle's one path to edge-a (the fake reports srtt 0 unless told otherwise).
  EXPECT_THAT(car, ::testing::ContainsRegex(
                       "smig_path_up\\{peer=\"10.1.0.1\",server=\"edge-a\"\\} 1"));
  EXPECT_THAT(car, ::testing::HasSubstr("smig_path_srtt_seconds{peer=\"10.1.0.1\",server=\"edge-a\"}"));
  std::string edge = testbed::HttpGet(a.server->metrics_port(), "/metrics");
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_sessions_capacity 256"));
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_send_deferrals_total 0"));
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_live_feed_bytes_total{feed=\"channel-1\"} 300"));
  // The session (no policy given: auto) on a one-radio vehicle never has a second path.
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_sessions_redundancy{policy=\"auto\"} 1"));
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_sessions_redundancy{policy=\"always\"} 0"));
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_sessions_duplicating{role=\"edge\"} 0"));
  EXPECT_THAT(edge, ::testing::HasSubstr("smig_redundant_bytes_total{role=\"edge\"} 0"));
  a.node->Stop(absl::Seconds(1));
  vehicle.node->Stop(absl::ZeroDuration());
}

}  // namespace
}  // namespace smig::dataplane
