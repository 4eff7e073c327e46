#include "common/store/store.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace smig::store {

absl::Status ValidateWrites(absl::Span<const Write> writes) {
  if (writes.size() > Store::kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat("a batch of ", writes.size(),
                                                   " writes; at most ", Store::kMaxBatch));
  }
  absl::flat_hash_set<absl::string_view> keys;
  for (const Write& w : writes) {
    if (w.key.empty()) return absl::InvalidArgumentError("empty key");
    if (!keys.insert(w.key).second) {
      return absl::InvalidArgumentError(absl::StrCat("key ", w.key, " is written twice in one batch"));
    }
  }
  return absl::OkStatus();
}

}  // namespace smig::store
