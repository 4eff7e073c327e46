// How every smig client makes its channels: plaintext, TLS (verifying the server against a
// CA) or mutual TLS (presenting a client certificate), from a ClientTlsConfig of PEM files.
//
//   absl::StatusOr<ClientCredentials> creds = ClientCredentials::FromConfig(config.client_tls());
//   std::shared_ptr<grpc::Channel> ch = creds->Channel("pmm.smig:7100");
//
// The same credentials for every address, "unix:" sockets included (their authority is
// "localhost": a server certificate for them names DNS:localhost). Plaintext is for
// clients without a client_tls only.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "smig/common/v1/server.pb.h"

namespace smig {

class ClientCredentials {
 public:
  // Plaintext everywhere.
  ClientCredentials();
  // Reads the files now: NOT_FOUND naming the field and path for one that cannot be
  // read, INVALID_ARGUMENT for a certificate without its key (or the reverse).
  static absl::StatusOr<ClientCredentials> FromConfig(const common::v1::ClientTlsConfig& tls);

  bool tls() const { return tls_ != nullptr; }
  // For `address` ("host:port", "dns:///name:port" or "unix:/path").
  std::shared_ptr<grpc::ChannelCredentials> For(const std::string& address) const;
  std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                         const grpc::ChannelArguments& args = {}) const;

 private:
  std::shared_ptr<grpc::ChannelCredentials> tls_;  // null: plaintext
};

}  // namespace smig
