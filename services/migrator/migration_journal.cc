#include "services/migrator/migration_journal.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace smig::migrator {
namespace {

constexpr char kSessions[] = "sessions/";
constexpr char kMigrations[] = "migrations/";
constexpr char kNextId[] = "next_id";

std::string SessionSuffix(uint64_t id) { return absl::StrFormat("%s%020d", kSessions, id); }
std::string MigrationSuffix(const std::string& id) { return absl::StrCat(kMigrations, id); }

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

}  // namespace

uint64_t MigrationNumber(const std::string& id) {
  uint64_t n = 0;
  if (!absl::StartsWith(id, "mig-") || !absl::SimpleAtoi(id.substr(4), &n)) return 0;
  return n;
}

void MigrationJournal::Batch::PutSession(const v1::Session& session) {
  writes_.push_back(store::Write::Put(SessionSuffix(session.session_id()),
                                      session.SerializeAsString()));
}
void MigrationJournal::Batch::DeleteSession(uint64_t session_id) {
  writes_.push_back(store::Write::Delete(SessionSuffix(session_id)));
}
void MigrationJournal::Batch::PutMigration(const v1::Migration& migration) {
  writes_.push_back(
      store::Write::Put(MigrationSuffix(migration.id()), migration.SerializeAsString()));
}
void MigrationJournal::Batch::DeleteMigration(const std::string& id) {
  writes_.push_back(store::Write::Delete(MigrationSuffix(id)));
}
void MigrationJournal::Batch::SetNextId(uint64_t next_id) {
  writes_.push_back(store::Write::Put(kNextId, absl::StrCat(next_id)));
}

MigrationJournal::MigrationJournal(store::Store& store, Options options, Clock& clock)
    : store_(store), options_(std::move(options)), clock_(clock) {}

std::string MigrationJournal::SessionKey(uint64_t session_id) const {
  return options_.prefix + SessionSuffix(session_id);
}
std::string MigrationJournal::MigrationKey(const std::string& id) const {
  return options_.prefix + MigrationSuffix(id);
}

absl::StatusOr<MigrationJournal::Snapshot> MigrationJournal::Load() {
  SMIG_ASSIGN_OR_RETURN(std::vector<store::Entry> entries, store_.List(options_.prefix));
  Snapshot out;
  uint64_t highest = 0;
  for (const store::Entry& e : entries) {
    out.revision = std::max(out.revision, e.mod_revision);
    absl::string_view key = absl::string_view(e.key).substr(options_.prefix.size());
    if (absl::StartsWith(key, kSessions)) {
      v1::Session s;
      if (!s.ParseFromString(e.value)) {
        LOG(ERROR) << "journal: " << e.key << " is not a Session; skipped";
        continue;
      }
      out.sessions[s.session_id()] = std::move(s);
    } else if (absl::StartsWith(key, kMigrations)) {
      v1::Migration m;
      if (!m.ParseFromString(e.value)) {
        LOG(ERROR) << "journal: " << e.key << " is not a Migration; skipped";
        continue;
      }
      const std::string id = m.id();
      highest = std::max(highest, MigrationNumber(id));
      out.migrations[id] = Versioned{std::move(m), e.mod_revision};
    } else if (key == kNextId) {
      uint64_t n = 0;
      if (absl::SimpleAtoi(e.value, &n)) out.next_id = std::max(out.next_id, n);
    }
  }
  out.next_id = std::max(out.next_id, highest + 1);
  return out;
}

absl::StatusOr<std::vector<v1::Session>> MigrationJournal::ListSessions() {
  SMIG_ASSIGN_OR_RETURN(std::vector<store::Entry> entries,
                        store_.List(options_.prefix + kSessions));
  std::vector<v1::Session> out;
  for (const store::Entry& e : entries) {
    if (v1::Session s; s.ParseFromString(e.value)) out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::optional<MigrationJournal::Versioned>> MigrationJournal::GetMigration(
    const std::string& id) {
  SMIG_ASSIGN_OR_RETURN(std::optional<store::Entry> e, store_.Get(MigrationKey(id)));
  if (!e.has_value()) return std::nullopt;
  Versioned v;
  if (!v.migration.ParseFromString(e->value)) {
    return absl::DataLossError(absl::StrCat("journal: ", e->key, " is not a Migration"));
  }
  v.revision = e->mod_revision;
  return v;
}

absl::StatusOr<std::vector<v1::Migration>> MigrationJournal::ListMigrations(uint64_t session) {
  SMIG_ASSIGN_OR_RETURN(std::vector<store::Entry> entries,
                        store_.List(options_.prefix + kMigrations));
  std::vector<v1::Migration> out;
  for (const store::Entry& e : entries) {
    v1::Migration m;
    if (!m.ParseFromString(e.value)) continue;
    if (session == 0 || m.session_id() == session) out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const v1::Migration& a, const v1::Migration& b) {
    return FromProto(a.started_at()) < FromProto(b.started_at());
  });
  return out;
}

absl::StatusOr<int64_t> MigrationJournal::Commit(const Batch& batch, const store::Fence& fence) {
  std::vector<store::Write> writes = batch.writes_;
  for (store::Write& w : writes) w.key = options_.prefix + w.key;
  const absl::Time give_up = clock_.Now() + options_.retry_for;
  absl::Duration pause = absl::Milliseconds(50);
  while (true) {
    absl::StatusOr<int64_t> revision = store_.Apply(writes, fence);
    if (revision.ok() || !Retryable(revision.status())) return revision;
    const absl::Time now = clock_.Now();
    if (now + pause > give_up) {
      return absl::Status(revision.status().code(),
                          absl::StrCat("the journal's store did not take the write within ",
                                       absl::FormatDuration(options_.retry_for), ": ",
                                       revision.status().message()));
    }
    VLOG(1) << "journal: retrying in " << pause << ": " << revision.status();
    clock_.SleepFor(pause);
    pause *= 2;
  }
}

}  // namespace smig::migrator
