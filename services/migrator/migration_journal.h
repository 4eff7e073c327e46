// MigrationJournal: the SMM's durable state in a Store (common/store/store.h): its sessions,
// its migrations (the journal: each one as last written, phase and history included) and
// the counter that numbers migrations. Every replica reads it; only the leader writes, each
// write fenced by its leadership.
//
//   MigrationJournal journal(store, {.prefix = "migrator/"}, clock);
//   absl::StatusOr<MigrationJournal::Snapshot> all = journal.Load();     // at takeover
//   MigrationJournal::Batch batch;
//   batch.PutMigration(m);                        // the migration's next phase ...
//   batch.PutSession(session);                    // ... and its session, in one transaction
//   absl::StatusOr<int64_t> revision = journal.Commit(batch, leadership.fence());
//   // FAILED_PRECONDITION "fenced: ...": another replica leads; act no more.
//
// Key layout, relative to the store's own prefix (EtcdStore: "/smig/"), each value a
// binary protobuf unless said:
//   <prefix>sessions/<session id, 20 digits>   smig.migrator.v1.Session
//   <prefix>migrations/<migration id>          smig.migrator.v1.Migration (request_id inside)
//   <prefix>next_id                            the next migration number, decimal text
// request_id -> migration id is not a key of its own: the migrations carry their request_id
// and the leader rebuilds the index from them at takeover, so the index and the migrations
// it names are bounded (max_finished) and deleted together, in one write.
//
// Writes retry a store that does not answer (UNAVAILABLE, DEADLINE_EXCEEDED) with pauses
// doubling from 50 ms, on the clock, for up to `retry_for`; every write puts whole values,
// so a retry of a write that did land changes nothing. A fenced write is not retried.
//
// Thread-safe (the store is); `store` and `clock` must outlive the journal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/store/store.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace smig::migrator {

class MigrationJournal {
 public:
  struct Options {
    std::string prefix = "migrator/";
    absl::Duration retry_for = absl::Seconds(1);
  };

  // A migration as the store has it, with the revision that last wrote it (watchers use it
  // as the migration's version: it only grows, whichever replica answers).
  struct Versioned {
    v1::Migration migration;
    int64_t revision = 0;
  };

  // Everything, read at one revision.
  struct Snapshot {
    std::map<uint64_t, v1::Session> sessions;
    std::map<std::string, Versioned> migrations;  // by id
    uint64_t next_id = 1;  // the counter, or past the highest id found if that is higher
    int64_t revision = 0;  // the store's revision when read
  };

  // Writes made in one transaction (at most store::Store::kMaxBatch; each key once).
  class Batch {
   public:
    void PutSession(const v1::Session& session);
    void DeleteSession(uint64_t session_id);
    void PutMigration(const v1::Migration& migration);
    void DeleteMigration(const std::string& id);
    void SetNextId(uint64_t next_id);
    size_t size() const { return writes_.size(); }
    bool empty() const { return writes_.empty(); }

   private:
    friend class MigrationJournal;
    std::vector<store::Write> writes_;  // keys without the journal's prefix
  };

  MigrationJournal(store::Store& store, Options options, Clock& clock = Clock::Real());

  // Reads everything (one List, so one revision). Entries that do not parse are logged and
  // skipped.
  absl::StatusOr<Snapshot> Load();
  // The reads any replica answers from the store.
  absl::StatusOr<std::vector<v1::Session>> ListSessions();
  absl::StatusOr<std::optional<Versioned>> GetMigration(const std::string& id);
  // Sorted by started_at; `session` 0: all.
  absl::StatusOr<std::vector<v1::Migration>> ListMigrations(uint64_t session);

  // All of `batch` or nothing, if `fence` still holds; returns the store's revision after
  // it. FAILED_PRECONDITION "fenced: ..." at once; the store's UNAVAILABLE or
  // DEADLINE_EXCEEDED once retry_for has passed.
  absl::StatusOr<int64_t> Commit(const Batch& batch, const store::Fence& fence);

  const std::string& prefix() const { return options_.prefix; }
  // "<prefix>sessions/00000000000000000042" and friends, for tests and docs.
  std::string SessionKey(uint64_t session_id) const;
  std::string MigrationKey(const std::string& id) const;

 private:
  store::Store& store_;
  const Options options_;
  Clock& clock_;
};

// "mig-12" -> 12; 0 for ids of another form.
uint64_t MigrationNumber(const std::string& id);

}  // namespace smig::migrator
