// smigctl's input (tools/smigctl/command.h): its command line (ParseCommand on the words
// and flag values), and the JSON of `policy set` (ParsePolicyJson, then the MDM's
// NormalizePolicy, which the policy meets on arrival) and of `session create`
// (ParseCreateSessionJson). The input is split on NUL bytes: the last part is the JSON,
// the parts before it are the words, the first of which may be followed by flag values.
// Checks that bad input is INVALID_ARGUMENT (smigctl's usage error), never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "services/decision/decision_engine.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/smigctl/command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smig;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts = absl::StrSplit(input, '\0');
  const std::string json = parts.back();
  parts.pop_back();

  absl::StatusOr<decision::v1::Policy> policy =
      smigctl::ParsePolicyJson(json, "--json", decision::DefaultPolicy());
  fuzz::Check(policy.ok() || absl::IsInvalidArgument(policy.status()),
              "a bad policy JSON is INVALID_ARGUMENT");
  if (policy.ok()) {
    absl::StatusOr<decision::v1::Policy> normal = decision::NormalizePolicy(*policy);
    fuzz::Check(normal.ok() || absl::IsInvalidArgument(normal.status()),
                "an invalid policy is INVALID_ARGUMENT");
    if (normal.ok()) {
      fuzz::Check(decision::ValidatePolicy(*normal).ok(), "a normalized policy is valid");
    }
  }
  for (auto redundancy : {dataplane::v1::REDUNDANCY_POLICY_UNSPECIFIED,
                          dataplane::v1::REDUNDANCY_POLICY_ALWAYS}) {
    absl::StatusOr<migrator::v1::CreateSessionRequest> create =
        smigctl::ParseCreateSessionJson(json, "--file", redundancy);
    fuzz::Check(create.ok() || absl::IsInvalidArgument(create.status()),
                "a bad session JSON is INVALID_ARGUMENT");
  }

  // The command line: words, then `--flag=value` parts become flag values.
  smigctl::FlagValues flags;
  std::vector<std::string> words;
  for (const std::string& p : parts) {
    std::pair<std::string, std::string> kv = absl::StrSplit(p, absl::MaxSplits('=', 1));
    if (kv.first == "--output") flags.output = kv.second;
    else if (kv.first == "--timeout") flags.timeout = kv.second;
    else if (kv.first == "--session") flags.session = kv.second;
    else if (kv.first == "--limit") flags.limit = kv.second;
    else if (kv.first == "--to") flags.to = kv.second;
    else if (kv.first == "--reason") flags.reason = kv.second;
    else if (kv.first == "--watch") flags.watch = true;
    else if (kv.first == "--json") flags.json = json;
    else if (kv.first == "--file") flags.file = kv.second;
    else if (kv.first == "--redundancy") flags.redundancy = kv.second;
    else words.push_back(p);
  }
  absl::StatusOr<smigctl::Command> command = smigctl::ParseCommand(words, flags);
  fuzz::Check(command.ok() || absl::IsInvalidArgument(command.status()),
              "a bad command line is INVALID_ARGUMENT");
  if (command.ok()) {
    (void)smigctl::ServiceOf(command->verb);
    if (command->verb == smigctl::Verb::kMigrate) (void)smigctl::BuildMigrateRequest(*command);
  }
  return 0;
}
