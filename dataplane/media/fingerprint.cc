#include "dataplane/media/fingerprint.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace smig::dataplane::media {

uint64_t ChunkFingerprint(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len < 8) {
    std::fprintf(stderr, "smig: OpenSSL SHA-256 failed; aborting\n");  // cannot happen
    std::abort();
  }
  uint64_t fp = 0;
  for (int i = 0; i < 8; ++i) fp = (fp << 8) | md[i];
  return fp;
}

}  // namespace smig::dataplane::media
