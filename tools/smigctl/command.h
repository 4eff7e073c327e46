// smigctl's command line: positional words plus flag values in, a validated Command out.
// Kept free of gRPC and of abseil's global flags so that every usage error is unit-tested.
//
//   FlagValues flags;  flags.to = "edge-2";  flags.watch = true;
//   absl::StatusOr<Command> c = ParseCommand({"migrate", "1"}, flags);
//   // c->verb == Verb::kMigrate, c->session_id == 1
//   migrator::v1::MigrateRequest r = BuildMigrateRequest(*c);  // target_server_id "edge-2"
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "smig/decision/v1/decision.pb.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace smig::smigctl {

enum class Output { kText, kJson };

// Flag values as typed. Numbers and durations are strings here on purpose: a bad value is
// then our usage error (exit 2), not abseil's own parse failure (which exits 1).
struct FlagValues {
  std::string output = "text";
  std::string timeout = "5s";
  std::string session;  // migrations, decisions: filter
  std::string limit;    // decisions, sessions
  std::string vehicle;  // sessions: filter
  std::string edge;     // sessions: filter (serving, or the target of a migration)
  std::string to;       // migrate: an edge id or "auto"
  std::string reason;   // migrate, cancel
  std::string request_id;
  bool watch = false;
  std::string json;  // policy set, session create
  std::string file;  // policy set, session create
  std::string redundancy;  // session create: off, auto or always
  std::string vehicle_agent;  // session create: the vehicle data plane's agent address
};

enum class Verb {
  kHelp,
  kServers,
  kProximity,
  kSessions,
  kMigrations,
  kMigration,
  kMigrate,
  kWatch,
  kCancel,
  kDecisions,
  kEvaluate,
  kPolicy,
  kPolicySet,
  kCreateSession,
  kHealth,
};

// Which service a verb talks to (for the address in error messages).
// kAny: the address is the command's own (health ADDRESS).
enum class Service { kNone, kPmm, kMdm, kSmm, kAny };

struct Command {
  Verb verb = Verb::kHelp;
  Output output = Output::kText;
  absl::Duration timeout = absl::Seconds(5);
  std::string vehicle_id;    // proximity
  std::string migration_id;  // migration, watch, cancel
  std::string address;       // health
  uint64_t session_id = 0;   // migrate, evaluate; migrations/decisions filter (0: all)
  uint32_t limit = 0;        // decisions (0: the server's default), sessions (0: all)
  std::string vehicle;       // sessions: only this vehicle's
  std::string edge;          // sessions: only those on (or moving to) this edge
  std::string to;            // migrate: a server id, or "auto"
  std::string reason;
  std::string request_id;
  bool watch = false;
  std::string json;  // policy set, session create: exactly one of these two
  std::string file;
  // session create: overrides the JSON's "redundancy" unless UNSPECIFIED.
  dataplane::v1::RedundancyPolicy redundancy = dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED;
  // session create: where to hand the session's key (the vehicle's agent API); empty: the
  // key is only in the answer (--output=json shows it as session_key).
  std::string vehicle_agent;
};

// `words` are the positional arguments after the program name. INVALID_ARGUMENT, saying
// what is wrong, for an unknown command, a missing or extra argument, a bad value, or a
// flag that the command does not take.
absl::StatusOr<Command> ParseCommand(const std::vector<std::string>& words,
                                     const FlagValues& flags);

Service ServiceOf(Verb verb);

// The --help text: commands with an example each, then the global flags.
std::string Usage();

migrator::v1::MigrateRequest BuildMigrateRequest(const Command& command);

// `current` with the fields that protobuf JSON `json` sets laid over it (a field set to
// its zero value counts as unset: proto3 cannot tell them apart). Unknown keys are
// INVALID_ARGUMENT naming the key.
absl::StatusOr<decision::v1::Policy> ParsePolicyJson(absl::string_view json,
                                                     absl::string_view origin,
                                                     const decision::v1::Policy& current = {});
// A CreateSessionRequest from protobuf JSON; unknown keys are INVALID_ARGUMENT. A
// `redundancy` other than UNSPECIFIED (the --redundancy flag) replaces the JSON's.
absl::StatusOr<migrator::v1::CreateSessionRequest> ParseCreateSessionJson(
    absl::string_view json, absl::string_view origin,
    dataplane::v1::RedundancyPolicy redundancy = dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED);
// "off", "auto", "always" (what smigctl shows; "-" for UNSPECIFIED).
std::string RedundancyLabel(dataplane::v1::RedundancyPolicy policy);

// SMIG_PMM-style override: the flag if given, else the environment value, else `fallback`.
std::string ResolveAddress(absl::string_view flag, const char* env, absl::string_view fallback);

}  // namespace smig::smigctl
