#include "dataplane/daemon/fencing.h"

#include "absl/strings/str_cat.h"

namespace smig::dataplane {

absl::Status FencingGate::Admit(uint64_t token) {
  if (token == kUnfenced) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (token < highest_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fenced: token ", token, " is older than ", highest_, ": a newer SMM leader acts"));
  }
  highest_ = token;
  return absl::OkStatus();
}

uint64_t FencingGate::highest() const {
  absl::MutexLock lock(&mu_);
  return highest_;
}

}  // namespace smig::dataplane
