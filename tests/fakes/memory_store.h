// In-memory fakes of common/store's seams, for services' unit tests: MemoryStore (a Store
// with etcd's revision semantics and fences) and FakeElection (an Election the test makes
// leader or deposes).
//
//   MemoryStore store;
//   FakeElection election(store);
//   Engine engine(store, election);
//   Leadership term = *election.MakeLeader();  // on_gained; a leader key appears in `store`
//   store.Put("journal/1", "...", term.fence());        // succeeds
//   election.Depose();                                  // on_lost; the leader key is deleted
//   store.Put("journal/2", "...", term.fence());        // FAILED_PRECONDITION "fenced: ..."
//   store.SetUnavailable(true);                         // every call: UNAVAILABLE
//
// MemoryStore has no prefix: keys, and the leader keys that fences name, share one
// keyspace. Like etcd, one revision counter covers the store; a write (or batch) that
// changes something raises it by one; a key's create revision is the revision of its last
// creation. Thread-safe; FakeElection's callbacks run on the thread that calls MakeLeader
// or Depose. The store must outlive the election.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/store/election.h"
#include "common/store/store.h"

namespace smig::store::testing {

class MemoryStore final : public Store {
 public:
  absl::StatusOr<std::optional<Entry>> Get(const std::string& key) override;
  absl::StatusOr<std::vector<Entry>> List(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              const Fence& fence) override;
  absl::Status Delete(const std::string& key, const Fence& fence) override;
  absl::StatusOr<int64_t> Apply(absl::Span<const Write> writes, const Fence& fence) override;

  // While set, every call fails with UNAVAILABLE (as an unreachable etcd would).
  void SetUnavailable(bool unavailable);
  int64_t revision() const;

 private:
  absl::Status CheckLocked(const Fence& fence) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;  // etcd's first revision is 1, too
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

class FakeElection final : public Election {
 public:
  // Campaigns (when told) as `id` in election `name`; the leader key is "<name>/<id>".
  explicit FakeElection(MemoryStore& store, std::string name = "leader/fake",
                        std::string id = "replica-0");

  // Becomes leader now: (re)creates the leader key, so the term's revision is new, and
  // calls on_gained. Already leading: the current term.
  absl::StatusOr<Leadership> MakeLeader();
  // Ends the term as a lost lease would: deletes the leader key, then on_lost with `why`.
  void Depose(absl::Status why = absl::UnavailableError("deposed by the test"));

  void SetListener(Listener listener) override;
  std::optional<Leadership> current() const override;
  // Waits (in real time) for MakeLeader() from another thread.
  absl::StatusOr<Leadership> AwaitLeadership(absl::Duration timeout) override;
  // Reads the store: whoever's key is under "<name>/" with the lowest create revision.
  absl::StatusOr<std::optional<LeaderInfo>> Leader() override;
  // Depose(CANCELLED "resigned") if leading.
  absl::Status Resign() override;

 private:
  MemoryStore& store_;
  const std::string name_;
  const std::string id_;
  mutable absl::Mutex mu_;
  Listener listener_ ABSL_GUARDED_BY(mu_);
  std::optional<Leadership> leadership_ ABSL_GUARDED_BY(mu_);
};

}  // namespace smig::store::testing
