// ReplicaClient against fake SMM replicas (real gRPC servers on loopback): a standby that
// refuses and a leader, no leader and then one, everything down, reads from any replica.
#include "common/replica_client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "smig/migrator/v1/migrator.grpc.pb.h"

namespace smig {
namespace {

namespace smm = migrator::v1;
using ::testing::HasSubstr;

// Answers Migrate with whatever `answer` says now; ListSessions always answers.
class FakeReplica final : public smm::Migrator::Service {
 public:
  explicit FakeReplica(std::string id) : id_(std::move(id)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakeReplica() override { Stop(); }
  void Stop() {
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now()));
    server_.reset();
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  void Answer(grpc::Status s) {
    absl::MutexLock l(&mu_);
    answer_ = std::move(s);
  }
  int migrates() const { return migrates_; }

  grpc::Status Migrate(grpc::ServerContext*, const smm::MigrateRequest*,
                       smm::Migration* resp) override {
    ++migrates_;
    resp->set_id(id_);
    absl::MutexLock l(&mu_);
    return answer_;
  }
  grpc::Status ListSessions(grpc::ServerContext*, const smm::ListSessionsRequest*,
                            smm::ListSessionsResponse* resp) override {
    resp->add_sessions()->set_server_id(id_);
    return grpc::Status::OK;
  }

 private:
  const std::string id_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  grpc::Status answer_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
  std::atomic<int> migrates_{0};
};

grpc::Status Standby() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "this SMM replica (smm-1) is a standby: the leader is smm-0 (fencing token "
                      "7); send changes there");
}
grpc::Status NoLeader() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "no SMM replica leads now (smm-0 is a standby); retry shortly");
}

ReplicaClient::Call Migrate(std::string* answered_by) {
  return [answered_by](const std::shared_ptr<grpc::Channel>& ch, const std::string&) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    smm::Migration resp;
    grpc::Status s = smm::Migrator::NewStub(ch)->Migrate(&ctx, {}, &resp);
    *answered_by = resp.id();
    return s;
  };
}

ReplicaClient::Options Fast() {
  ReplicaClient::Options o;
  o.retry_budget = absl::Milliseconds(1500);
  o.first_pause = absl::Milliseconds(20);
  o.max_pause = absl::Milliseconds(100);
  return o;
}

TEST(ReplicaClientTest, SplitAddressesDropsBlanks) {
  EXPECT_THAT(SplitAddresses(" unix:/a.sock, unix:/b.sock,,"),
              ::testing::ElementsAre("unix:/a.sock", "unix:/b.sock"));
  EXPECT_TRUE(SplitAddresses("").empty());
}

TEST(ReplicaClientTest, WhatIsRetried) {
  EXPECT_TRUE(IsRetriable(Standby()));
  EXPECT_TRUE(IsRetriable(NoLeader()));
  EXPECT_TRUE(IsRetriable(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                       "not the leader: mdm-0 leads; send changes there")));
  EXPECT_FALSE(IsRetriable(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                        "session 1 is already migrating")));
  EXPECT_FALSE(IsRetriable(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late")));
  EXPECT_FALSE(IsRetriable(grpc::Status::OK));
}

TEST(ReplicaClientTest, AStandbysRefusalMovesOnToTheLeaderAndTheLeaderIsRemembered) {
  FakeReplica standby("smm-1"), leader("smm-0");
  standby.Answer(Standby());
  ReplicaClient c("SMM", {standby.address(), leader.address()},
                  ClientCredentials(), Fast());
  std::string by;
  ASSERT_TRUE(c.CallLeader(Migrate(&by)).ok());
  EXPECT_EQ(by, "smm-0");
  EXPECT_EQ(c.last_address(), leader.address());
  ASSERT_TRUE(c.CallLeader(Migrate(&by)).ok());
  EXPECT_EQ(standby.migrates(), 1);  // the second call went straight to the leader
  EXPECT_EQ(leader.migrates(), 2);
}

TEST(ReplicaClientTest, NoLeaderYetThenALeader) {
  FakeReplica a("smm-0"), b("smm-1");
  a.Answer(NoLeader());
  b.Answer(NoLeader());
  ReplicaClient c("SMM", {a.address(), b.address()}, ClientCredentials(), Fast());
  std::thread elect([&] {
    absl::SleepFor(absl::Milliseconds(300));
    a.Answer(Standby());
    b.Answer(grpc::Status::OK);
  });
  const absl::Time start = absl::Now();
  std::string by;
  grpc::Status s = c.CallLeader(Migrate(&by));
  elect.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(by, "smm-1");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1000));
}

