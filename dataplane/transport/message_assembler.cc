#include "dataplane/transport/message_assembler.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace smig::transport {

absl::StatusOr<std::optional<std::string>> MessageAssembler::Add(const Key& key,
                                                                 absl::string_view piece,
                                                                 bool end_of_record) {
  auto it = partial_.find(key);
  if (it == partial_.end()) {
    if (end_of_record && piece.size() <= max_) return std::string(piece);  // the common case
    it = partial_.emplace(key, Partial{}).first;
  }
  Partial& p = it->second;
  absl::Status status;
  if (!p.discarding && p.data.size() + piece.size() > max_) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("incoming message on association ", key.assoc, " stream ", key.stream,
                     " exceeds the limit of ", max_, " bytes; dropped"));
    p.discarding = true;
    p.data.clear();
    p.data.shrink_to_fit();
  }
  if (!p.discarding) p.data.append(piece.data(), piece.size());
  if (!end_of_record) {
    if (!status.ok()) return status;
    return std::nullopt;
  }
  std::optional<std::string> whole;
  if (!p.discarding) whole = std::move(p.data);
  partial_.erase(it);
  if (!status.ok()) return status;
  return whole;
}

void MessageAssembler::Forget(uint32_t assoc) {
  absl::erase_if(partial_, [assoc](const auto& kv) { return kv.first.assoc == assoc; });
}

}  // namespace smig::transport
