// Store: the control plane's durable state (migration journal, sessions, policy), as a
// key-value map with revisions, whose writes can be fenced by a leadership.
//
//   smig::store::Store& store = ...;        // an EtcdStore, or a MemoryStore in tests
//   absl::StatusOr<int64_t> rev = store.Put("sessions/42", bytes, Fence{});  // unconditional
//   absl::StatusOr<std::optional<Entry>> e = store.Get("sessions/42");
//   std::vector<Entry> all = *store.List("sessions/");                      // sorted by key
//
//   // Only while this replica leads (common/store/election.h):
//   Fence fence = election.current()->fence();
//   absl::Status s = store.Apply({Write::Put("journal/7", j), Write::Delete("pending/7")},
//                                fence).status();
//   // FAILED_PRECONDITION "fenced: ..." once another replica has taken over.
//
// Keys are relative to the store's prefix (EtcdStore: "/smig/" by default, so "sessions/42"
// is etcd's "/smig/sessions/42"); layout conventions are in docs/architecture.md. Values
// are bytes (serialized protobufs). Revisions are etcd's: one counter for the whole store,
// raised by every write that changes something; a batch's writes share one revision.
//
// Errors: UNAVAILABLE (naming the endpoint) when the store cannot be reached,
// DEADLINE_EXCEEDED when a call took too long (a write may or may not have happened),
// FAILED_PRECONDITION for a fenced write whose leadership is gone, INVALID_ARGUMENT for an
// empty key or a batch that touches a key twice or has more than kMaxBatch writes.
//
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace smig::store {

struct Entry {
  std::string key;  // relative to the store's prefix
  std::string value;
  int64_t create_revision = 0;  // the revision that created the key (last time)
  int64_t mod_revision = 0;     // the revision that last wrote it

  friend bool operator==(const Entry&, const Entry&) = default;
};

// A condition on a write: it happens only if `leader_key` still exists with create
// revision `leader_revision`, i.e. the leadership that handed out the fence still holds
// (an etcd election's leader key is deleted when its lease ends, and a new leader's key
// has a higher create revision). An empty fence (no leader_key) writes unconditionally.
// `leader_key` is a raw key of the backing store (etcd: the election's key, which does not
// go through the store's prefix).
struct Fence {
  std::string leader_key;
  int64_t leader_revision = 0;

  bool empty() const { return leader_key.empty(); }
  friend bool operator==(const Fence&, const Fence&) = default;
};

// One write of a batch.
struct Write {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;  // kPut only

  static Write Put(std::string key, std::string value) {
    return {Kind::kPut, std::move(key), std::move(value)};
  }
  static Write Delete(std::string key) { return {Kind::kDelete, std::move(key), {}}; }
};

class Store {
 public:
  // etcd's default --max-txn-ops: the most writes one Apply may carry.
  static constexpr size_t kMaxBatch = 128;

  virtual ~Store() = default;

  // The entry at `key`, or nullopt if there is none.
  virtual absl::StatusOr<std::optional<Entry>> Get(const std::string& key) = 0;
  // Every entry whose key starts with `prefix` ("" = all), sorted by key, read at one
  // revision.
  virtual absl::StatusOr<std::vector<Entry>> List(const std::string& prefix) = 0;
  // Writes `value` at `key`; returns the store's revision after the write.
  virtual absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                                      const Fence& fence) = 0;
  // Deletes `key` (deleting a missing key is not an error).
  virtual absl::Status Delete(const std::string& key, const Fence& fence) = 0;
  // All of `writes` or none, under one fence check, at one revision; returns the store's
  // revision after it. Each key at most once; at most kMaxBatch writes.
  virtual absl::StatusOr<int64_t> Apply(absl::Span<const Write> writes, const Fence& fence) = 0;
};

// INVALID_ARGUMENT unless every key is non-empty, no key repeats and there are at most
// Store::kMaxBatch writes: the rules of an etcd Txn, checked before it is sent (and by
// fakes, so that tests see what etcd would say).
absl::Status ValidateWrites(absl::Span<const Write> writes);

}  // namespace smig::store
