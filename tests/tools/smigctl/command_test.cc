#include "tools/smigctl/command.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace smig::smigctl {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Command> Parse(std::vector<std::string> words, FlagValues flags = {}) {
  return ParseCommand(words, flags);
}

std::string ErrorOf(std::vector<std::string> words, FlagValues flags = {}) {
  absl::StatusOr<Command> c = Parse(std::move(words), flags);
  EXPECT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
  return std::string(c.status().message());
}

TEST(SmigctlParseCommandTest, MigrateToAnEdgeWithWatch) {
  FlagValues f;
  f.to = "edge-2";
  f.watch = true;
  f.reason = "closer";
  f.request_id = "r-1";
  f.output = "json";
  f.timeout = "750ms";
  absl::StatusOr<Command> c = Parse({"migrate", "1"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->verb, Verb::kMigrate);
  EXPECT_EQ(c->session_id, 1u);
  EXPECT_TRUE(c->watch);
  EXPECT_EQ(c->output, Output::kJson);
  EXPECT_EQ(c->timeout, absl::Milliseconds(750));
  EXPECT_EQ(ServiceOf(c->verb), Service::kSmm);

  migrator::v1::MigrateRequest r = BuildMigrateRequest(*c);
  EXPECT_EQ(r.session_id(), 1u);
  EXPECT_EQ(r.target_case(), migrator::v1::MigrateRequest::kTargetServerId);
  EXPECT_EQ(r.target_server_id(), "edge-2");
  EXPECT_EQ(r.reason(), "closer");
  EXPECT_EQ(r.request_id(), "r-1");
  EXPECT_EQ(r.trigger(), migrator::v1::TRIGGER_MANUAL);
}

TEST(SmigctlParseCommandTest, MigrateAutoSetsTheAutoTarget) {
  FlagValues f;
  f.to = "auto";
  absl::StatusOr<Command> c = Parse({"migrate", "42"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  migrator::v1::MigrateRequest r = BuildMigrateRequest(*c);
  EXPECT_EQ(r.target_case(), migrator::v1::MigrateRequest::kAuto);
  EXPECT_EQ(r.session_id(), 42u);
}

TEST(SmigctlParseCommandTest, EveryCommandWithItsArguments) {
  absl::StatusOr<Command> c = Parse({"proximity", "car-1"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->verb, Verb::kProximity);
  EXPECT_EQ(c->vehicle_id, "car-1");
  EXPECT_EQ(ServiceOf(c->verb), Service::kPmm);

  c = Parse({"migration", "mig-7"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->migration_id, "mig-7");

  FlagValues f;
  f.reason = "wrong edge";
  c = Parse({"cancel", "mig-7"}, f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->verb, Verb::kCancel);
  EXPECT_EQ(c->reason, "wrong edge");

  f = {};
  f.session = "3";
  f.limit = "10";
  c = Parse({"decisions"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->session_id, 3u);
  EXPECT_EQ(c->limit, 10u);
  EXPECT_EQ(ServiceOf(c->verb), Service::kMdm);

  f = {};
  f.json = R"({"margin":0.3})";
  c = Parse({"policy", "set"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->verb, Verb::kPolicySet);
  EXPECT_EQ(c->json, R"({"margin":0.3})");

  f = {};
  f.vehicle = "bus-1";
  f.edge = "edge-2";
  f.limit = "50";
  c = Parse({"sessions"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vehicle, "bus-1");
  EXPECT_EQ(c->edge, "edge-2");
  EXPECT_EQ(c->limit, 50u);

  for (const char* verb : {"servers", "sessions", "migrations", "policy", "help"}) {
    EXPECT_TRUE(Parse({verb}).ok()) << verb;
  }
  EXPECT_TRUE(Parse({"evaluate", "5"}).ok());
  EXPECT_TRUE(Parse({"watch", "mig-1"}).ok());

  c = Parse({"health", "unix:/run/smig/edge.sock"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->address, "unix:/run/smig/edge.sock");
  EXPECT_EQ(ServiceOf(c->verb), Service::kAny);
  EXPECT_THAT(Parse({"health"}).status().message(), HasSubstr("health: missing ADDRESS"));
}

TEST(SmigctlParseCommandTest, SessionCreateTakesAVehicleAgent) {
  FlagValues f;
  f.json = R"({"session_id":"1"})";
  f.vehicle_agent = "unix:/run/smig/vehicle.sock";
  absl::StatusOr<Command> c = ParseCommand({"session", "create"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vehicle_agent, "unix:/run/smig/vehicle.sock");
  FlagValues other;
  other.vehicle_agent = "unix:/x.sock";
  EXPECT_THAT(ParseCommand({"sessions"}, other).status().message(),
              HasSubstr("--vehicle-agent does not apply to sessions"));
}

TEST(SmigctlParseCommandTest, UsageErrorsSayWhatIsWrong) {
  EXPECT_THAT(ErrorOf({}), HasSubstr("no command"));
  EXPECT_THAT(ErrorOf({"frobnicate"}), HasSubstr("unknown command \"frobnicate\""));
  EXPECT_THAT(ErrorOf({"proximity"}), HasSubstr("proximity: missing VEHICLE"));
  EXPECT_THAT(ErrorOf({"migration"}), HasSubstr("missing ID"));
  EXPECT_THAT(ErrorOf({"servers", "edge-1"}), HasSubstr("unexpected argument \"edge-1\""));
  EXPECT_THAT(ErrorOf({"policy", "get"}), HasSubstr("unexpected argument \"get\""));
  EXPECT_THAT(ErrorOf({"migrate", "1"}), HasSubstr("--to=EDGE"));

  FlagValues to;
  to.to = "edge-2";
  EXPECT_THAT(ErrorOf({"migrate", "one"}, to), HasSubstr("\"one\" is not a session id"));
  EXPECT_THAT(ErrorOf({"migrate", "0"}, to), HasSubstr("not a session id"));
  EXPECT_THAT(ErrorOf({"migrate", "-1"}, to), HasSubstr("not a session id"));
  EXPECT_THAT(ErrorOf({"sessions"}, to), HasSubstr("--to does not apply to sessions"));
  FlagValues fleet;
  fleet.vehicle = "car-1";
  EXPECT_THAT(ErrorOf({"migrations"}, fleet), HasSubstr("--vehicle does not apply to migrations"));
  fleet = {};
  fleet.edge = "edge-1";
  EXPECT_THAT(ErrorOf({"servers"}, fleet), HasSubstr("--edge does not apply to servers"));
  fleet.limit = "none";
  EXPECT_THAT(ErrorOf({"sessions"}, fleet), HasSubstr("--limit=none"));

  FlagValues f;
  f.output = "yaml";
  EXPECT_THAT(ErrorOf({"servers"}, f), HasSubstr("--output=yaml"));
  f = {};
  f.timeout = "soon";
  EXPECT_THAT(ErrorOf({"servers"}, f), HasSubstr("--timeout=soon"));
  f.timeout = "0s";
  EXPECT_THAT(ErrorOf({"servers"}, f), HasSubstr("positive"));
  f = {};
  f.limit = "0";
  EXPECT_THAT(ErrorOf({"decisions"}, f), HasSubstr("--limit=0"));
  f = {};
  f.watch = true;
  EXPECT_THAT(ErrorOf({"cancel", "mig-1"}, f), HasSubstr("--watch does not apply to cancel"));
  f = {};
  f.session = "x";
  EXPECT_THAT(ErrorOf({"migrations"}, f), HasSubstr("--session: \"x\""));
  EXPECT_THAT(ErrorOf({"policy", "set"}), HasSubstr("exactly one of --json"));
  f = {};
  f.json = "{}";
  f.file = "p.json";
  EXPECT_THAT(ErrorOf({"policy", "set"}, f), HasSubstr("exactly one"));
  EXPECT_THAT(ErrorOf({"policy"}, f), HasSubstr("--json does not apply to policy"));
}

TEST(SmigctlParsePolicyJsonTest, TakesProtoFieldNamesAndRejectsUnknownKeys) {
  absl::StatusOr<decision::v1::Policy> p =
      ParsePolicyJson(R"({"margin":0.3,"dwell":"2s","mode":"MODE_AUTOMATIC","max_load":0.9})",
                      "--json");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_DOUBLE_EQ(p->margin(), 0.3);
  EXPECT_EQ(p->dwell().seconds(), 2);
  EXPECT_EQ(p->mode(), decision::v1::MODE_AUTOMATIC);
  EXPECT_DOUBLE_EQ(p->max_load(), 0.9);

  p = ParsePolicyJson(R"({"margn":0.3})", "--json");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_THAT(p.status().message(), HasSubstr("margn"));
  EXPECT_THAT(p.status().message(), HasSubstr("--json"));
}

TEST(SmigctlParsePolicyJsonTest, GivenFieldsReplaceTheCurrentOnesAndTheRestStay) {
  decision::v1::Policy current;
  current.set_latency_weight(1);
  current.set_load_weight(0.5);
  current.set_margin(0.2);
  absl::StatusOr<decision::v1::Policy> p =
      ParsePolicyJson(R"({"margin":0.3,"dwell":"2s"})", "--json", current);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_DOUBLE_EQ(p->margin(), 0.3);
  EXPECT_DOUBLE_EQ(p->latency_weight(), 1);
  EXPECT_DOUBLE_EQ(p->load_weight(), 0.5);
  EXPECT_EQ(p->dwell().seconds(), 2);
}

TEST(SmigctlParseCommandTest, SessionCreateTakesJsonOrAFile) {
  FlagValues f;
  f.json = R"({"session_id":"1"})";
  absl::StatusOr<Command> c = ParseCommand({"session", "create"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->verb, Verb::kCreateSession);
  EXPECT_EQ(ServiceOf(c->verb), Service::kSmm);
  EXPECT_FALSE(ParseCommand({"session", "create"}, {}).ok());
  EXPECT_FALSE(ParseCommand({"session"}, f).ok());
  absl::StatusOr<migrator::v1::CreateSessionRequest> r = ParseCreateSessionJson(
      R"({"session_id":"7","vehicle_id":"car-1","server_id":"edge-1","flows":[{"source":{"file":"/m.ts"}}]})",
      "--json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->session_id(), 7u);
  EXPECT_EQ(r->flows(0).source().file(), "/m.ts");
  EXPECT_FALSE(ParseCreateSessionJson(R"({"sesion_id":"7"})", "--json").ok());
}

TEST(SmigctlParseCommandTest, SessionCreateTakesARedundancyPolicy) {
  FlagValues f;
  f.json = R"({"session_id":"1","redundancy":"REDUNDANCY_POLICY_OFF"})";
  absl::StatusOr<Command> c = ParseCommand({"session", "create"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redundancy, dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED);
  absl::StatusOr<migrator::v1::CreateSessionRequest> r =
      ParseCreateSessionJson(f.json, "--json", c->redundancy);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->redundancy(), dataplane::v1::REDUNDANCY_POLICY_OFF);  // the JSON's

  f.redundancy = "always";
  c = ParseCommand({"session", "create"}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redundancy, dataplane::v1::REDUNDANCY_POLICY_ALWAYS);
  r = ParseCreateSessionJson(f.json, "--json", c->redundancy);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->redundancy(), dataplane::v1::REDUNDANCY_POLICY_ALWAYS);  // the flag wins

  f.redundancy = "twice";
  c = ParseCommand({"session", "create"}, f);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), ::testing::HasSubstr("--redundancy=twice"));
  FlagValues other;
  other.redundancy = "off";
  EXPECT_THAT(ParseCommand({"sessions"}, other).status().message(),
              ::testing::HasSubstr("redundancy"));
  EXPECT_EQ(RedundancyLabel(dataplane::v1::REDUNDANCY_POLICY_AUTO), "auto");
  EXPECT_EQ(RedundancyLabel(dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED), "-");
}

TEST(SmigctlResolveAddressTest, FlagThenEnvironmentThenDefault) {
  EXPECT_EQ(ResolveAddress("10.0.0.1:1", "10.0.0.2:2", "127.0.0.1:7300"), "10.0.0.1:1");
  EXPECT_EQ(ResolveAddress("", "10.0.0.2:2", "127.0.0.1:7300"), "10.0.0.2:2");
  EXPECT_EQ(ResolveAddress("", "", "127.0.0.1:7300"), "127.0.0.1:7300");
  EXPECT_EQ(ResolveAddress("", nullptr, "127.0.0.1:7300"), "127.0.0.1:7300");
}

TEST(SmigctlUsageTest, ListsEveryCommandWithAnExample) {
  const std::string u = Usage();
  for (const char* example :
       {"smigctl servers", "smigctl proximity car-1", "smigctl sessions", "smigctl migrations",
        "smigctl migration mig-7", "smigctl migrate 1 --to=edge-2 --watch", "smigctl cancel",
        "smigctl decisions", "smigctl evaluate 1", "smigctl policy --output", "smigctl policy set",
        "smigctl health unix:", "--vehicle-agent=ADDRESS", "--pmm=ADDR", "--mdm=ADDR",
        "--smm=ADDR", "--ca=FILE", "--server-name", "--timeout"}) {
    EXPECT_THAT(u, HasSubstr(example));
  }
}

}  // namespace
}  // namespace smig::smigctl
