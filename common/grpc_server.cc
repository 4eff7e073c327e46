#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/grpc_address.h"
#include "common/grpc_status.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.pb.h"

namespace smig {
namespace {

// Counts every finished call by method and status code, so that each refused request
// (unknown session, bad argument, ...) shows on /metrics as well as in its reply.
class CountingInterceptor : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(prometheus::Family<prometheus::Counter>& family, std::string method)
      : family_(family), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      absl::StatusCode code = static_cast<absl::StatusCode>(methods->GetSendStatus().error_code());
      family_.Add({{"method", method_}, {"code", absl::StatusCodeToString(code)}}).Increment();
    }
    methods->Proceed();
  }

 private:
  prometheus::Family<prometheus::Counter>& family_;
  std::string method_;
};

// Marks every call this server finishes with the service that answered (kAnsweredByKey),
// so that a client can tell this server's errors from those gRPC makes up on its side
// when it cannot reach the server (smigctl's "cannot reach the SMM").
class AnsweredByInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit AnsweredByInterceptor(std::string service) : service_(std::move(service)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      methods->GetSendTrailingMetadata()->emplace(kAnsweredByKey, service_);
    }
    methods->Proceed();
  }

 private:
  std::string service_;
};

// A request gRPC could not decode reaches no handler, and gRPC answers INTERNAL with an
// empty message (proto3 has no initialization errors to name). It is the caller's
// mistake: answer INVALID_ARGUMENT, naming the type expected. Only for methods that take
// one request (unary, server-streaming): in a client stream an undecodable message looks
// to the handler, and to interceptors, exactly like the stream's end (Read() returns
// false, no message), so such a stream ends as if complete.
class UndecodableRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit UndecodableRequestInterceptor(std::string expected) : expected_(std::move(expected)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      undecodable_ = true;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        undecodable_ && methods->GetSendStatus().error_code() == grpc::StatusCode::INTERNAL) {
      methods->ModifySendStatus(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("the request is not a valid ", expected_, " (protobuf wire format)")));
    }
    methods->Proceed();
  }

 private:
  std::string expected_;
  bool undecodable_ = false;
};

class UndecodableRequestInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    using Type = grpc::experimental::ServerRpcInfo::Type;
    if (info->type() == Type::CLIENT_STREAMING || info->type() == Type::BIDI_STREAMING) {
      return nullptr;  // no interceptor for this call
    }
    // "/smig.migrator.v1.Migrator/Migrate" -> method "smig.migrator.v1.Migrator.Migrate"
    std::string method(absl::StripPrefix(info->method() != nullptr ? info->method() : "", "/"));
    std::replace(method.begin(), method.end(), '/', '.');
    const google::protobuf::MethodDescriptor* m =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(method);
    return new UndecodableRequestInterceptor(m != nullptr ? m->input_type()->full_name()
                                                          : "request message");
  }
};

class AnsweredByInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/smig.migrator.v1.Migrator/Migrate" -> "smig.migrator.v1.Migrator"
    absl::string_view method = info->method() != nullptr ? info->method() : "";
    absl::string_view service = absl::StripPrefix(method, "/");
    service = service.substr(0, service.rfind('/'));
    return new AnsweredByInterceptor(std::string(service));
  }
};

class CountingInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingInterceptorFactory(prometheus::Registry& registry)
      : family_(prometheus::BuildCounter()
                    .Name("smig_grpc_requests_total")
                    .Help("gRPC calls this server finished, by method and status code.")
                    .Register(registry)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CountingInterceptor(family_, info->method());
  }

 private:
  prometheus::Family<prometheus::Counter>& family_;
};

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return absl::Status(pem.status().code(), absl::StrCat("the TLS ", what, ": ", pem.status().message()));
  return pem;
}

// Plaintext only where no other host can connect: a unix socket or loopback.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const std::string& address,
                                                                     const TlsFiles& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty() && tls.client_ca_file.empty()) {
    if (!IsLocalAddress(address)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gRPC on ", address, " needs TLS (tls.cert_file and tls.key_file): plaintext is "
          "served on unix sockets and loopback only"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both cert_file and key_file");
  }
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  absl::StatusOr<std::string> cert = ReadPem(tls.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(tls.key_file, "private key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {  // mTLS: only clients with a certificate from this CA
    absl::StatusOr<std::string> ca = ReadPem(tls.client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

GrpcServerOptions ServerOptions(const std::string& grpc_address,
                                const std::string& metrics_address,
                                const common::v1::TlsConfig& tls, uint32_t max_request_bytes) {
  GrpcServerOptions o;
  if (!grpc_address.empty()) o.grpc_address = grpc_address;
  if (metrics_address == "off") {
    o.metrics_address.clear();
  } else if (!metrics_address.empty()) {
    o.metrics_address = metrics_address;
  }
  o.tls = {tls.cert_file(), tls.key_file(), tls.client_ca_file()};
  if (max_request_bytes > 0) {
    o.max_request_bytes = static_cast<int>(std::min<uint32_t>(max_request_bytes, INT32_MAX));
  }
  return o;
}

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
  // The default health service registers no descriptor; linking ours in (proto/grpc/health)
  // lets reflection clients (grpcurl) describe and call grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = Credentials(options.grpc_address, options.tls);
  if (!creds.ok()) return creds.status();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, *creds, &s->grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<UndecodableRequestInterceptorFactory>());
  interceptors.push_back(std::make_unique<AnsweredByInterceptorFactory>());
  if (registry) interceptors.push_back(std::make_unique<CountingInterceptorFactory>(*registry));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
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
