#include "dataplane/media/fingerprint.h"

#include <openssl/evp.h>

#include "common/logging.h"

namespace smig::dataplane::media {

uint64_t ChunkFingerprint(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // Cannot fail for SHA-256 on memory.
  CHECK(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1 && len >= 8)
      << "OpenSSL SHA-256 failed";
  uint64_t fp = 0;
  for (int i = 0; i < 8; ++i) fp = (fp << 8) | md[i];
  return fp;
}

}  // namespace smig::dataplane::media
