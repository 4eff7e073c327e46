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
constexpr absl::string_view kLabel = "smig-hello-v1";
constexpr size_t kNonceSize = 16;

void AppendBe64(std::string& s, uint64_t v) {
  v = htobe64(v);
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
}  // namespace

absl::StatusOr<HelloAuthenticator> HelloAuthenticator::Create(std::string key) {
  if (key.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("the deployment key has ", key.size(), " bytes; at least 16 are needed"));
  }
  return HelloAuthenticator(std::move(key));
}

std::string HelloAuthenticator::Mac(const dataplane::v1::Hello& h) const {
  std::string msg(kLabel);
  AppendBe64(msg, h.session_id());
  AppendBe64(msg, h.generation());
  msg.append(h.server_id());
  msg.push_back('\0');
  msg.append(h.nonce());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Cannot fail for HMAC-SHA256 on memory.
  CHECK(HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
             reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len) != nullptr)
      << "OpenSSL HMAC-SHA256 failed";
  return std::string(reinterpret_cast<const char*>(out), len);
}

dataplane::v1::Hello HelloAuthenticator::Sign(uint64_t session_id, absl::string_view server_id,
                                              uint64_t generation) const {
  dataplane::v1::Hello h;
  h.set_session_id(session_id);
  h.set_server_id(std::string(server_id));
  h.set_generation(generation);
  std::string nonce(kNonceSize, '\0');
  // Cannot fail on Linux (getrandom); a predictable nonce must never go out.
  CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                   static_cast<int>(nonce.size())) == 1)
      << "OpenSSL RAND_bytes failed";
  h.set_nonce(nonce);
  h.set_mac(Mac(h));
  return h;
}

absl::Status HelloAuthenticator::Verify(const dataplane::v1::Hello& h) const {
  if (h.server_id().empty()) return absl::InvalidArgumentError("hello without a server id");
  if (h.nonce().size() != kNonceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello nonce of ", h.nonce().size(), " bytes, expected ", kNonceSize));
  }
  std::string want = Mac(h);
  if (h.mac().size() != want.size() ||
      CRYPTO_memcmp(h.mac().data(), want.data(), want.size()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("hello for session ", h.session_id(),
                                                    " from ", h.server_id(),
                                                    ": HMAC does not match the deployment key"));
  }
  return absl::OkStatus();
}

}  // namespace smig::dataplane
