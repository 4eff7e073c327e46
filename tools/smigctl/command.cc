#include "tools/smigctl/command.h"

#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/status_macros.h"

namespace smig::smigctl {
namespace {

absl::Status Bad(absl::string_view message) { return absl::InvalidArgumentError(message); }

struct VerbInfo {
  const char* name;
  Verb verb;
  const char* args;  // positional arguments, for messages
  int arg_count;
};

// `policy set` is a second word of `policy`, handled below.
constexpr VerbInfo kVerbs[] = {
    {"help", Verb::kHelp, "", 0},
    {"servers", Verb::kServers, "", 0},
    {"proximity", Verb::kProximity, "VEHICLE", 1},
    {"sessions", Verb::kSessions, "", 0},
    {"migrations", Verb::kMigrations, "", 0},
    {"migration", Verb::kMigration, "ID", 1},
    {"migrate", Verb::kMigrate, "SESSION", 1},
    {"watch", Verb::kWatch, "ID", 1},
    {"cancel", Verb::kCancel, "ID", 1},
    {"decisions", Verb::kDecisions, "", 0},
    {"evaluate", Verb::kEvaluate, "SESSION", 1},
    {"policy", Verb::kPolicy, "", 0},
    {"session", Verb::kCreateSession, "", 0},  // only as `session create`
    {"health", Verb::kHealth, "ADDRESS", 1},
};

absl::StatusOr<uint64_t> ParseSession(absl::string_view what, absl::string_view s) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v == 0) {
    return Bad(absl::StrCat(what, " \"", s, "\" is not a session id (a positive number)"));
  }
  return v;
}

// A command-specific flag is rejected elsewhere, so a misplaced one never silently
// does nothing (`smigctl sessions --session=3` filters nothing: sessions has no filter).
absl::Status CheckFlag(bool given, absl::string_view flag, Verb verb, absl::string_view name,
                       std::initializer_list<Verb> allowed) {
  if (!given) return absl::OkStatus();
  for (Verb v : allowed) {
    if (v == verb) return absl::OkStatus();
  }
  return Bad(absl::StrCat("--", flag, " does not apply to ", name));
}

}  // namespace

