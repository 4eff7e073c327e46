// The life every smig server's main() shares. ServerMain parses the flags (common/flags.h),
// blocks SIGTERM and SIGINT before any thread starts (so every thread inherits the mask and
// only ServeUntilTerminated sees them), loads the config (common/server_config.h) and hands
// it to the server's own `serve`; an error from any of these is logged and main exits 2.
//
//   absl::Status Serve(const v1::MigratorConfig& config) {
//     MigratorEngine engine(...);
//     MigratorService service(engine);
//     SMIG_ASSIGN_OR_RETURN(std::unique_ptr<smig::GrpcServer> server,
//                           smig::GrpcServer::Start(smig::ServerOptionsFromConfig(config),
//                                                   {&service}, registry));
//     smig::ServeUntilTerminated("migrator", *server);   // until SIGTERM or SIGINT
//     return absl::OkStatus();
//   }
//
//   int main(int argc, char** argv) {
//     return smig::ServerMain<v1::MigratorConfig>(argc, argv, "the SMM.", Serve);
//   }
#pragma once

#include <functional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/server_config.h"

namespace smig {

// main's exit code once serving has ended: 0 for OK, else 2 (after logging the error).
int ExitCode(const absl::Status& status);

// {"service":"<service>","grpc_port":N,"metrics_port":M}: the line a server prints on
// stdout once it serves; scripts and tests wait for it and read the ports from it.
std::string ReadyLine(absl::string_view service, int grpc_port, int metrics_port);

// A ready line that names its server under another key than "service": the data plane's
// {"role":"edge","grpc_port":N,"metrics_port":M} is ReadyLine(ReadyLabel{"role", "edge"}, N, M).
struct ReadyLabel {
  absl::string_view key;
  absl::string_view value;
};
std::string ReadyLine(ReadyLabel label, int grpc_port, int metrics_port);

// Prints the ready line, blocks until SIGTERM or SIGINT (which must be blocked in every
// thread, as ServerMain does), then stops in order: health NOT_SERVING at once, `stop` (the
// server's own work: loops, watches, threads; may be null), and a graceful Shutdown that
// lets calls in flight finish within `grace`.
void ServeUntilTerminated(absl::string_view service, GrpcServer& server,
                          const std::function<void()>& stop = nullptr,
                          absl::Duration grace = absl::Seconds(2));
// The same, with a ready line labelled by `label`.
void ServeUntilTerminated(ReadyLabel label, GrpcServer& server,
                          const std::function<void()>& stop = nullptr,
                          absl::Duration grace = absl::Seconds(2));

template <typename Config>
int ServerMain(int argc, char** argv, absl::string_view usage,
               absl::FunctionRef<absl::Status(const Config&)> serve) {
  ParseFlags(argc, argv, usage);
  BlockTerminationSignals();
  absl::StatusOr<Config> config = LoadServerConfig<Config>();
  return ExitCode(config.ok() ? serve(*config) : config.status());
}

}  // namespace smig
