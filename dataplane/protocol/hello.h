// HelloAuthenticator: signs and checks the HELLO that claims an SCTP association for a
// session (HMAC-SHA256 with the deployment key, OpenSSL; docs/protocol.md).
//
//   HelloAuthenticator auth(deployment_key);
//   v1::Hello h = auth.Sign(session_id, "edge-a", generation);      // random nonce inside
//   absl::Status ok = auth.Verify(h);   // PERMISSION_DENIED on a wrong MAC
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smig/dataplane/v1/wire.pb.h"

namespace smig::dataplane {

class HelloAuthenticator {
 public:
  // `key` is the deployment's shared secret; at least 16 bytes.
  static absl::StatusOr<HelloAuthenticator> Create(std::string key);

  dataplane::v1::Hello Sign(uint64_t session_id, absl::string_view server_id,
                            uint64_t generation) const;
  // INVALID_ARGUMENT for a malformed hello (empty server, nonce not 16 bytes),
  // PERMISSION_DENIED when the MAC does not match. Compares in constant time.
  absl::Status Verify(const dataplane::v1::Hello& hello) const;

 private:
  explicit HelloAuthenticator(std::string key) : key_(std::move(key)) {}
  std::string Mac(const dataplane::v1::Hello& hello) const;
  std::string key_;
};

}  // namespace smig::dataplane
