// How every smig client makes its channels: plaintext, TLS (verifying the server against a
// CA) or mutual TLS (presenting a client certificate), from a ClientTlsConfig of PEM files.
//
//   absl::StatusOr<ClientCredentials> creds = ClientCredentials::FromConfig(config.client_tls());
//   std::shared_ptr<grpc::Channel> ch = creds->Channel("pmm.smig:7100");
//
// The same credentials for every address, "unix:" sockets included (their authority is
// "localhost": a server certificate for them names DNS:localhost). Plaintext is for
// clients without a client_tls only. An address by IP ("10.0.0.7:7400", as the PMM finds
// the data planes' agents) has no name to verify: with client_tls.server_name set, the
// server's certificate must name that instead.
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
  // A channel to `address` ("host:port", "dns:///name:port", "ipv4:a.b.c.d:port" or
  // "unix:/path").
  std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                         grpc::ChannelArguments args = {}) const;

 private:
  std::shared_ptr<grpc::ChannelCredentials> tls_;  // null: plaintext
  std::string server_name_;                        // for addresses by IP
};

}  // namespace smig
