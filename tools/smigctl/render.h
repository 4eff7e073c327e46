// smigctl's output: aligned text tables of the control plane's messages, the live progress
// line of a migration, protobuf JSON and RPC error lines. Pure functions; "now" is a
// parameter so that relative times ("in 8.0 s", running durations) are testable.
//
//   std::cout << RenderSessions(response);
//   std::cout << ToJson(migration) << "\n";          // {"id":"mig-7","session_id":"1",...}
//   std::cerr << ProgressLine(migration, absl::Now());
//   // mig-7  session 1  edge-1 -> edge-2  OVERLAPPING  1.234 s
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "smig/decision/v1/decision.pb.h"
#include "smig/migrator/v1/migrator.pb.h"
#include "smig/proximity/v1/proximity.pb.h"

namespace smig::smigctl {

// Columns padded to their widest cell, two spaces apart, no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string RenderServers(const proximity::v1::ListServersResponse& response, absl::Time now);
std::string RenderProximity(const proximity::v1::VehicleProximity& proximity);
std::string RenderSessions(const migrator::v1::ListSessionsResponse& response);
std::string RenderMigrations(const migrator::v1::ListMigrationsResponse& response,
                             absl::Time now);
// One migration with its phase history (migration, cancel).
std::string RenderMigration(const migrator::v1::Migration& migration, absl::Time now);
std::string RenderDecisions(const decision::v1::ListDecisionsResponse& response, absl::Time now);
// One decision with its candidates and reasons (evaluate).
std::string RenderDecision(const decision::v1::DecisionRecord& record);
// Keys are the proto field names, as `policy set --json` takes them.
std::string RenderPolicy(const decision::v1::Policy& policy);

// One line, no newline: "mig-7  session 1  edge-1 -> edge-2  OVERLAPPING  1.234 s", plus
// the rollback reason once rolled back. The time is the final duration once the migration
// has ended, else the time since it started.
std::string ProgressLine(const migrator::v1::Migration& migration, absl::Time now);

bool IsFinished(migrator::v1::Phase phase);
// The exit status of `migrate --watch`: 0 DONE, 1 ROLLED_BACK, 2 anything else.
int ExitCode(const migrator::v1::Migration& migration);

// Protobuf JSON on one line, proto field names, defaults printed (scripts see every field).
std::string ToJson(const google::protobuf::Message& message);

// Who made an RPC's error status.
enum class ErrorOrigin {
  // The server: it answered (a smig server says so in its trailing metadata,
  // smig::AnsweredBy in common/grpc_status.h).
  kServer,
  // gRPC on smigctl's side, or something in between: no connection, --timeout passed.
  kNoAnswer,
};

// The line of a failed call: "smigctl: Migrate: UNAVAILABLE: <message>". A server's error
// is printed as it is: an SMM that answers UNAVAILABLE names the hop behind it that failed
// ("target edge-2 (agent 10.0.0.2:7400) is unreachable: ..."). Only when no server answered
// does the line name the server smigctl looked for (`service`, "SMM") and where
// (`address`): "cannot reach the SMM at 127.0.0.1:7300 (--smm=ADDR): <gRPC's reason>" for
// UNAVAILABLE, "no answer from the SMM at 127.0.0.1:7300 within --timeout: ..." for
// DEADLINE_EXCEEDED.
std::string FormatRpcError(absl::string_view method, absl::string_view service,
                           absl::string_view address, const absl::Status& status,
                           ErrorOrigin origin);

}  // namespace smig::smigctl
