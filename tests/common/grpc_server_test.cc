#include "common/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "common/grpc_client.h"
#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "smig/proximity/v1/proximity.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/testbed.h"

namespace smig {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus Check(
    int port, const std::string& service,
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials()) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");  // the test certificate's name
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), creds, args);
  auto stub = Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return HealthCheckResponse::UNKNOWN;
  return resp.status();
}

TEST(GrpcServerTest, ServesHealthAndMetricsAndStopsServingOnShutdown) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("smig_test_events_total")
                     .Help("Events counted by the test.")
                     .Register(*registry);
  family.Add({}).Increment(3);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start({}, {}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->grpc_port(), 0);
  ASSERT_GT((*server)->metrics_port(), 0);

  EXPECT_EQ(Check((*server)->grpc_port(), ""), HealthCheckResponse::SERVING);
  (*server)->SetServing("smig.test.v1.Thing", false);
  EXPECT_EQ(Check((*server)->grpc_port(), "smig.test.v1.Thing"), HealthCheckResponse::NOT_SERVING);

  std::string metrics = testbed::HttpGet((*server)->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, ::testing::HasSubstr("smig_test_events_total 3"));
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           "smig_grpc_requests_total{code=\"OK\",method=\"/grpc.health.v1.Health/Check\"} 2"));

  int port = (*server)->grpc_port();
  (*server)->Shutdown(absl::Milliseconds(100));
  EXPECT_NE(Check(port, ""), HealthCheckResponse::SERVING);
}

// Every call the server finishes says which service answered (trailing metadata), its
// errors too; a status gRPC made up on the client's side (nothing listens) has no mark.
TEST(GrpcServerTest, EveryAnswerIsMarkedWithItsServiceAndNoAnswerIsNot) {
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({.metrics_address = ""}, {}, nullptr);  // no registry: marked all the same
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->grpc_port();
  auto stub = Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  auto check = [&](const std::string& service, grpc::StatusCode want) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    EXPECT_EQ(stub->Check(&ctx, req, &resp).error_code(), want) << service;
    return AnsweredBy(ctx);
  };
  EXPECT_EQ(check("", grpc::StatusCode::OK), "grpc.health.v1.Health");
  EXPECT_EQ(check("smig.no.v1.Such", grpc::StatusCode::NOT_FOUND), "grpc.health.v1.Health");
  (*server)->Shutdown(absl::ZeroDuration());
  EXPECT_EQ(check("", grpc::StatusCode::UNAVAILABLE), "");
}

// A request over the configured maximum is refused before any handler sees it, with an
// error that names both sizes; the next request under it is served as usual.
TEST(GrpcServerTest, ARequestOverTheConfiguredMaximumIsAClearError) {
  GrpcServerOptions options = ServerOptions("", "off", {}, 1024);
  ASSERT_EQ(options.max_request_bytes, 1024);
  EXPECT_EQ(ServerOptions("", "", {}, 0).max_request_bytes,
            GrpcServerOptions::kDefaultMaxRequestBytes);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(options, {}, nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  auto check = [&](size_t bytes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckRequest req;
    req.set_service(std::string(bytes, 's'));
    HealthCheckResponse resp;
    return stub->Check(&ctx, req, &resp);
  };
  grpc::Status big = check(4096);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(big.error_message(), ::testing::HasSubstr("larger than max"));
  EXPECT_THAT(big.error_message(), ::testing::HasSubstr("1024"));
  EXPECT_EQ(check(100).error_code(), grpc::StatusCode::NOT_FOUND);  // served: no such service
  EXPECT_EQ(Check((*server)->grpc_port(), ""), HealthCheckResponse::SERVING);
}

// Bytes that are no request message reach no handler: the caller is told that its request
// is not a valid message of the method's type (gRPC alone says INTERNAL, with no message),
// and the counters see the same code. A request that decodes reaches the handler.
TEST(GrpcServerTest, AnUndecodableRequestIsInvalidArgumentNamingTheExpectedType) {
  auto registry = std::make_shared<prometheus::Registry>();
  proximity::v1::Proximity::Service unimplemented;  // every method: UNIMPLEMENTED
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start({}, {&unimplemented}, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::GenericStub generic(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  auto call = [&](const std::string& bytes) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, "/smig.proximity.v1.Proximity/ListServers", {}, &request, &response,
                      [&](grpc::Status st) { done.set_value(st); });
    return done.get_future().get();
  };
  grpc::Status junk = call(std::string("\x0a\xff\xff\xff\xff\x0f", 6));
  EXPECT_EQ(junk.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(junk.error_message(),
            "the request is not a valid smig.proximity.v1.ListServersRequest (protobuf wire "
            "format)");
  EXPECT_EQ(call("").error_code(), grpc::StatusCode::UNIMPLEMENTED);  // decoded: handled
  std::string metrics = testbed::HttpGet((*server)->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           "smig_grpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"/"
                           "smig.proximity.v1.Proximity/ListServers\"} 1"));
}

TEST(GrpcServerTest, BusyMetricsPortIsAClearError) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<GrpcServer>> first = GrpcServer::Start({}, {}, registry);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string taken = absl::StrCat("127.0.0.1:", (*first)->metrics_port());
  absl::StatusOr<std::unique_ptr<GrpcServer>> second =
      GrpcServer::Start({.metrics_address = taken}, {}, registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), ::testing::HasSubstr(taken));
}

