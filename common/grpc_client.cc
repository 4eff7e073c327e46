#include "common/grpc_client.h"

#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/grpc_address.h"

namespace smig {

ClientCredentials::ClientCredentials() = default;

absl::StatusOr<ClientCredentials> ClientCredentials::FromConfig(
    const common::v1::ClientTlsConfig& tls) {
  ClientCredentials c;
  if (tls.ca_file().empty() && tls.cert_file().empty() && tls.key_file().empty()) {
    if (!tls.server_name().empty()) {
      return absl::InvalidArgumentError("client_tls.server_name needs TLS: set ca_file");
    }
    return c;
  }
  if (tls.cert_file().empty() != tls.key_file().empty()) {
    return absl::InvalidArgumentError(
        "client_tls: cert_file and key_file go together (mutual TLS), or neither");
  }
  grpc::SslCredentialsOptions o;  // no ca_file: gRPC's default roots
  for (auto [path, field, out] : {std::tuple{&tls.ca_file(), "ca_file", &o.pem_root_certs},
                                  std::tuple{&tls.cert_file(), "cert_file", &o.pem_cert_chain},
                                  std::tuple{&tls.key_file(), "key_file", &o.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = ReadFile(*path);
    if (!pem.ok()) {
      return absl::Status(pem.status().code(), absl::StrCat("client_tls.", field, ": ", pem.status().message()));
    }
    *out = *std::move(pem);
  }
  c.tls_ = grpc::SslCredentials(o);
  c.server_name_ = tls.server_name();
  return c;
}

std::shared_ptr<grpc::Channel> ClientCredentials::Channel(const std::string& address,
                                                          grpc::ChannelArguments args) const {
  if (tls_ == nullptr) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  if (!server_name_.empty() && IsIpLiteral(GrpcHost(address))) {
    args.SetSslTargetNameOverride(server_name_);
  }
  return grpc::CreateCustomChannel(address, tls_, args);
}

}  // namespace smig
