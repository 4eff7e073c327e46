#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <signal.h>

#include "absl/strings/str_cat.h"

namespace smig {

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, const std::vector<grpc::Service*>& services,
    std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  if (!options.metrics_address.empty()) {
    try {  // prometheus-cpp (civetweb) reports a busy port by throwing
      s->exposer_ = std::make_unique<prometheus::Exposer>(options.metrics_address);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve /metrics on ", options.metrics_address, ": ", e.what()));
    }
    s->exposer_->RegisterCollectable(registry);
    std::vector<int> ports = s->exposer_->GetListeningPorts();
    s->metrics_port_ = ports.empty() ? 0 : ports.front();
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, grpc::InsecureServerCredentials(), &s->grpc_port_);
  for (grpc::Service* service : services) builder.RegisterService(service);
  s->server_ = builder.BuildAndStart();
  // A unix socket ("unix:/path", reachable across network namespaces) has no port.
  bool unix_socket = options.grpc_address.rfind("unix:", 0) == 0;
  if (s->server_ == nullptr || (s->grpc_port_ == 0 && !unix_socket)) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", options.grpc_address));
  }
  s->SetServing("", true);
  return s;
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

void GrpcServer::SetServing(const std::string& service, bool serving) {
  if (grpc::HealthCheckServiceInterface* h = server_->GetHealthCheckService()) {
    if (service.empty()) {
      h->SetServingStatus(serving);
    } else {
      h->SetServingStatus(service, serving);
    }
  }
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  SetServing("", false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
  exposer_.reset();
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace smig