TEST(ReplicaClientTest, ARealErrorIsNotRetried) {
  FakeReplica a("smm-0"), b("smm-1");
  a.Answer(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no such edge"));
  ReplicaClient c("SMM", {a.address(), b.address()}, ClientCredentials(), Fast());
  std::string by;
  grpc::Status s = c.CallLeader(Migrate(&by));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(a.migrates(), 1);
  EXPECT_EQ(b.migrates(), 0);
}

TEST(ReplicaClientTest, AllDownIsUnavailableNamingEveryAddressWithinTheBudget) {
  std::string a_addr, b_addr;
  {
    FakeReplica a("smm-0"), b("smm-1");
    a_addr = a.address();
    b_addr = b.address();
  }  // both stopped: nothing listens there now
  ReplicaClient c("SMM", {a_addr, b_addr}, ClientCredentials(), Fast());
  const absl::Time start = absl::Now();
  std::string by;
  grpc::Status s = c.CallLeader(Migrate(&by));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("no SMM replica"));
  EXPECT_THAT(s.error_message(), HasSubstr(a_addr + ": "));
  EXPECT_THAT(s.error_message(), HasSubstr(b_addr + ": "));
  EXPECT_LT(took, absl::Milliseconds(1500) + absl::Seconds(1));
}

TEST(ReplicaClientTest, AllStandbysEndUnavailableSayingWhatTheySaid) {
  FakeReplica a("smm-0"), b("smm-1");
  a.Answer(Standby());
  b.Answer(NoLeader());
  ReplicaClient c("SMM", {a.address(), b.address()}, ClientCredentials(), Fast());
  std::string by;
  grpc::Status s = c.CallLeader(Migrate(&by));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("is a standby"));
  EXPECT_THAT(s.error_message(), HasSubstr("no SMM replica leads now"));
  EXPECT_GT(a.migrates(), 2);  // retried in rounds
}

TEST(ReplicaClientTest, ReadsGoToAnyReplicaThatAnswers) {
  std::string down;
  { FakeReplica gone("x"); down = gone.address(); }
  FakeReplica standby("smm-1");
  standby.Answer(Standby());  // a standby still answers reads
  ReplicaClient c("SMM", {down, standby.address()}, ClientCredentials(), Fast());
  smm::ListSessionsResponse resp;
  grpc::Status s = c.CallAny([&](const std::shared_ptr<grpc::Channel>& ch, const std::string&) {
    grpc::ClientContext ctx;
    resp.Clear();
    return smm::Migrator::NewStub(ch)->ListSessions(&ctx, {}, &resp);
  });
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.sessions_size(), 1);
  EXPECT_EQ(resp.sessions(0).server_id(), "smm-1");
}

// One address naming two replicas, as a Kubernetes headless Service's DNS name does (here
// gRPC's "ipv4:" list): every change reaches the leader, whichever replica the balancer
// picks first.
TEST(ReplicaClientTest, OneAddressNamingTwoReplicasReachesTheLeader) {
  FakeReplica standby("smm-1"), leader("smm-0");
  standby.Answer(Standby());
  ReplicaClient c("SMM", {absl::StrCat("ipv4:", standby.address(), ",", leader.address())},
                  ClientCredentials(), Fast());
  for (int k = 0; k < 6; ++k) {
    std::string by;
    grpc::Status s = c.CallLeader(Migrate(&by));
    ASSERT_TRUE(s.ok()) << k << ": " << s.error_message();
    EXPECT_EQ(by, "smm-0");
  }
  EXPECT_GE(standby.migrates(), 1) << "the balancer never picked the standby: no proof";
  EXPECT_EQ(leader.migrates(), 6);
}

// Behind one address with no leader yet, a change waits for one within the budget.
TEST(ReplicaClientTest, OneAddressWaitsForALeader) {
  FakeReplica a("smm-0");
  a.Answer(NoLeader());
  ReplicaClient c("SMM", {a.address()}, ClientCredentials(), Fast());
  std::thread elect([&] {
    absl::SleepFor(absl::Milliseconds(200));
    a.Answer(grpc::Status::OK);
  });
  std::string by;
  grpc::Status s = c.CallLeader(Migrate(&by));
  elect.join();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_GE(a.migrates(), 2);
}

// One address that answers with a real error, or cannot be reached, is one call: the
// user hears at once that nothing is there.
TEST(ReplicaClientTest, OneAddressIsOneCallOnErrorsAndWhenUnreachable) {
  FakeReplica a("smm-0");
  a.Answer(grpc::Status(grpc::StatusCode::NOT_FOUND, "session 9 not found"));
  ReplicaClient c("SMM", {a.address()}, ClientCredentials(), Fast());
  std::string by;
  EXPECT_EQ(c.CallLeader(Migrate(&by)).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(a.migrates(), 1);
  a.Stop();
  const absl::Time t0 = absl::Now();
  EXPECT_EQ(c.CallLeader(Migrate(&by)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(1000)) << "retried an unreachable address";
}

}  // namespace
}  // namespace smig