// A self-signed certificate for "localhost" (also its own CA), made with the openssl CLI.
struct TestPki {
  std::string dir = testbed::ScratchDir() + "/pki";
  std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  bool Make() {
    return testbed::Sh("mkdir -p " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                       "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " + key +
                       " -out " + cert + " 2>&1").ok();
  }
  std::string Read(const std::string& path) { return *testbed::Sh("cat " + path); }
};

TEST(GrpcServerTest, TlsAndMutualTlsFromFiles) {
  if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "needs openssl";
  TestPki pki;
  ASSERT_TRUE(pki.Make());
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<GrpcServer>> tls = GrpcServer::Start(
      {.metrics_address = "", .tls = {.cert_file = pki.cert, .key_file = pki.key}}, {}, registry);
  ASSERT_TRUE(tls.ok()) << tls.status();
  grpc::SslCredentialsOptions trust{.pem_root_certs = pki.Read(pki.cert)};
  EXPECT_EQ(Check((*tls)->grpc_port(), "", grpc::SslCredentials(trust)),
            HealthCheckResponse::SERVING);
  EXPECT_EQ(Check((*tls)->grpc_port(), ""), HealthCheckResponse::UNKNOWN);  // plaintext: refused

  absl::StatusOr<std::unique_ptr<GrpcServer>> mtls = GrpcServer::Start(
      {.metrics_address = "",
       .tls = {.cert_file = pki.cert, .key_file = pki.key, .client_ca_file = pki.cert}},
      {}, registry);
  ASSERT_TRUE(mtls.ok()) << mtls.status();
  EXPECT_EQ(Check((*mtls)->grpc_port(), "", grpc::SslCredentials(trust)),
            HealthCheckResponse::UNKNOWN);  // no client certificate
  grpc::SslCredentialsOptions with_cert = trust;
  with_cert.pem_private_key = pki.Read(pki.key);
  with_cert.pem_cert_chain = pki.Read(pki.cert);
  EXPECT_EQ(Check((*mtls)->grpc_port(), "", grpc::SslCredentials(with_cert)),
            HealthCheckResponse::SERVING);
}

TEST(GrpcServerTest, PlaintextIsServedOnUnixSocketsAndLoopbackOnly) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<GrpcServer>> open =
      GrpcServer::Start({.grpc_address = "0.0.0.0:0", .metrics_address = ""}, {}, registry);
  EXPECT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(open.status().message(),
              ::testing::HasSubstr("gRPC on 0.0.0.0:0 needs TLS (tls.cert_file and tls.key_file)"));
  EXPECT_TRUE(GrpcServer::Start({.grpc_address = "localhost:0", .metrics_address = ""}, {},
                                registry).ok());
  if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "needs openssl";
  TestPki pki;
  ASSERT_TRUE(pki.Make());
  absl::StatusOr<std::unique_ptr<GrpcServer>> tls = GrpcServer::Start(
      {.grpc_address = "0.0.0.0:0",
       .metrics_address = "",
       .tls = {.cert_file = pki.cert, .key_file = pki.key}},
      {}, registry);
  EXPECT_TRUE(tls.ok()) << tls.status();
}