absl::StatusOr<Command> ParseCommand(const std::vector<std::string>& words,
                                     const FlagValues& flags) {
  if (words.empty()) return Bad("no command given");
  const VerbInfo* info = nullptr;
  for (const VerbInfo& v : kVerbs) {
    if (words[0] == v.name) info = &v;
  }
  if (info == nullptr) return Bad(absl::StrCat("unknown command \"", words[0], "\""));

  Command c;
  c.verb = info->verb;
  std::string name = info->name;
  std::vector<std::string> args(words.begin() + 1, words.end());
  if (c.verb == Verb::kPolicy && !args.empty() && args[0] == "set") {
    c.verb = Verb::kPolicySet;
    name = "policy set";
    args.erase(args.begin());
  }
  if (c.verb == Verb::kCreateSession) {
    if (args.empty() || args[0] != "create") return Bad("session: use `session create`");
    name = "session create";
    args.erase(args.begin());
  }
  const int want = info->arg_count;
  if (static_cast<int>(args.size()) < want) {
    return Bad(absl::StrCat(name, ": missing ", info->args));
  }
  if (static_cast<int>(args.size()) > want) {
    return Bad(absl::StrCat(name, ": unexpected argument \"", args[want], "\""));
  }

  if (flags.output == "text") {
    c.output = Output::kText;
  } else if (flags.output == "json") {
    c.output = Output::kJson;
  } else {
    return Bad(absl::StrCat("--output=", flags.output, ": use text or json"));
  }
  if (!absl::ParseDuration(flags.timeout, &c.timeout) || c.timeout <= absl::ZeroDuration()) {
    return Bad(absl::StrCat("--timeout=", flags.timeout, ": not a positive duration (5s, 500ms)"));
  }

  const Verb v = c.verb;
  for (absl::Status s : {
           CheckFlag(!flags.session.empty(), "session", v, name, {Verb::kMigrations, Verb::kDecisions}),
           CheckFlag(!flags.limit.empty(), "limit", v, name, {Verb::kDecisions, Verb::kSessions}),
           CheckFlag(!flags.vehicle.empty(), "vehicle", v, name, {Verb::kSessions}),
           CheckFlag(!flags.edge.empty(), "edge", v, name, {Verb::kSessions}),
           CheckFlag(!flags.to.empty(), "to", v, name, {Verb::kMigrate}),
           CheckFlag(!flags.reason.empty(), "reason", v, name, {Verb::kMigrate, Verb::kCancel}),
           CheckFlag(!flags.request_id.empty(), "request-id", v, name, {Verb::kMigrate}),
           CheckFlag(flags.watch, "watch", v, name, {Verb::kMigrate}),
           CheckFlag(!flags.json.empty(), "json", v, name, {Verb::kPolicySet, Verb::kCreateSession}),
           CheckFlag(!flags.file.empty(), "file", v, name, {Verb::kPolicySet, Verb::kCreateSession}),
           CheckFlag(!flags.redundancy.empty(), "redundancy", v, name, {Verb::kCreateSession}),
           CheckFlag(!flags.vehicle_agent.empty(), "vehicle-agent", v, name, {Verb::kCreateSession}),
       }) {
    if (!s.ok()) return s;
  }

  switch (v) {
    case Verb::kProximity:
      c.vehicle_id = args[0];
      break;
    case Verb::kMigration:
    case Verb::kWatch:
    case Verb::kCancel:
      c.migration_id = args[0];
      break;
    case Verb::kHealth:
      c.address = args[0];
      break;
    case Verb::kMigrate:
    case Verb::kEvaluate: {
      SMIG_ASSIGN_OR_RETURN(c.session_id, ParseSession(absl::StrCat(name, ":"), args[0]));
      break;
    }
    default:
      break;
  }
  if (!flags.session.empty()) {
    SMIG_ASSIGN_OR_RETURN(c.session_id, ParseSession("--session:", flags.session));
  }
  if (!flags.limit.empty() && (!absl::SimpleAtoi(flags.limit, &c.limit) || c.limit == 0)) {
    return Bad(absl::StrCat("--limit=", flags.limit, ": not a positive number"));
  }
  if (v == Verb::kMigrate && flags.to.empty()) {
    return Bad("migrate: give --to=EDGE (a server id) or --to=auto");
  }
  if ((v == Verb::kPolicySet || v == Verb::kCreateSession) &&
      flags.json.empty() == flags.file.empty()) {
    return Bad(absl::StrCat(name, ": give exactly one of --json='{...}' and --file=FILE"));
  }
  c.vehicle_agent = flags.vehicle_agent;
  c.vehicle = flags.vehicle;
  c.edge = flags.edge;
  if (!flags.redundancy.empty()) {
    c.redundancy = dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED;
    for (auto p : {dataplane::v1::REDUNDANCY_POLICY_OFF, dataplane::v1::REDUNDANCY_POLICY_AUTO,
                   dataplane::v1::REDUNDANCY_POLICY_ALWAYS}) {
      if (flags.redundancy == RedundancyLabel(p)) c.redundancy = p;
    }
    if (c.redundancy == dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED) {
      return Bad(absl::StrCat("--redundancy=", flags.redundancy, ": use off, auto or always"));
    }
  }
  c.to = flags.to;
  c.reason = flags.reason;
  c.request_id = flags.request_id;
  c.watch = flags.watch;
  c.json = flags.json;
  c.file = flags.file;
  return c;
}

Service ServiceOf(Verb verb) {
  switch (verb) {
    case Verb::kServers:
    case Verb::kProximity:
      return Service::kPmm;
    case Verb::kDecisions:
    case Verb::kEvaluate:
    case Verb::kPolicy:
    case Verb::kPolicySet:
      return Service::kMdm;
    case Verb::kSessions:
    case Verb::kCreateSession:
    case Verb::kMigrations:
    case Verb::kMigration:
    case Verb::kMigrate:
    case Verb::kWatch:
    case Verb::kCancel:
      return Service::kSmm;
    case Verb::kHealth:
      return Service::kAny;
    case Verb::kHelp:
      break;
  }
  return Service::kNone;
}

std::string Usage() {
  return R"(smigctl: operate smig's control plane (PMM, MDM, SMM) over gRPC.

usage: smigctl COMMAND [ARGS] [--flags]   (flags may come anywhere; dashes or underscores)

PMM (proximity)
  servers                       edge servers: agent, SCTP addresses, load, expiry
                                  smigctl servers
  proximity VEHICLE             each server's role, reachability, RTT, hops, paths
                                  smigctl proximity car-1
SMM (migrator)
  sessions [--vehicle=ID] [--edge=ID] [--limit=N]
                                sessions, their edge, generation, migration in flight;
                                only a vehicle's, only those on (or moving to) an edge,
                                at most N (by id; the count of all that matched follows)
                                  smigctl sessions --edge=edge-2 --limit=20
  session create --json='{...}' | --file=FILE [--redundancy=off|auto|always]
                 [--vehicle-agent=ADDRESS]
                                open a session on an edge (CreateSessionRequest JSON);
                                --redundancy: send it over two radio paths at once
                                never, while the primary path is degraded (the
                                default), or always; --vehicle-agent: hand the
                                session's key to the vehicle's data plane (its agent
                                API; without it the vehicle refuses the session's
                                edges, and only --output=json shows the key)
                                  smigctl session create --redundancy=always --json='{
                                    "session_id":"1","vehicle_id":"car-1",
                                    "server_id":"edge-1","vehicle_port":6000,
                                    "vehicle_addresses":["10.1.0.2","10.2.0.2"],
                                    "flows":[{"source":{"file":"/srv/movie.ts"}}]}'
  migrations [--session=N]      migrations, newest state first
                                  smigctl migrations --session=1
  migration ID                  one migration with its phase history
                                  smigctl migration mig-7
  migrate SESSION --to=EDGE|auto [--reason=TEXT] [--request-id=ID] [--watch]
                                start a migration; --watch follows it to the end
                                (exit 0: DONE, 1: ROLLED_BACK, 2: error)
                                  smigctl migrate 1 --to=edge-2 --watch
  watch ID                      follow a running migration, like migrate --watch
                                  smigctl watch mig-7
  cancel ID [--reason=TEXT]     roll back a migration that has not cut over
                                  smigctl cancel mig-7 --reason="wrong edge"
