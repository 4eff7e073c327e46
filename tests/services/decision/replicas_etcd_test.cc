// MDM replicas on a real etcd (tests/fakes/etcd_process.h; leases of 1 s), wired as main.cc
// wires them (ServiceStore::Open, PolicyStore, AutoMigrator): a policy set through
// UpdatePolicy survives a restart, and when the leader stops without resigning (or is cut
// off from etcd) the other replica leads within 2 s, while the two never both send
// Migrate. Times are printed.
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "common/store/store_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/decision/auto_migrator.h"
#include "services/decision/policy_store.h"
#include "tests/fakes/etcd_process.h"
#include "tests/services/decision/fake_control_plane.h"

namespace smig::decision {
namespace {

using ::testing::HasSubstr;
using store::testing::EtcdProcess;
using testing::FakeControlPlane;
using testing::ReplicaClients;

constexpr AutoMigrator::Options kFastLoop = {.tick = absl::Milliseconds(10),
                                              .sessions_ttl = absl::ZeroDuration(),
                                              .min_backoff = absl::Milliseconds(5),
                                              .max_backoff = absl::Milliseconds(20)};

using testing::Eventually;

v1::Policy Policy(v1::Mode mode, absl::Duration dwell, double margin = 0.2) {
  v1::Policy p = DefaultPolicy();
  p.set_mode(mode);
  *p.mutable_dwell() = ToProtoDuration(dwell);
  p.set_margin(margin);
  return p;
}

// An MDM replica as main.cc makes one with a store: what was configured, then
// ServiceStore::Open, PolicyStore::Start, the election started with its listener, the loop.
class Replica {
 public:
  Replica(const std::string& id, const std::string& endpoint, FakeControlPlane& smm,
          const v1::Policy& configured)
      : clients_(smm) {
    EXPECT_TRUE(engine_.UpdatePolicy(configured).ok());
    common::v1::StoreConfig config;
    config.add_endpoints(endpoint);
    config.set_replica_id(id);
    absl::StatusOr<std::unique_ptr<store::ServiceStore>> ss =
        store::ServiceStore::Open(config, "decision", &registry_);
    EXPECT_TRUE(ss.ok()) << ss.status();
    if (!ss.ok()) return;
    store_ = std::move(*ss);
    policy_ = std::make_unique<PolicyStore>(
        engine_, store_->store(), store_->election(),
        PolicyStore::Options{.configured = configured, .replica_id = id});
    policy_->Start();
    store::Election::Listener inner = policy_->Listener();
    store_->Start({.on_gained =
                       [this, inner](const store::Leadership& l) {
                         {
                           absl::MutexLock lock(&mu_);
                           gained_.push_back(absl::Now());
                         }
                         inner.on_gained(l);
                       },
                   .on_lost = inner.on_lost});
  }
  // In main.cc's order: no Migrate after the loop stops; the election (whose listener
  // reaches the policy store and this replica) before what it calls.
  ~Replica() {
    if (loop_) loop_->Stop();
    if (store_) store_->election().Stop();
    if (policy_) policy_->Stop();
  }

  void StartLoop() {
    loop_ = std::make_unique<AutoMigrator>(engine_, clients_, kFastLoop, Clock::Real(),
                                           [this] { return policy_->MayAct(); });
    loop_->Start();
  }

  std::vector<absl::Time> gained() {
    absl::MutexLock lock(&mu_);
    return gained_;
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  DecisionEngine& engine() { return engine_; }
  ReplicaClients& clients() { return clients_; }
  PolicyStore& policy() { return *policy_; }
  store::LeaderElection& election() { return store_->election(); }

 private:
  prometheus::Registry registry_;
  DecisionEngine engine_;
  ReplicaClients clients_;
  std::unique_ptr<store::ServiceStore> store_;
  std::unique_ptr<PolicyStore> policy_;
  std::unique_ptr<AutoMigrator> loop_;
  absl::Mutex mu_;
  std::vector<absl::Time> gained_ ABSL_GUARDED_BY(mu_);
};

class ReplicasOnEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
  }
  void TakeOver(const std::string& how, const std::function<void(Replica&)>& end_a);

