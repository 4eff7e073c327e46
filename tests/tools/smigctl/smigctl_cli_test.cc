// Runs the real smigctl binary against an in-process fake SMM (served like every smig
// server, by GrpcServer), and against a real SMM whose target edge is down: what the user
// types, what the server receives, what comes out and the exit status.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "services/migrator/migrator_service.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"
#include "tests/fakes/recording_agent.h"

namespace smig::smigctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = migrator::v1;

// Migrates session 1 through every phase; a target named "edge-full" rolls back.
class FakeMigrator final : public v1::Migrator::Service {
 public:
  grpc::Status Migrate(grpc::ServerContext*, const v1::MigrateRequest* request,
                       v1::Migration* response) override {
    absl::MutexLock l(&mu_);
    last_request_ = *request;
    if (request->session_id() != 1) return {grpc::StatusCode::NOT_FOUND, "no session"};
    migration_ = v1::Migration();
    migration_.set_id("mig-1");
    migration_.set_session_id(1);
    migration_.set_from_server_id("edge-1");
    migration_.set_to_server_id(request->has_auto_() ? "edge-3" : request->target_server_id());
    migration_.set_phase(v1::PHASE_PREPARING);
    *response = migration_;
    return grpc::Status::OK;
  }

  grpc::Status WatchMigration(grpc::ServerContext*, const v1::WatchMigrationRequest* request,
                              grpc::ServerWriter<v1::Migration>* writer) override {
    v1::Migration m;
    {
      absl::MutexLock l(&mu_);
      m = migration_;
    }
    if (request->migration_id() != m.id()) return {grpc::StatusCode::NOT_FOUND, "no migration"};
    const bool fail = m.to_server_id() == "edge-full";
    std::vector<v1::Phase> phases = {v1::PHASE_PREPARING, v1::PHASE_TRANSFERRING};
    if (fail) {
      phases.push_back(v1::PHASE_ROLLED_BACK);
    } else {
      phases.insert(phases.end(),
                    {v1::PHASE_OVERLAPPING, v1::PHASE_CUT_OVER, v1::PHASE_DONE});
    }
    for (v1::Phase p : phases) {
      m.set_phase(p);
      m.add_history()->set_phase(p);
      if (p == v1::PHASE_ROLLED_BACK) m.set_rollback_reason("edge-full has no room");
      writer->Write(m);
      // A second message in the same phase: smigctl reports phases, not messages.
      writer->Write(m);
    }
    return grpc::Status::OK;
  }

  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest*,
                            v1::ListSessionsResponse* response) override {
    auto* s = response->add_sessions();
    s->set_session_id(1);
    s->set_vehicle_id("car-1");
    s->set_server_id("edge-1");
    s->set_generation(1);
    s->set_redundancy(smig::dataplane::v1::REDUNDANCY_POLICY_AUTO);
    return grpc::Status::OK;
  }

  v1::MigrateRequest last_request() {
    absl::MutexLock l(&mu_);
    return last_request_;
  }

 private:
  absl::Mutex mu_;
  v1::Migration migration_;
  v1::MigrateRequest last_request_;
};

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs smigctl with `args` (shell words), stdout captured through a pipe (so not a TTY).
Result RunSmigctl(const std::string& args) {
  const std::string err_file =
      absl::StrCat(::testing::TempDir(), "/smigctl_err_", getpid(), ".txt");
  const std::string cmd = absl::StrCat(SMIGCTL_PATH, " ", args, " 2>", err_file);
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::remove(err_file.c_str());
  return r;
}

std::vector<std::string> PhasesOf(const std::string& json_lines) {
  std::vector<std::string> phases;
  for (absl::string_view line : absl::StrSplit(json_lines, '\n', absl::SkipEmpty())) {
    v1::Migration m;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &m).ok()) << line;
    phases.push_back(v1::Phase_Name(m.phase()));
  }
  return phases;
}

class SmigctlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<GrpcServer>> s =
        GrpcServer::Start({.metrics_address = ""}, {&fake_}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    port_ = server_->grpc_port();
  }

  std::string Smm() const { return absl::StrCat(" --smm=127.0.0.1:", port_); }

  FakeMigrator fake_;
  int port_ = 0;
  std::unique_ptr<GrpcServer> server_;
};

// A loopback port nothing listens on (a server took it and let it go).
int DeadPort() {
  FakeMigrator gone;
  absl::StatusOr<std::unique_ptr<GrpcServer>> s =
      GrpcServer::Start({.metrics_address = ""}, {&gone}, nullptr);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? (*s)->grpc_port() : 1;  // the server stops as it goes out of scope
}

TEST_F(SmigctlCliTest, MigrateWatchStreamsEveryPhaseAsJsonAndExitsZero) {
  Result r = RunSmigctl("migrate 1 --to=edge-2 --watch --output=json --reason=closer" + Smm());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(PhasesOf(r.out),
              ElementsAre("PHASE_PREPARING", "PHASE_TRANSFERRING", "PHASE_OVERLAPPING",
                          "PHASE_CUT_OVER", "PHASE_DONE"));
  EXPECT_THAT(r.out, HasSubstr(R"("to_server_id":"edge-2")"));  // proto field names

  v1::MigrateRequest q = fake_.last_request();
  EXPECT_EQ(q.session_id(), 1u);
  EXPECT_EQ(q.target_server_id(), "edge-2");
  EXPECT_EQ(q.reason(), "closer");
}

