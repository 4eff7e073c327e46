#include "common/server_main.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace smig {

int ExitCode(const absl::Status& status) {
  if (status.ok()) return 0;
  LOG(ERROR) << status;
  return 2;
}

std::string ReadyLine(absl::string_view service, int grpc_port, int metrics_port) {
  return ReadyLine(ReadyLabel{"service", service}, grpc_port, metrics_port);
}

std::string ReadyLine(ReadyLabel label, int grpc_port, int metrics_port) {
  return absl::StrCat("{\"", label.key, "\":\"", label.value, "\",\"grpc_port\":", grpc_port,
                      ",\"metrics_port\":", metrics_port, "}");
}

void ServeUntilTerminated(absl::string_view service, GrpcServer& server,
                          const std::function<void()>& stop, absl::Duration grace) {
  ServeUntilTerminated(ReadyLabel{"service", service}, server, stop, grace);
}

void ServeUntilTerminated(ReadyLabel label, GrpcServer& server,
                          const std::function<void()>& stop, absl::Duration grace) {
  std::cout << ReadyLine(label, server.grpc_port(), server.metrics_port()) << std::endl;
  int sig = WaitForTerminationSignal();
  LOG(INFO) << "signal " << sig << ": stopping";
  server.SetServing("", false);
  if (stop) stop();
  server.Shutdown(grace);
}

}  // namespace smig
