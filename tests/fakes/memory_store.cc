#include "tests/fakes/memory_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace smig::store::testing {

absl::Status MemoryStore::CheckLocked(const Fence& fence) const {
  if (unavailable_) return absl::UnavailableError("memory store unavailable (set by the test)");
  if (fence.empty()) return absl::OkStatus();
  auto it = entries_.find(fence.leader_key);
  if (it != entries_.end() && it->second.create_revision == fence.leader_revision) {
    return absl::OkStatus();
  }
  std::string now = it == entries_.end()
                        ? "it does not exist"
                        : absl::StrCat("it has create revision ", it->second.create_revision);
  return absl::FailedPreconditionError(
      absl::StrCat("fenced: leader key ", fence.leader_key, " with create revision ",
                   fence.leader_revision, " no longer leads (", now, "); the write was not made"));
}

absl::StatusOr<std::optional<Entry>> MemoryStore::Get(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckLocked(Fence{}));
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::vector<Entry>> MemoryStore::List(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckLocked(Fence{}));
  std::vector<Entry> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && absl::StartsWith(it->first, prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<int64_t> MemoryStore::Put(const std::string& key, const std::string& value,
                                         const Fence& fence) {
  return Apply({Write::Put(key, value)}, fence);
}

absl::Status MemoryStore::Delete(const std::string& key, const Fence& fence) {
  return Apply({Write::Delete(key)}, fence).status();
}

absl::StatusOr<int64_t> MemoryStore::Apply(absl::Span<const Write> writes, const Fence& fence) {
  SMIG_RETURN_IF_ERROR(ValidateWrites(writes));
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckLocked(fence));
  // etcd raises the revision only if the batch changes something (a put always does).
  bool changes = false;
  for (const Write& w : writes) {
    changes = changes || w.kind == Write::Kind::kPut || entries_.contains(w.key);
  }
  if (!changes) return revision_;
  ++revision_;
  for (const Write& w : writes) {
    if (w.kind == Write::Kind::kDelete) {
      entries_.erase(w.key);
      continue;
    }
    auto [it, created] = entries_.try_emplace(w.key, Entry{w.key, {}, revision_, 0});
    it->second.value = w.value;
    it->second.mod_revision = revision_;
  }
  return revision_;
}

void MemoryStore::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

int64_t MemoryStore::revision() const {
  absl::MutexLock lock(&mu_);
  return revision_;
}

FakeElection::FakeElection(MemoryStore& store, std::string name, std::string id)
    : store_(store), name_(std::move(name)), id_(std::move(id)) {}

void FakeElection::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

std::optional<Leadership> FakeElection::current() const {
  absl::MutexLock lock(&mu_);
  return leadership_;
}

absl::StatusOr<Leadership> FakeElection::MakeLeader() {
  Listener listener;
  Leadership term;
  {
    absl::MutexLock lock(&mu_);
    if (leadership_.has_value()) return *leadership_;
    std::string key = absl::StrCat(name_, "/", id_);
    // A new term is a new key: delete, then create (two revisions, as a lease's end and a
    // new campaign would be).
    SMIG_RETURN_IF_ERROR(store_.Delete(key, Fence{}));
    SMIG_ASSIGN_OR_RETURN(int64_t revision, store_.Put(key, id_, Fence{}));
    term = Leadership{key, revision, 0};
    leadership_ = term;
    listener = listener_;
  }
  if (listener.on_gained) listener.on_gained(term);
  return term;
}

void FakeElection::Depose(absl::Status why) {
  Listener listener;
  Leadership term;
  {
    absl::MutexLock lock(&mu_);
    if (!leadership_.has_value()) return;
    term = *leadership_;
    leadership_.reset();
    listener = listener_;
  }
  // Best effort, like a lease's expiry: the key goes unless the store is "down".
  (void)store_.Delete(term.key, Fence{});
  if (listener.on_lost) listener.on_lost(term, why);
}

absl::StatusOr<Leadership> FakeElection::AwaitLeadership(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto leads = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return leadership_.has_value(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&leads), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("not leading ", name_, " after ",
                                                    absl::FormatDuration(timeout)));
  }
  return *leadership_;
}

absl::StatusOr<std::optional<LeaderInfo>> FakeElection::Leader() {
  SMIG_ASSIGN_OR_RETURN(std::vector<Entry> candidates, store_.List(name_ + "/"));
  const Entry* first = nullptr;
  for (const Entry& e : candidates) {
    if (first == nullptr || e.create_revision < first->create_revision) first = &e;
  }
  if (first == nullptr) return std::nullopt;
  return LeaderInfo{first->value, first->key, first->create_revision};
}

absl::Status FakeElection::Resign() {
  Depose(absl::CancelledError("resigned"));
  return absl::OkStatus();
}

}  // namespace smig::store::testing
