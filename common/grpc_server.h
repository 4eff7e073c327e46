// GrpcServer: how every smig server starts. It adds, to the services it is given:
// grpc.health.v1 (Check/Watch; Kubernetes gRPC probes), server reflection (grpcurl), a
// Prometheus /metrics endpoint for `registry` with smig_grpc_requests_total{method,code}
// (every finished call), the trailing metadata "smig-answered-by: <service>" on every
// finished call (kAnsweredByKey in grpc_status.h: clients tell the server's errors from
// their own), INVALID_ARGUMENT naming the expected type for a request that does not decode
// (gRPC's own answer is INTERNAL with no message), a request size limit, optional
// TLS/mTLS, and a graceful stop.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   MyService service;
//   absl::StatusOr<std::unique_ptr<GrpcServer>> server =
//       GrpcServer::Start({.grpc_address = "0.0.0.0:7000", .metrics_address = "0.0.0.0:9100",
//                          .tls = {.cert_file = "tls.crt", .key_file = "tls.key"}},
//                         {&service}, registry);
//   WaitForTerminationSignal();          // SIGTERM or SIGINT
//   (*server)->Shutdown(absl::Seconds(5));
//
// Lifetimes: the services and the registry must outlive the server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "smig/common/v1/server.pb.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc
namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace smig {

// PEM files. cert_file + key_file turn on TLS; client_ca_file adds mTLS (clients must show a
// certificate signed by that CA). All empty: plaintext, which a server refuses to serve
// anywhere but on a unix socket or loopback (INVALID_ARGUMENT).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
};

struct GrpcServerOptions {
  // "ip:port" (port 0: pick one, see grpc_port()) or "unix:/path".
  std::string grpc_address = "127.0.0.1:0";
  std::string metrics_address = "127.0.0.1:0";  // empty: no /metrics
  TlsFiles tls;
  // The largest request message accepted; a larger one is refused with RESOURCE_EXHAUSTED
  // ("Received message larger than max (N vs. M)") before any handler sees it.
  int max_request_bytes = kDefaultMaxRequestBytes;
  static constexpr int kDefaultMaxRequestBytes = 4 << 20;  // gRPC's own default, 4 MiB
};

// The options a server's config asks for (any config message with grpc_address,
// metrics_address, tls and max_request_bytes fields): empty addresses keep the defaults, a
// metrics_address of "off" turns /metrics off, max_request_bytes 0 keeps 4 MiB.
GrpcServerOptions ServerOptions(const std::string& grpc_address,
                                const std::string& metrics_address,
                                const common::v1::TlsConfig& tls, uint32_t max_request_bytes);
template <typename Config>
GrpcServerOptions ServerOptionsFromConfig(const Config& config) {
  return ServerOptions(config.grpc_address(), config.metrics_address(), config.tls(),
                       config.max_request_bytes());
}

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services,
      std::shared_ptr<prometheus::Registry> registry);
  ~GrpcServer();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  // Health of one service ("" is the whole server); all start SERVING.
  void SetServing(const std::string& service, bool serving);
  // Reports NOT_SERVING, lets calls in flight finish for up to `grace`, then stops.
  void Shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

// Blocks the calling thread until SIGTERM or SIGINT arrives (they are blocked in the
// caller; call before starting other threads so that they inherit the mask).
void BlockTerminationSignals();
int WaitForTerminationSignal();

}  // namespace smig