MDM (decision)
  decisions [--session=N] [--limit=N]
                                recent decisions and why, newest first
                                  smigctl decisions --session=1 --limit=10
  evaluate SESSION              decide now for one session (moves nothing)
                                  smigctl evaluate 1
  policy                        the decision policy
                                  smigctl policy --output=json
  policy set --json='{...}' | --file=FILE
                                change the policy: the fields given replace the current ones
                                (protobuf JSON, unknown keys rejected; a 0 counts as unset)
                                  smigctl policy set --json='{"margin":0.3,"dwell":"2s"}'
Any server (PMM, MDM, SMM, a data plane's agent)
  health ADDRESS                grpc.health.v1.Health/Check: SERVING exits 0, anything
                                else 1, no answer 2 (the --tls-* flags apply)
                                  smigctl health unix:/run/smig/edge.sock

global flags
  --pmm=ADDR      PMM address (else $SMIG_PMM, else 127.0.0.1:7100)
  --mdm=ADDR      MDM address (else $SMIG_MDM, else 127.0.0.1:7200)
  --smm=ADDR      SMM address (else $SMIG_SMM, else 127.0.0.1:7300)
  --output=text|json   json: protobuf JSON with proto field names, one object per line
  --timeout=5s    deadline of each call (--watch follows until the migration ends)
  --ca=FILE       verify servers with this CA (TLS); plaintext when unset
  --cert=FILE --key=FILE   client certificate for mutual TLS
  --server-name=NAME   the name in the certificate of a server given by IP address

exit status: 0 ok, 1 migration rolled back, 2 usage or RPC error
RPC errors: "smigctl: METHOD: CODE: message", the server's own message when it answered
  (an SMM names the edge behind it that failed); "cannot reach the SMM at ADDR" only when
  the server itself did not answer
)";
}

migrator::v1::MigrateRequest BuildMigrateRequest(const Command& command) {
  migrator::v1::MigrateRequest r;
  r.set_session_id(command.session_id);
  if (command.to == "auto") {
    r.mutable_auto_();
  } else {
    r.set_target_server_id(command.to);
  }
  r.set_reason(command.reason);
  r.set_request_id(command.request_id);
  r.set_trigger(migrator::v1::TRIGGER_MANUAL);
  return r;
}

absl::StatusOr<decision::v1::Policy> ParsePolicyJson(absl::string_view json,
                                                     absl::string_view origin,
                                                     const decision::v1::Policy& current) {
  decision::v1::Policy given;
  SMIG_RETURN_IF_ERROR(ParseJsonConfig(json, origin, given));
  decision::v1::Policy p = current;
  p.MergeFrom(given);
  return p;
}

absl::StatusOr<migrator::v1::CreateSessionRequest> ParseCreateSessionJson(
    absl::string_view json, absl::string_view origin, dataplane::v1::RedundancyPolicy redundancy) {
  migrator::v1::CreateSessionRequest r;
  SMIG_RETURN_IF_ERROR(ParseJsonConfig(json, origin, r));
  if (redundancy != dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED) r.set_redundancy(redundancy);
  return r;
}

std::string RedundancyLabel(dataplane::v1::RedundancyPolicy policy) {
  switch (policy) {
    case dataplane::v1::REDUNDANCY_POLICY_OFF: return "off";
    case dataplane::v1::REDUNDANCY_POLICY_AUTO: return "auto";
    case dataplane::v1::REDUNDANCY_POLICY_ALWAYS: return "always";
    default: return "-";
  }
}

std::string ResolveAddress(absl::string_view flag, const char* env, absl::string_view fallback) {
  if (!flag.empty()) return std::string(flag);
  if (env != nullptr && *env != '\0') return env;
  return std::string(fallback);
}

}  // namespace smig::smigctl