TEST_F(SmigctlCliTest, RollbackExitsOneWithTheReason) {
  Result r = RunSmigctl("migrate 1 --to=edge-full --watch --output=json" + Smm());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(PhasesOf(r.out),
              ElementsAre("PHASE_PREPARING", "PHASE_TRANSFERRING", "PHASE_ROLLED_BACK"));
  EXPECT_THAT(r.err, HasSubstr("mig-1 rolled back: edge-full has no room"));
}

TEST_F(SmigctlCliTest, PlainProgressLinesWhenNotATty) {
  Result r = RunSmigctl("migrate 1 --to=auto --watch" + Smm());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fake_.last_request().has_auto_());
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_THAT(lines[0], HasSubstr("mig-1  session 1  edge-1 -> edge-3  PREPARING"));
  EXPECT_THAT(lines[4], HasSubstr("DONE"));
  EXPECT_THAT(r.out, Not(HasSubstr("\r")));
}

TEST_F(SmigctlCliTest, TableOutput) {
  Result r = RunSmigctl("sessions" + Smm());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "SESSION  VEHICLE  SERVER  GENERATION  REDUNDANCY  MIGRATION\n"
            "1        car-1    edge-1  1           auto        -\n");
}

TEST_F(SmigctlCliTest, RpcErrorsExitTwo) {
  Result r = RunSmigctl("migrate 9 --to=edge-2" + Smm());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("smigctl: Migrate: NOT_FOUND: no session"));

  // A port that was just free: nothing listens there.
  const int dead_port = DeadPort();
  r = RunSmigctl(absl::StrCat("sessions --smm=127.0.0.1:", dead_port));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("smigctl: ListSessions: UNAVAILABLE: cannot reach the "
                                            "SMM at 127.0.0.1:", dead_port)));
}

// "smigctl migrate" to an edge whose agent died: the SMM answered, the target did not, and
// the line says so (not "cannot reach the SMM"). Once the SMM itself is down, it does.
TEST(SmigctlRealSmmTest, AnUnreachableTargetIsNamedAndNotTheSmm) {
  smig::testing::RecordingAgent edge1("edge-1");
  absl::StatusOr<std::unique_ptr<GrpcServer>> agent =
      GrpcServer::Start({.metrics_address = ""}, {&edge1}, nullptr);
  ASSERT_TRUE(agent.ok()) << agent.status();
  const std::string dead_agent = absl::StrCat("127.0.0.1:", DeadPort());
  std::vector<v1::StaticServer> servers(2);
  servers[0].set_id("edge-1");
  servers[0].set_agent_address(absl::StrCat("127.0.0.1:", (*agent)->grpc_port()));
  servers[1].set_id("edge-2");
  servers[1].set_agent_address(dead_agent);
  std::unique_ptr<migrator::AgentDirectory> agents =
      migrator::MakeGrpcAgentDirectory(servers, "", {.rpc_timeout = absl::Seconds(2)});
  auto registry = std::make_shared<prometheus::Registry>();
  migrator::MigratorEngine engine(*agents, nullptr, {}, registry.get());
  migrator::MigratorService service(engine);
  absl::StatusOr<std::unique_ptr<GrpcServer>> smm =
      GrpcServer::Start({.metrics_address = ""}, {&service}, registry);
  ASSERT_TRUE(smm.ok()) << smm.status();
  const std::string smm_flag = absl::StrCat(" --smm=127.0.0.1:", (*smm)->grpc_port());

  v1::CreateSessionRequest create;
  create.set_session_id(1);
  create.set_vehicle_id("car-1");
  create.set_server_id("edge-1");
  create.add_vehicle_addresses("10.0.0.1");
  create.set_vehicle_port(6000);
  create.add_flows()->mutable_source()->set_file("movie.ts");
  ASSERT_TRUE(engine.CreateSession(create).ok());

  Result r = RunSmigctl("migrate 1 --to=edge-2" + smm_flag);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("smigctl: Migrate: UNAVAILABLE: target edge-2 (agent ",
                                            dead_agent, ") is unreachable: UNAVAILABLE: ")))
      << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("SMM")));
  EXPECT_EQ(r.out, "");

  // The SMM goes away: now it is the hop that did not answer.
  const int smm_port = (*smm)->grpc_port();
  (*smm)->Shutdown(absl::ZeroDuration());
  r = RunSmigctl("migrate 1 --to=edge-2" + smm_flag);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("smigctl: Migrate: UNAVAILABLE: cannot reach the SMM "
                                            "at 127.0.0.1:", smm_port, " (--smm=ADDR): ")))
      << r.err;
}

TEST_F(SmigctlCliTest, UsageErrorsExitTwoWithUsageOnStderr) {
  for (const char* args : {"frobnicate", "migrate", "migrate 1", "proximity",
                           "servers --no-such-flag", "sessions --output=yaml"}) {
    Result r = RunSmigctl(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_THAT(r.err, HasSubstr("usage: smigctl COMMAND")) << args;
    EXPECT_EQ(r.out, "") << args;
  }
  Result help = RunSmigctl("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("smigctl migrate 1 --to=edge-2 --watch"));
}

}  // namespace
}  // namespace smig::smigctl
