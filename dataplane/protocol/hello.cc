#include "dataplane/protocol/hello.h"

#include <endian.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace smig::dataplane {
namespace {
constexpr absl::string_view kHelloLabel = "smig-hello-v2";
constexpr absl::string_view kAckLabel = "smig-hello-ack-v1";
constexpr absl::string_view kRatchetLabel = "smig-session-key-v1";
constexpr size_t kNonceSize = 16;

void AppendBe64(std::string& s, uint64_t v) {
  v = htobe64(v);
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string HmacSha256(absl::string_view key, absl::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Cannot fail for HMAC-SHA256 on memory.
  CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
             &len) != nullptr)
      << "OpenSSL HMAC-SHA256 failed";
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  // Cannot fail on Linux (getrandom); a predictable nonce or key must never go out.
  CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1)
      << "OpenSSL RAND_bytes failed";
  return out;
}

bool SameMac(absl::string_view got, absl::string_view want) {
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
}
}  // namespace

std::string MintSessionKey() { return RandomBytes(kSessionKeySize); }

absl::Status CheckSessionKey(absl::string_view key, absl::string_view what) {
  if (key.size() == kSessionKeySize) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " has a session key of ", key.size(),
                                                 " bytes; it needs ", kSessionKeySize,
                                                 " (the control plane mints it)"));
}

std::string RatchetSessionKey(std::string key, uint64_t from, uint64_t to) {
  for (uint64_t g = from; g < to; ++g) {
    std::string msg(kRatchetLabel);
    AppendBe64(msg, g + 1);
    key = HmacSha256(key, msg);
  }
  return key;
}

absl::StatusOr<HelloAuthenticator> HelloAuthenticator::Create(std::string key) {
  if (absl::Status s = CheckSessionKey(key, "the session"); !s.ok()) return s;
  return HelloAuthenticator(std::move(key));
}

std::string HelloAuthenticator::Mac(absl::string_view message) const {
  return HmacSha256(key_, message);
}

std::string HelloAuthenticator::HelloMac(const dataplane::v1::Hello& h) const {
  std::string msg(kHelloLabel);
  AppendBe64(msg, h.session_id());
  AppendBe64(msg, h.generation());
  msg.append(h.server_id());
  msg.push_back('\0');
  msg.append(h.nonce());
  return Mac(msg);
}

std::string HelloAuthenticator::AckMac(const dataplane::v1::Hello& h) const {
  std::string msg(kAckLabel);
  AppendBe64(msg, h.session_id());
  AppendBe64(msg, h.generation());
  msg.append(h.nonce());
  return Mac(msg);
}

dataplane::v1::Hello HelloAuthenticator::Sign(uint64_t session_id, absl::string_view server_id,
                                              uint64_t generation) const {
  dataplane::v1::Hello h;
  h.set_session_id(session_id);
  h.set_server_id(std::string(server_id));
  h.set_generation(generation);
  h.set_nonce(RandomBytes(kNonceSize));
  h.set_mac(HelloMac(h));
  return h;
}

absl::Status HelloAuthenticator::Verify(const dataplane::v1::Hello& h) const {
  if (h.server_id().empty()) return absl::InvalidArgumentError("hello without a server id");
  if (h.nonce().size() != kNonceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello nonce of ", h.nonce().size(), " bytes, expected ", kNonceSize));
  }
  if (!SameMac(h.mac(), HelloMac(h))) {
    return absl::PermissionDeniedError(absl::StrCat("hello for session ", h.session_id(),
                                                    " from ", h.server_id(),
                                                    ": HMAC does not match the session key"));
  }
  return absl::OkStatus();
}

void HelloAuthenticator::SignAck(const dataplane::v1::Hello& hello,
                                 dataplane::v1::HelloAck& ack) const {
  ack.set_session_id(hello.session_id());
  ack.set_mac(AckMac(hello));
}

absl::Status HelloAuthenticator::VerifyAck(const dataplane::v1::Hello& hello,
                                           const dataplane::v1::HelloAck& ack) const {
  if (ack.session_id() != hello.session_id() || !SameMac(ack.mac(), AckMac(hello))) {
    return absl::PermissionDeniedError(
        absl::StrCat("hello answer for session ", ack.session_id(),
                     ": HMAC does not match the session key (the peer does not hold it)"));
  }
  return absl::OkStatus();
}

}  // namespace smig::dataplane
