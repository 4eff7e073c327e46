// MigrationJournal on a MemoryStore: the key layout, what Load makes of it, and how a write
// treats a store that does not answer (retries on the clock, bounded) and a fence (at once).
#include "services/migrator/migration_journal.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/memory_store.h"

namespace smig::migrator {
namespace {

using ::smig::store::Fence;
using ::smig::store::testing::MemoryStore;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Migration Migration(const std::string& id, uint64_t session, const std::string& request = "") {
  v1::Migration m;
  m.set_id(id);
  m.set_session_id(session);
  m.set_request_id(request);
  m.set_phase(v1::PHASE_OVERLAPPING);
  return m;
}

TEST(MigrationJournalTest, KeysAndLoad) {
  MemoryStore store;
  SimulatedClock clock;
  MigrationJournal journal(store, {.prefix = "migrator/"}, clock);
  v1::Session s;
  s.set_session_id(42);
  s.set_server_id("edge-1");
  MigrationJournal::Batch batch;
  batch.PutSession(s);
  batch.PutMigration(Migration("mig-7", 42, "decision-3"));
  batch.SetNextId(5);  // behind the ids: Load goes past the highest
  absl::StatusOr<int64_t> revision = journal.Commit(batch, Fence{});
  ASSERT_TRUE(revision.ok()) << revision.status();

  absl::StatusOr<std::vector<store::Entry>> entries = store.List("");
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> keys;
  for (const store::Entry& e : *entries) keys.push_back(e.key);
  EXPECT_THAT(keys, ElementsAre("migrator/migrations/mig-7", "migrator/next_id",
                                "migrator/sessions/00000000000000000042"));
  absl::StatusOr<MigrationJournal::Snapshot> snapshot = journal.Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->sessions.at(42).server_id(), "edge-1");
  EXPECT_EQ(snapshot->migrations.at("mig-7").migration.request_id(), "decision-3");
  EXPECT_EQ(snapshot->migrations.at("mig-7").revision, *revision);
  EXPECT_EQ(snapshot->next_id, 8u);
  EXPECT_EQ(journal.ListMigrations(42)->size(), 1u);
  EXPECT_TRUE(journal.ListMigrations(41)->empty());
  EXPECT_FALSE(journal.GetMigration("mig-8")->has_value());
}

TEST(MigrationJournalTest, AStoreThatDoesNotAnswerIsRetriedForABoundedTime) {
  MemoryStore store;
  SimulatedClock clock;
  MigrationJournal journal(store, {.retry_for = absl::Seconds(1)}, clock);
  MigrationJournal::Batch batch;
  batch.PutMigration(Migration("mig-1", 1));
  store.SetUnavailable(true);
  absl::StatusOr<int64_t> written;
  std::atomic<bool> done = false;
  const absl::Time start = clock.Now();
  std::thread writer([&] {
    written = journal.Commit(batch, Fence{});
    done = true;
  });
  // Pauses of 50, 100, 200 ms... on the clock, which moves whenever the writer sleeps; it
  // gives up once a pause would end past retry_for.
  for (absl::Time end = absl::Now() + absl::Seconds(10); !done && absl::Now() < end;) {
    if (clock.AwaitSleepers(1, absl::Milliseconds(1))) clock.Advance(absl::Milliseconds(10));
  }
  writer.join();
  EXPECT_EQ(written.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(clock.Now() - start, absl::Milliseconds(50));  // it paused before giving up
  EXPECT_THAT(written.status().message(), HasSubstr("did not take the write within 1s"));

  // The store answers again during the retries: the write lands.
  std::thread again([&] { written = journal.Commit(batch, Fence{}); });
  ASSERT_TRUE(clock.AwaitSleepers(1));
  store.SetUnavailable(false);
  clock.Advance(absl::Milliseconds(50));
  again.join();
  EXPECT_TRUE(written.ok()) << written.status();

  // A fence is not retried.
  written = journal.Commit(batch, Fence{"leader/x/smm-0", 3});
  EXPECT_EQ(written.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(written.status().message(), HasSubstr("fenced"));
}

}  // namespace
}  // namespace smig::migrator
