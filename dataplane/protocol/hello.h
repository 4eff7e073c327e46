// Session keys and the HELLO that claims an SCTP association for a session (HMAC-SHA256,
// OpenSSL; docs/protocol.md, "Session keys").
//
//   std::string k1 = MintSessionKey();                       // the SMM, per session
//   HelloAuthenticator auth = *HelloAuthenticator::Create(k1);
//   v1::Hello h = auth.Sign(session_id, "edge-a", 1);        // the edge; random nonce inside
//   absl::Status ok = auth.Verify(h);                        // the vehicle: PERMISSION_DENIED
//   v1::HelloAck a = ...; auth.SignAck(h, a);                // the vehicle answers
//   absl::Status ack_ok = auth.VerifyAck(h, a);              // the edge
//   std::string k3 = RatchetSessionKey(k1, 1, 3);            // generation 3's key
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "smig/dataplane/v1/wire.pb.h"

namespace smig::dataplane {

inline constexpr size_t kSessionKeySize = 32;

// 32 random bytes (OpenSSL's RAND_bytes): a new session's key, of generation 1.
std::string MintSessionKey();
// INVALID_ARGUMENT unless `key` has kSessionKeySize bytes; `what` names it in the message.
absl::Status CheckSessionKey(absl::string_view key, absl::string_view what);
// The key of generation `to` from that of generation `from` (to >= from): each step is
// HMAC-SHA256(key, "smig-session-key-v1" || the next generation, 8 bytes big-endian).
// One-way: a generation's key tells nothing about the keys before it.
std::string RatchetSessionKey(std::string key, uint64_t from, uint64_t to);

// Signs and checks HELLOs and their answers with one generation's session key.
class HelloAuthenticator {
 public:
  // `key`: kSessionKeySize bytes (INVALID_ARGUMENT otherwise).
  static absl::StatusOr<HelloAuthenticator> Create(std::string key);

  dataplane::v1::Hello Sign(uint64_t session_id, absl::string_view server_id,
                            uint64_t generation) const;
  // INVALID_ARGUMENT for a malformed hello (empty server, nonce not 16 bytes),
  // PERMISSION_DENIED when the MAC does not match. Compares in constant time.
  absl::Status Verify(const dataplane::v1::Hello& hello) const;
  // Sets ack.mac for an answer to `hello` (and its session id).
  void SignAck(const dataplane::v1::Hello& hello, dataplane::v1::HelloAck& ack) const;
  // PERMISSION_DENIED unless `ack` answers `hello` with this key.
  absl::Status VerifyAck(const dataplane::v1::Hello& hello,
                         const dataplane::v1::HelloAck& ack) const;

 private:
  explicit HelloAuthenticator(std::string key) : key_(std::move(key)) {}
  std::string Mac(absl::string_view message) const;
  std::string HelloMac(const dataplane::v1::Hello& hello) const;
  std::string AckMac(const dataplane::v1::Hello& hello) const;
  std::string key_;
};

}  // namespace smig::dataplane
