#include "services/decision/auto_migrator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_time.h"

namespace smig::decision {

std::string MigrateRequestId(const v1::DecisionRecord& d) {
  return absl::StrCat("mdm/", d.session_id(), "/", d.current_server_id(), "/",
                      d.target_server_id(), "/",
                      absl::ToUnixSeconds(FromProto(d.dwell_started_at())));
}

AutoMigrator::AutoMigrator(DecisionEngine& engine, ControlPlaneClients& clients, Options options,
                           Clock& clock, MayAct may_act)
    : engine_(engine),
      clients_(clients),
      options_(std::move(options)),
      clock_(clock),
      may_act_(std::move(may_act)) {}

AutoMigrator::~AutoMigrator() { Stop(); }

void AutoMigrator::Start() {
  watch_thread_ = std::thread([this] { WatchLoop(); });
  decide_thread_ = std::thread([this] { DecideLoop(); });
}

void AutoMigrator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  clients_.CancelWatch();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (decide_thread_.joinable()) decide_thread_.join();
}

bool AutoMigrator::News(const std::string& topic, const std::string& line) {
  absl::MutexLock lock(&log_mu_);
  std::string& last = last_log_[topic];
  if (last == line) return false;
  last = line;
  return true;
}

void AutoMigrator::WatchLoop() {
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    bool received = false;
    absl::Status s = clients_.WatchProximity([&](const proximity::v1::VehicleProximity& p) {
      if (!received && News("watch", "connected")) LOG(INFO) << "PMM WatchProximity: connected";
      received = true;
      absl::MutexLock lock(&mu_);
      latest_[p.vehicle_id()] = std::make_shared<const proximity::v1::VehicleProximity>(p);
      dirty_.insert(p.vehicle_id());
    });
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (received) backoff = options_.min_backoff;  // it worked for a while: retry soon
    if (std::string line = absl::StrCat(s.ToString(), "; reconnecting with backoff up to ",
                                        absl::FormatDuration(options_.max_backoff));
        News("watch", line)) {
      LOG(WARNING) << line;
    }
    clock_.AwaitWithDeadline(mu_, absl::Condition(&stopping_), clock_.Now() + backoff);
    if (stopping_) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void AutoMigrator::DecideLoop() {
  absl::Time next_tick = clock_.Now() + options_.tick;
  while (true) {
    std::vector<Snapshot> vehicles;
    {
      absl::MutexLock lock(&mu_);
      clock_.AwaitWithDeadline(mu_, absl::Condition(this, &AutoMigrator::Wake), next_tick);
      if (stopping_) return;
      // On a tick every known vehicle, else only those with news.
      const absl::Time now = clock_.Now();
      const bool tick = now >= next_tick;
      if (tick) next_tick = now + options_.tick;
      for (const auto& [id, p] : latest_) {
        if (tick || dirty_.contains(id)) vehicles.push_back(p);
      }
      dirty_.clear();
    }
    if (!vehicles.empty()) DecideFor(vehicles);
  }
}

void AutoMigrator::DecideFor(const std::vector<Snapshot>& vehicles) {
  const bool acting = Acting();
  if (acting != acting_ && may_act_ != nullptr) {
    LOG(INFO) << (acting ? "decision loop: acting (this replica leads)"
                         : "decision loop: standing by (observing, no migrations)");
  }
  // A new leader must not act on sessions listed before it led: its predecessor may have
  // moved some since.
  if (acting && !acting_) sessions_at_ = absl::InfinitePast();
  acting_ = acting;
  if (clock_.Now() - sessions_at_ >= options_.sessions_ttl) {
    absl::StatusOr<std::vector<migrator::v1::Session>> s = clients_.ListSessions();
    if (!s.ok()) {
      if (News("sessions", s.status().ToString())) LOG(WARNING) << s.status();
      return;
    }
    News("sessions", "");
    sessions_ = std::move(*s);
    sessions_at_ = clock_.Now();
    by_vehicle_.clear();
    absl::flat_hash_set<uint64_t> live;
    for (size_t i = 0; i < sessions_.size(); ++i) {
      live.insert(sessions_[i].session_id());
      by_vehicle_[sessions_[i].vehicle_id()].push_back(i);
    }
    engine_.RetainSessions(live);
    occupancy_ = OccupancyOf(sessions_);
  }
  // Counts what this pass starts too, so that sessions decided one after another never
  // take a server over its max_load or past its migrations in flight.
  Occupancy occupancy = occupancy_;
  for (const Snapshot& snapshot : vehicles) {
    const proximity::v1::VehicleProximity& p = *snapshot;
    auto of_vehicle = by_vehicle_.find(p.vehicle_id());
    if (of_vehicle == by_vehicle_.end()) continue;
    for (size_t i : of_vehicle->second) {
      const migrator::v1::Session& session = sessions_[i];
      // The SMM is moving it already; the next decision sees where it ended up.
      if (!session.migration_id().empty()) continue;
      DecideOptions options{.occupancy = &occupancy};
      (acting ? options.record_only_changes : options.observe) = true;
      v1::DecisionRecord d = engine_.Decide(session.session_id(), session.vehicle_id(),
                                            session.server_id(), p, clock_.Now(), options);
      decided_.fetch_add(1, std::memory_order_relaxed);
      if (acting && d.outcome() == v1::OUTCOME_MIGRATE &&
          engine_.policy().mode() == v1::MODE_AUTOMATIC) {
        if (std::optional<std::string> id = MigrateOne(session, d)) {
          // Noted in the cached listing until the next one (sessions_ttl): later passes
          // leave the session to the SMM and count it as arriving, without listing every
          // session again after each migration (400 a second in a fleet of 10,000).
          sessions_[i].set_migration_id(*id);
          sessions_[i].set_migration_to_server_id(d.target_server_id());
          ++occupancy_.servers[d.target_server_id()].arriving;
          ++occupancy.servers[d.target_server_id()].arriving;
        }
      }
    }
  }
  passes_.fetch_add(1, std::memory_order_relaxed);
}

std::optional<std::string> AutoMigrator::MigrateOne(const migrator::v1::Session& session,
                                                    const v1::DecisionRecord& decision) {
  const std::string reason = absl::StrJoin(decision.reasons(), "; ");
  const std::string request_id = MigrateRequestId(decision);
  absl::StatusOr<std::string> migration;
  // The same request id on every attempt (and on every replica), so retrying a call that
  // may have reached the SMM returns the same migration rather than starting a second one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Leadership may have ended since the pass began, or during the previous attempt.
    if (!Acting()) {
      migration = absl::FailedPreconditionError(
          "not sent: this replica no longer leads (the new leader decides for itself)");
      break;
    }
    migration = clients_.Migrate(session.session_id(), decision.target_server_id(), reason,
                                 request_id);
    if (migration.ok() || (migration.status().code() != absl::StatusCode::kUnavailable &&
                           migration.status().code() != absl::StatusCode::kDeadlineExceeded)) {
      break;
    }
    clock_.SleepFor(absl::Milliseconds(200));
  }
  if (!migration.ok()) {
    sessions_at_ = absl::InfinitePast();  // whether it moves now is not known: list again
    // The engine has reset the session's dwell, so the next attempt waits a dwell again.
    LOG(WARNING) << "session " << session.session_id() << " to " << decision.target_server_id()
                 << ": " << migration.status();
    return std::nullopt;
  }
  engine_.SetMigrationId(decision.id(), *migration).IgnoreError();  // best effort: history only
  LOG(INFO) << "session " << session.session_id() << " " << session.server_id() << " -> "
            << decision.target_server_id() << ": migration " << *migration << " (request "
            << request_id << "; " << reason << ")";
  return *migration;
}

}  // namespace smig::decision