  std::unique_ptr<EtcdProcess> etcd_;
  FakeControlPlane smm_;
};

TEST_F(ReplicasOnEtcdTest, APolicySetThroughUpdatePolicySurvivesARestart) {
  const v1::Policy configured = Policy(v1::MODE_MANUAL, absl::Seconds(3));
  {
    Replica a("mdm-a", etcd_->endpoint(), smm_, configured);
    ASSERT_TRUE(Eventually([&] { return a.policy().MayAct(); }));
    EXPECT_THAT(a.Metrics(), HasSubstr(R"(smig_leader{service="decision"} 1)"));
    absl::StatusOr<v1::Policy> p =
        a.policy().Update(Policy(v1::MODE_AUTOMATIC, absl::Seconds(5), 0.35));
    ASSERT_TRUE(p.ok()) << p.status();
  }  // stops, resigning
  // What etcd holds, under the default prefix.
  absl::StatusOr<std::unique_ptr<store::EtcdStore>> raw =
      store::EtcdStore::Create({.endpoints = {etcd_->endpoint()}, .prefix = ""});
  ASSERT_TRUE(raw.ok());
  absl::StatusOr<std::optional<store::Entry>> e = (*raw)->Get("/smig/decision/policy");
  ASSERT_TRUE(e.ok() && e->has_value()) << e.status();
  EXPECT_THAT((*e)->value, HasSubstr(R"("margin":0.35)"));

  Replica again("mdm-a", etcd_->endpoint(), smm_, configured);
  v1::Policy p = again.engine().policy();  // PolicyStore::Start has read the store
  EXPECT_EQ(p.margin(), 0.35);
  EXPECT_EQ(p.mode(), v1::MODE_AUTOMATIC);
  EXPECT_EQ(FromProto(p.dwell()), absl::Seconds(5));
}

// Two replicas, a leading and migrating; then `end_a` ends a's leadership without a
// resignation. b must lead within 2 s, and the two must never both send Migrate.
void ReplicasOnEtcdTest::TakeOver(const std::string& how,
                                  const std::function<void(Replica&)>& end_a) {
  // The SMM never moves the session, so whoever leads migrates it again after every dwell.
  smm_.set_move_on_migrate(false);
  migrator::v1::Session s;
  s.set_session_id(7);
  s.set_vehicle_id("car-1");
  s.set_server_id("edge-1");
  smm_.SetSession(s);
  proximity::v1::VehicleProximity prox;
  prox.set_vehicle_id("car-1");
  for (auto [id, srtt] : {std::pair{"edge-1", 20.0}, std::pair{"edge-2", 10.0}}) {
    proximity::v1::ServerProximity* sp = prox.add_servers();
    sp->set_server_id(id);
    sp->set_reachable(true);
    sp->set_srtt_ms(srtt);
  }
  const v1::Policy configured = Policy(v1::MODE_AUTOMATIC, absl::Milliseconds(50));

  Replica a("mdm-a", etcd_->endpoint(), smm_, configured);
  ASSERT_TRUE(Eventually([&] { return a.policy().MayAct(); }));
  Replica b("mdm-b", etcd_->endpoint(), smm_, configured);
  for (Replica* r : {&a, &b}) {
    r->clients().pmm().SetProximity(prox);
    r->StartLoop();
  }
  ASSERT_TRUE(Eventually([&] { return a.clients().migrate_calls().size() >= 3; }));
  EXPECT_TRUE(b.clients().migrate_calls().empty());
  EXPECT_FALSE(b.policy().MayAct());

  const absl::Time ended = absl::Now();
  end_a(a);  // a's loop runs on
  ASSERT_TRUE(Eventually([&] { return !b.gained().empty(); }, absl::Seconds(3)));
  const absl::Time led = b.gained()[0];
  EXPECT_LE(led - ended, absl::Seconds(2));
  ASSERT_TRUE(Eventually([&] { return b.clients().migrate_calls().size() >= 3; }));
  absl::SleepFor(absl::Milliseconds(200));

  // Exactly one acted at any time: every Migrate of a's came before b led, every one of b's
  // after, and a sent none once b led.
  const std::vector<absl::Time> a_calls = a.clients().migrate_times();
  const std::vector<absl::Time> b_calls = b.clients().migrate_times();
  ASSERT_FALSE(a_calls.empty());
  EXPECT_LT(a_calls.back(), led);
  EXPECT_GT(b_calls.front(), led);
  EXPECT_FALSE(a.policy().MayAct());
  std::printf("%s: mdm-b led %.0f ms after; mdm-a's last Migrate at %+.0f ms, %.0f ms "
              "before mdm-b led; mdm-b's first %.0f ms after it led\n",
              how.c_str(), absl::ToDoubleMilliseconds(led - ended),
              absl::ToDoubleMilliseconds(a_calls.back() - ended),
              absl::ToDoubleMilliseconds(led - a_calls.back()),
              absl::ToDoubleMilliseconds(b_calls.front() - led));
  EXPECT_THAT(b.Metrics(), HasSubstr(R"(smig_leader{service="decision"} 1)"));
  EXPECT_THAT(b.Metrics(), HasSubstr(R"(smig_leader_changes_total{service="decision"} 1)"));
}

TEST_F(ReplicasOnEtcdTest, ALeaderStoppedWithoutResigningIsReplacedWithinTwoSecondsByOneThatActsAlone) {
  // Its threads stop, its lease is neither renewed nor revoked: kill -9 as far as etcd knows.
  TakeOver("mdm-a stopped", [](Replica& a) { a.election().AbandonForTesting(); });
}

TEST_F(ReplicasOnEtcdTest, ALeaderCutOffFromEtcdStopsMigratingBeforeTheOtherLeads) {
  // It goes on believing it leads until its last renewal + TTL - margin, by its own clock,
  // and its loop goes on migrating until then: the harder case for "never both".
  TakeOver("mdm-a cut off", [](Replica& a) { a.election().SilenceForTesting(true); });
}

}  // namespace
}  // namespace smig::decision
