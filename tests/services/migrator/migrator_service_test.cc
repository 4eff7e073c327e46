// The SMM's gRPC adapter over a real server: codes map one by one, and WatchMigration
// streams a migration to its end.
#include "services/migrator/migrator_service.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_agents.h"
#include "tests/fakes/memory_store.h"

namespace smig::migrator {
namespace {

TEST(MigratorServiceTest, CodesAndAWatchedMigration) {
  testing::FakeCluster cluster;
  cluster.Add("edge-1");
  cluster.Add("edge-2");
  auto registry = std::make_shared<prometheus::Registry>();
  MigratorEngine engine(cluster, nullptr, {}, registry.get());
  MigratorService service(engine);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.metrics_address = ""}, {&service}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Migrator::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));

  v1::CreateSessionRequest create;
  create.set_session_id(1);
  create.set_vehicle_id("car-1");
  create.set_server_id("edge-1");
  create.add_flows();
  {
    grpc::ClientContext ctx;
    v1::Session s;
    ASSERT_TRUE(stub->CreateSession(&ctx, create, &s).ok());
    grpc::ClientContext again;
    EXPECT_EQ(stub->CreateSession(&again, create, &s).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  v1::MigrateRequest req;
  req.set_session_id(1);
  req.set_target_server_id("edge-1");
  v1::Migration m;
  {
    grpc::ClientContext ctx;
    grpc::Status st = stub->Migrate(&ctx, req, &m);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), ::testing::HasSubstr("edge-1"));
  }
  {
    grpc::ClientContext ctx;
    req.set_session_id(2);
    EXPECT_EQ(stub->Migrate(&ctx, req, &m).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    req.set_session_id(1);
    req.set_target_server_id("edge-2");
    ASSERT_TRUE(stub->Migrate(&ctx, req, &m).ok());
  }
  grpc::ClientContext watch_ctx;
  v1::WatchMigrationRequest watch_req;
  watch_req.set_migration_id(m.id());
  auto reader = stub->WatchMigration(&watch_ctx, watch_req);
  std::vector<v1::Phase> phases;
  for (v1::Migration update; reader->Read(&update);) phases.push_back(update.phase());
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_FALSE(phases.empty());
  EXPECT_EQ(phases.back(), v1::PHASE_DONE);
  {
    grpc::ClientContext ctx;
    v1::CancelMigrationRequest cancel;
    cancel.set_migration_id(m.id());
    EXPECT_EQ(stub->CancelMigration(&ctx, cancel, &m).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext ctx;
    v1::WatchMigrationRequest unknown;
    unknown.set_migration_id("mig-77");
    auto r = stub->WatchMigration(&ctx, unknown);
    v1::Migration x;
    while (r->Read(&x)) {}
    EXPECT_EQ(r->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// ListSessions at fleet size: by vehicle, by edge (serving it, or the target of its
// migration in flight), at most `limit` by id, with the count of all that matched.
TEST(MigratorServiceTest, ListSessionsFiltersByVehicleAndEdgeAndLimits) {
  testing::FakeCluster cluster;
  cluster.Add("edge-1");
  cluster.Add("edge-2").set_never_confirm(true);  // a migration to it stays in flight
  MigratorEngine engine(cluster, nullptr, {}, nullptr);
  MigratorService service(engine);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.metrics_address = ""}, {&service}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Migrator::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  for (int id = 5; id >= 1; --id) {  // created out of order: listed by id
    v1::CreateSessionRequest create;
    create.set_session_id(id);
    create.set_vehicle_id(id <= 3 ? "bus-1" : absl::StrCat("car-", id));
    create.set_server_id("edge-1");
    create.add_flows();
    ASSERT_TRUE(engine.CreateSession(create).ok());
  }
  v1::MigrateRequest to;
  to.set_session_id(5);
  to.set_target_server_id("edge-2");
  ASSERT_TRUE(engine.Migrate(to).ok());

  auto list = [&](const std::string& vehicle, const std::string& edge, uint32_t limit) {
    v1::ListSessionsRequest req;
    req.set_vehicle_id(vehicle);
    req.set_server_id(edge);
    req.set_limit(limit);
    v1::ListSessionsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub->ListSessions(&ctx, req, &resp).ok());
    std::vector<uint64_t> ids;
    for (const v1::Session& s : resp.sessions()) ids.push_back(s.session_id());
    return std::pair{ids, resp.matched()};
  };
  using ::testing::ElementsAre;
  using ::testing::Pair;
  EXPECT_THAT(list("", "", 0), Pair(ElementsAre(1, 2, 3, 4, 5), 5u));
  EXPECT_THAT(list("bus-1", "", 0), Pair(ElementsAre(1, 2, 3), 3u));
  EXPECT_THAT(list("", "edge-2", 0), Pair(ElementsAre(5), 1u));  // on its way there
  EXPECT_THAT(list("", "edge-1", 2), Pair(ElementsAre(1, 2), 5u));
  EXPECT_THAT(list("bus-1", "edge-2", 0), Pair(ElementsAre(), 0u));
  EXPECT_THAT(list("nobody", "", 0), Pair(ElementsAre(), 0u));
}

// A standby over gRPC: changes are FAILED_PRECONDITION naming the leader, reads are served
// (from the store), and a watch streams the migration the leader ran.
TEST(MigratorServiceTest, AStandbyNamesTheLeaderAndServesReads) {
  testing::FakeCluster cluster;
  cluster.Add("edge-1");
  cluster.Add("edge-2");
  store::testing::MemoryStore store;
  store::testing::FakeElection leader_election(store, "leader/migrator", "smm-0");
  store::testing::FakeElection standby_election(store, "leader/migrator", "smm-1");
  MigratorEngine leader(cluster, nullptr,
                        {.store = &store, .election = &leader_election, .replica_id = "smm-0"},
                        nullptr);
  leader_election.SetListener(leader.Listener());
  MigratorEngine standby(cluster, nullptr,
                         {.store = &store, .election = &standby_election, .replica_id = "smm-1"},
                         nullptr);
  standby_election.SetListener(standby.Listener());
  ASSERT_TRUE(leader_election.MakeLeader().ok());
  ASSERT_TRUE(leader.AwaitServing(absl::Seconds(10)));
  v1::CreateSessionRequest create;
  create.set_session_id(1);
  create.set_vehicle_id("car-1");
  create.set_server_id("edge-1");
  create.add_flows();
  ASSERT_TRUE(leader.CreateSession(create).ok());
  v1::MigrateRequest req;
  req.set_session_id(1);
  req.set_target_server_id("edge-2");
  absl::StatusOr<v1::Migration> started = leader.Migrate(req);
  ASSERT_TRUE(started.ok()) << started.status();

  MigratorService service(standby);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.metrics_address = ""}, {&service}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Migrator::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::Migration m;
    grpc::Status st = stub->Migrate(&ctx, req, &m);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(st.error_message(), ::testing::HasSubstr("the leader is smm-0"));
  }
  {
    grpc::ClientContext ctx;
    v1::ListSessionsResponse sessions;
    ASSERT_TRUE(stub->ListSessions(&ctx, v1::ListSessionsRequest(), &sessions).ok());
    ASSERT_EQ(sessions.sessions_size(), 1);
  }
  grpc::ClientContext watch_ctx;
  v1::WatchMigrationRequest watch_req;
  watch_req.set_migration_id(started->id());
  auto reader = stub->WatchMigration(&watch_ctx, watch_req);
  v1::Phase last = v1::PHASE_UNSPECIFIED;
  for (v1::Migration update; reader->Read(&update);) last = update.phase();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last, v1::PHASE_DONE);
}

}  // namespace
}  // namespace smig::migrator