TEST(GrpcServerTest, IncompleteOrMissingTlsFilesAreClearErrors) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto only_cert = GrpcServer::Start({.tls = {.cert_file = "/nonexistent.pem"}}, {}, registry);
  EXPECT_EQ(only_cert.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = GrpcServer::Start(
      {.metrics_address = "", .tls = {.cert_file = "/nonexistent.pem", .key_file = "/k.pem"}}, {},
      registry);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), ::testing::HasSubstr("/nonexistent.pem"));
}

}  // namespace
// ClientCredentials from a ClientTlsConfig: mutual TLS to a server that requires a client
// certificate, nothing without one; on a unix socket the same (a plaintext one takes
// plaintext clients).
TEST(GrpcClientTest, ClientCredentialsReachMutualTlsServersOnTcpAndUnixSockets) {
  if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "needs openssl";
  TestPki pki;
  ASSERT_TRUE(pki.Make());
  absl::StatusOr<std::unique_ptr<GrpcServer>> mtls = GrpcServer::Start(
      {.metrics_address = "",
       .tls = {.cert_file = pki.cert, .key_file = pki.key, .client_ca_file = pki.cert}},
      {}, nullptr);
  ASSERT_TRUE(mtls.ok()) << mtls.status();
  const std::string address = absl::StrCat("localhost:", (*mtls)->grpc_port());
  auto check = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse resp;
    return Health::NewStub(channel)->Check(&ctx, HealthCheckRequest(), &resp).error_code();
  };
  common::v1::ClientTlsConfig config;
  config.set_ca_file(pki.cert);
  config.set_cert_file(pki.cert);
  config.set_key_file(pki.key);
  absl::StatusOr<ClientCredentials> with_cert = ClientCredentials::FromConfig(config);
  ASSERT_TRUE(with_cert.ok()) << with_cert.status();
  EXPECT_TRUE(with_cert->tls());
  EXPECT_EQ(check(with_cert->Channel(address)), grpc::StatusCode::OK);
  config.clear_cert_file();
  config.clear_key_file();
  absl::StatusOr<ClientCredentials> without_cert = ClientCredentials::FromConfig(config);
  ASSERT_TRUE(without_cert.ok()) << without_cert.status();
  EXPECT_NE(check(without_cert->Channel(address)), grpc::StatusCode::OK);
  EXPECT_NE(check(ClientCredentials().Channel(address)), grpc::StatusCode::OK);  // plaintext

  const std::string tls_sock = absl::StrCat("unix:", pki.dir, "/tls.sock");
  absl::StatusOr<std::unique_ptr<GrpcServer>> over_unix = GrpcServer::Start(
      {.grpc_address = tls_sock,
       .metrics_address = "",
       .tls = {.cert_file = pki.cert, .key_file = pki.key, .client_ca_file = pki.cert}},
      {}, nullptr);
  ASSERT_TRUE(over_unix.ok()) << over_unix.status();
  EXPECT_EQ(check(with_cert->Channel(tls_sock)), grpc::StatusCode::OK);
  EXPECT_NE(check(ClientCredentials().Channel(tls_sock)), grpc::StatusCode::OK);
  const std::string sock = absl::StrCat("unix:", pki.dir, "/plain.sock");
  absl::StatusOr<std::unique_ptr<GrpcServer>> plain =
      GrpcServer::Start({.grpc_address = sock, .metrics_address = ""}, {}, nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(check(ClientCredentials().Channel(sock)), grpc::StatusCode::OK);
}

// A server dialed by IP (an agent found by its node's IP) must carry server_name in its
// certificate; one dialed by name must carry that name, whatever server_name says.
TEST(GrpcClientTest, AServerDialedByIpAddressIsVerifiedAgainstServerName) {
  if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "needs openssl";
  TestPki pki;  // DNS:localhost only, no IP address
  ASSERT_TRUE(pki.Make());
  absl::StatusOr<std::unique_ptr<GrpcServer>> tls = GrpcServer::Start(
      {.metrics_address = "", .tls = {.cert_file = pki.cert, .key_file = pki.key}}, {}, nullptr);
  ASSERT_TRUE(tls.ok()) << tls.status();
  const int port = (*tls)->grpc_port();
  auto status_with = [&](const std::string& server_name, const std::string& host) {
    common::v1::ClientTlsConfig config;
    config.set_ca_file(pki.cert);
    config.set_server_name(server_name);
    absl::StatusOr<ClientCredentials> creds = ClientCredentials::FromConfig(config);
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse resp;
    return Health::NewStub(creds->Channel(absl::StrCat(host, ":", port)))
        ->Check(&ctx, HealthCheckRequest(), &resp)
        .error_code();
  };
  EXPECT_EQ(status_with("localhost", "127.0.0.1"), grpc::StatusCode::OK);
  EXPECT_EQ(status_with("localhost", "ipv4:127.0.0.1"), grpc::StatusCode::OK);
  EXPECT_NE(status_with("", "127.0.0.1"), grpc::StatusCode::OK);  // the cert names no IP
  EXPECT_NE(status_with("smig-dataplane.smig.svc", "127.0.0.1"), grpc::StatusCode::OK);
  EXPECT_EQ(status_with("smig-dataplane.smig.svc", "localhost"), grpc::StatusCode::OK);

  common::v1::ClientTlsConfig plaintext_with_name;
  plaintext_with_name.set_server_name("localhost");
  EXPECT_EQ(ClientCredentials::FromConfig(plaintext_with_name).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GrpcClientTest, AnIncompleteOrUnreadableClientTlsConfigIsAClearError) {
  common::v1::ClientTlsConfig config;
  EXPECT_FALSE(ClientCredentials::FromConfig(config)->tls());  // empty: plaintext
  config.set_cert_file("/etc/hostname");
  absl::StatusOr<ClientCredentials> half = ClientCredentials::FromConfig(config);
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(half.status().message(), ::testing::HasSubstr("cert_file and key_file"));
  config.Clear();
  config.set_ca_file("/no/such/ca.pem");
  absl::StatusOr<ClientCredentials> missing = ClientCredentials::FromConfig(config);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              ::testing::HasSubstr("client_tls.ca_file: cannot read /no/such/ca.pem"));
}

}  // namespace smig
