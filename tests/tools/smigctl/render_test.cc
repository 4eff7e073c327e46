#include "tools/smigctl/render.h"

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace smig::smigctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

void SetTime(google::protobuf::Timestamp* t, absl::Time at) {
  const int64_t ns = absl::ToUnixNanos(at);
  t->set_seconds(ns / 1000000000);
  t->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

migrator::v1::Migration Running() {
  migrator::v1::Migration m;
  m.set_id("mig-7");
  m.set_session_id(1);
  m.set_from_server_id("edge-1");
  m.set_to_server_id("edge-2");
  m.set_trigger(migrator::v1::TRIGGER_MANUAL);
  m.set_phase(migrator::v1::PHASE_OVERLAPPING);
  SetTime(m.mutable_started_at(), kNow - absl::Milliseconds(1234));
  return m;
}

TEST(SmigctlTableTest, PadsColumnsToTheWidestCellWithoutTrailingBlanks) {
  Table t({"A", "LONG HEADER", "C"});
  t.AddRow({"wide cell", "x", ""});
  EXPECT_EQ(t.Render(),
            "A          LONG HEADER  C\n"
            "wide cell  x\n");
}

TEST(SmigctlRenderTest, Sessions) {
  migrator::v1::ListSessionsResponse r;
  auto* s = r.add_sessions();
  s->set_session_id(1);
  s->set_vehicle_id("car-1");
  s->set_server_id("edge-1");
  s->set_generation(2);
  s->set_migration_id("mig-7");
  s->set_redundancy(dataplane::v1::REDUNDANCY_POLICY_ALWAYS);
  s = r.add_sessions();
  s->set_session_id(12);
  s->set_vehicle_id("car-2");
  s->set_server_id("edge-3");
  s->set_generation(1);
  EXPECT_EQ(RenderSessions(r),
            "SESSION  VEHICLE  SERVER  GENERATION  REDUNDANCY  MIGRATION\n"
            "1        car-1    edge-1  2           always      mig-7\n"
            "12       car-2    edge-3  1           -           -\n");

  // A limited listing says how many matched; the target of a migration in flight shows.
  r.mutable_sessions(0)->set_migration_to_server_id("edge-2");
  r.set_matched(9000);
  EXPECT_EQ(RenderSessions(r),
            "SESSION  VEHICLE  SERVER  GENERATION  REDUNDANCY  MIGRATION\n"
            "1        car-1    edge-1  2           always      mig-7 -> edge-2\n"
            "12       car-2    edge-3  1           -           -\n"
            "(2 of 9000 matching sessions; --limit lists more)\n");
}

TEST(SmigctlRenderTest, ServersShowLoadSourceAndExpiry) {
  proximity::v1::ListServersResponse r;
  auto* s = r.add_servers();
  s->set_id("edge-1");
  s->set_agent_address("10.0.0.1:7000");
  s->add_sctp_addresses("10.77.1.1");
  s->add_sctp_addresses("10.77.2.1");
  s->set_sctp_port(5000);
  s->set_sessions(3);
  s->set_capacity(10);
  s->set_source(proximity::v1::SERVER_SOURCE_STATIC);
  s = r.add_servers();
  s->set_id("edge-22");
  s->set_agent_address("10.0.0.2:7000");
  s->set_source(proximity::v1::SERVER_SOURCE_REGISTERED);
  SetTime(s->mutable_expires_at(), kNow + absl::Seconds(8));

  const std::string out = RenderServers(r, kNow);
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ID       AGENT          SCTP ADDRESSES       PORT  SESSIONS  SOURCE      EXPIRES");
  EXPECT_EQ(lines[1], "edge-1   10.0.0.1:7000  10.77.1.1,10.77.2.1  5000  3/10      static      never");
  EXPECT_EQ(lines[2], "edge-22  10.0.0.2:7000  -                    -     0/-       registered  in 8.0 s");
}

TEST(SmigctlRenderTest, ProximityShowsRolesAndPaths) {
  proximity::v1::VehicleProximity p;
  p.set_vehicle_id("car-1");
  p.set_target_server_id("edge-1");
  auto* s = p.add_servers();
  s->set_server_id("edge-1");
  s->set_role(proximity::v1::ROLE_TARGET);
  s->set_reachable(true);
  s->set_srtt_ms(12.06);
  s->set_hops(2);
  s->set_bandwidth_bps(25e6);
  auto* path = s->add_paths();
  path->set_address("10.77.1.1:5000");
  path->set_state(transport::v1::PATH_STATE_ACTIVE);
  path->set_srtt_ms(12.06);
  path->set_primary(true);
  path = s->add_paths();
  path->set_address("10.77.2.1:5000");
  path->set_state(transport::v1::PATH_STATE_POTENTIALLY_FAILED);
  s = p.add_servers();
  s->set_server_id("edge-2");
  s->set_role(proximity::v1::ROLE_NEW_TARGET);
  s = p.add_servers();
  s->set_server_id("edge-3");
  s->set_role(proximity::v1::ROLE_IDLE);

  const std::string out = RenderProximity(p);
  EXPECT_THAT(out, HasSubstr("vehicle car-1  target edge-1"));
  EXPECT_THAT(out, HasSubstr("SERVER  ROLE        REACHABLE  SRTT MS  HOPS  BANDWIDTH"));
  EXPECT_THAT(out, HasSubstr("edge-1  TARGET      yes        12.1     2     25.0 Mbit/s"));
  EXPECT_THAT(out, HasSubstr("10.77.1.1:5000* ACTIVE 12.1ms, 10.77.2.1:5000 PF"));
  EXPECT_THAT(out, HasSubstr("edge-2  NEW_TARGET  no         -        -"));
  EXPECT_THAT(out, HasSubstr("edge-3  IDLE"));
}

TEST(SmigctlRenderTest, MigrationsShowDurationAndRollbackReason) {
  migrator::v1::ListMigrationsResponse r;
  *r.add_migrations() = Running();
  auto* m = r.add_migrations();
  m->set_id("mig-6");
  m->set_session_id(1);
  m->set_from_server_id("edge-1");
  m->set_trigger(migrator::v1::TRIGGER_AUTO);
  m->set_phase(migrator::v1::PHASE_ROLLED_BACK);
  m->set_rollback_reason("edge-3 is full");
  m->mutable_duration()->set_nanos(250000000);

  std::vector<std::string> lines = absl::StrSplit(RenderMigrations(r, kNow), '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ID     SESSION  FROM -> TO        TRIGGER  PHASE        DURATION  ROLLBACK REASON");
  EXPECT_EQ(lines[1], "mig-7  1        edge-1 -> edge-2  manual   OVERLAPPING  1.234 s");
  EXPECT_EQ(lines[2], "mig-6  1        edge-1 -> (auto)  auto     ROLLED_BACK  0.250 s   edge-3 is full");
}

TEST(SmigctlRenderTest, MigrationWithPhaseHistory) {
  migrator::v1::Migration m = Running();
  const absl::Time start = kNow - absl::Milliseconds(1234);
  m.set_phase(migrator::v1::PHASE_DONE);
  m.set_generation(3);
  m.set_reason("closer");
  m.mutable_duration()->set_seconds(1);
  m.mutable_duration()->set_nanos(500000000);
  auto add = [&](migrator::v1::Phase p, absl::Duration after, const char* note) {
    auto* c = m.add_history();
    c->set_phase(p);
    SetTime(c->mutable_at(), start + after);
    c->set_note(note);
  };
  add(migrator::v1::PHASE_PREPARING, absl::ZeroDuration(), "");
  add(migrator::v1::PHASE_TRANSFERRING, absl::Milliseconds(120), "exported 2 flows");
  add(migrator::v1::PHASE_DONE, absl::Milliseconds(1500), "");

  const std::string out = RenderMigration(m, kNow);
  EXPECT_THAT(out, HasSubstr("id          mig-7\n"));
  EXPECT_THAT(out, HasSubstr("from -> to  edge-1 -> edge-2\n"));
  EXPECT_THAT(out, HasSubstr("phase       DONE\n"));
  EXPECT_THAT(out, HasSubstr("duration    1.500 s\n"));
  EXPECT_THAT(out, HasSubstr("started     2023-11-14T22:13:18.766Z\n"));
  EXPECT_THAT(out, Not(HasSubstr("rollback")));
  EXPECT_THAT(out, HasSubstr("PHASE         AT                        +TIME    NOTE\n"));
  EXPECT_THAT(out, HasSubstr("TRANSFERRING  2023-11-14T22:13:18.886Z  0.120 s  exported 2 flows\n"));
  EXPECT_THAT(out, HasSubstr("DONE          2023-11-14T22:13:20.266Z  1.500 s\n"));
}

TEST(SmigctlRenderTest, DecisionsAndOneDecisionWithCandidates) {
  decision::v1::ListDecisionsResponse r;
  auto* d = r.add_decisions();
  d->set_id("d-9");
  d->set_session_id(1);
  d->set_outcome(decision::v1::OUTCOME_MIGRATE);
  d->set_current_server_id("edge-1");
  d->set_target_server_id("edge-2");
  d->add_reasons("edge-2 costs 31% less");
  d->add_reasons("best for 3.0 s >= dwell 2 s");
  SetTime(d->mutable_decided_at(), kNow - absl::Seconds(4));
  auto* c = d->add_candidates();
  c->set_server_id("edge-2");
  c->set_cost(1.25);
  c->set_srtt_ms(8);
  c->set_load(0.3);
  c->set_eligible(true);
  c = d->add_candidates();
  c->set_server_id("edge-3");
  c->set_load(1);
  c->set_note("full");

  std::vector<std::string> lines = absl::StrSplit(RenderDecisions(r, kNow), '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "ID   SESSION  OUTCOME  CURRENT -> TARGET  DECIDED    MIGRATION  REASONS");
  EXPECT_EQ(lines[1],
            "d-9  1        MIGRATE  edge-1 -> edge-2   4.0 s ago  -          "
            "edge-2 costs 31% less; best for 3.0 s >= dwell 2 s");

  const std::string one = RenderDecision(*d);
  EXPECT_THAT(one, HasSubstr("outcome            MIGRATE\n"));
  EXPECT_THAT(one, HasSubstr("CANDIDATE  COST   SRTT MS  BANDWIDTH  LOAD  ELIGIBLE  NOTE\n"));
  EXPECT_THAT(one, HasSubstr("edge-2     1.250  8.0      -          30%   yes\n"));
  EXPECT_THAT(one, HasSubstr("edge-3     0.000  -        -          100%  no        full\n"));
  EXPECT_THAT(one, HasSubstr("reasons:\n  - edge-2 costs 31% less\n  - best for 3.0 s"));
}

TEST(SmigctlRenderTest, PolicyUsesProtoFieldNames) {
  decision::v1::Policy p;
  p.set_latency_weight(1);
  p.set_margin(0.2);
  p.mutable_dwell()->set_seconds(2);
  p.set_max_load(0.9);
  p.set_mode(decision::v1::MODE_AUTOMATIC);
  const std::string out = RenderPolicy(p);
  EXPECT_THAT(out, HasSubstr("latency_weight    1\n"));
  EXPECT_THAT(out, HasSubstr("margin            0.2\n"));
  EXPECT_THAT(out, HasSubstr("dwell             2s\n"));
  EXPECT_THAT(out, HasSubstr("mode              AUTOMATIC\n"));
}

TEST(SmigctlProgressLineTest, RunningShowsTimeSinceStart) {
  EXPECT_EQ(ProgressLine(Running(), kNow),
            "mig-7  session 1  edge-1 -> edge-2  OVERLAPPING  1.234 s");
}

TEST(SmigctlProgressLineTest, FinishedShowsItsDurationAndRollbackReason) {
  migrator::v1::Migration m = Running();
  m.set_phase(migrator::v1::PHASE_ROLLED_BACK);
  m.set_rollback_reason("ImportState at edge-2: UNAVAILABLE");
  m.mutable_duration()->set_nanos(812000000);
  EXPECT_EQ(ProgressLine(m, kNow + absl::Seconds(30)),
            "mig-7  session 1  edge-1 -> edge-2  ROLLED_BACK  0.812 s  "
            "ImportState at edge-2: UNAVAILABLE");
  EXPECT_EQ(ExitCode(m), 1);
  m.set_phase(migrator::v1::PHASE_DONE);
  EXPECT_EQ(ExitCode(m), 0);
  m.set_phase(migrator::v1::PHASE_CUT_OVER);
  EXPECT_EQ(ExitCode(m), 2);
  EXPECT_FALSE(IsFinished(m.phase()));
}

TEST(SmigctlToJsonTest, OneLineWithProtoFieldNamesAndDefaults) {
  const migrator::v1::Migration m = Running();
  const std::string json = ToJson(m);
  EXPECT_THAT(json, Not(HasSubstr("\n")));
  EXPECT_THAT(json, HasSubstr(R"("session_id":"1")"));
  EXPECT_THAT(json, HasSubstr(R"("from_server_id":"edge-1")"));
  EXPECT_THAT(json, HasSubstr(R"("phase":"PHASE_OVERLAPPING")"));
  EXPECT_THAT(json, HasSubstr(R"("rollback_reason":"")"));  // printed even when empty
  EXPECT_THAT(json, Not(HasSubstr("sessionId")));

  migrator::v1::Migration back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, m));
}

TEST(SmigctlFormatRpcErrorTest, NoAnswerNamesTheServerAndItsAddress) {
  EXPECT_EQ(FormatRpcError("Migrate", "SMM", "10.0.0.9:7300",
                           absl::UnavailableError("failed to connect to all addresses"),
                           ErrorOrigin::kNoAnswer),
            "smigctl: Migrate: UNAVAILABLE: cannot reach the SMM at 10.0.0.9:7300 (--smm=ADDR): "
            "failed to connect to all addresses");
  EXPECT_THAT(FormatRpcError("Evaluate", "MDM", "10.0.0.5:7200",
                             absl::DeadlineExceededError("Deadline Exceeded"),
                             ErrorOrigin::kNoAnswer),
              HasSubstr("DEADLINE_EXCEEDED: no answer from the MDM at 10.0.0.5:7200"));
  // Other codes gRPC makes up itself are printed as they are.
  EXPECT_EQ(FormatRpcError("ListServers", "PMM", "x", absl::InternalError("bad frame"),
                           ErrorOrigin::kNoAnswer),
            "smigctl: ListServers: INTERNAL: bad frame");
}

TEST(SmigctlFormatRpcErrorTest, AServersErrorIsPrintedAsItIs) {
  // The SMM answered: the hop that failed is behind it, and its message names it.
  EXPECT_EQ(FormatRpcError("Migrate", "SMM", "10.0.0.9:7300",
                           absl::UnavailableError("target edge-2 (agent 10.0.0.2:7400) is "
                                                  "unreachable: UNAVAILABLE: failed to connect"),
                           ErrorOrigin::kServer),
            "smigctl: Migrate: UNAVAILABLE: target edge-2 (agent 10.0.0.2:7400) is unreachable: "
            "UNAVAILABLE: failed to connect");
  EXPECT_EQ(FormatRpcError("Migrate", "SMM", "x",
                           absl::DeadlineExceededError("ExportState at edge-1: Deadline Exceeded"),
                           ErrorOrigin::kServer),
            "smigctl: Migrate: DEADLINE_EXCEEDED: ExportState at edge-1: Deadline Exceeded");
  EXPECT_EQ(FormatRpcError("GetMigration", "SMM", "x", absl::NotFoundError("no migration mig-9"),
                           ErrorOrigin::kServer),
            "smigctl: GetMigration: NOT_FOUND: no migration mig-9");
  EXPECT_EQ(FormatRpcError("GetPolicy", "MDM", "x", absl::UnimplementedError(""),
                           ErrorOrigin::kServer),
            "smigctl: GetPolicy: UNIMPLEMENTED");
}

}  // namespace
}  // namespace smig::smigctl
