#include "services/migrator/migration_run.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace smig::migrator {

void MigrationRun::Run(AgentDirectory& agents, const Params& p, Owner& owner, Clock& clock) {
  const absl::Status deposed = absl::FailedPreconditionError("this SMM replica no longer leads");
  // Before CUT_OVER, every failure ends here: the target lets go, the source never stopped.
  auto roll_back = [&](const std::string& why, Agent* target_to_release) {
    if (target_to_release != nullptr) {
      if (!owner.Acting()) return owner.Abandon(deposed);
      absl::StatusOr<dv1::Session> released = target_to_release->ReleaseSession(p.session, p.token);
      if (!released.ok() && !absl::IsNotFound(released.status())) owner.LeaveCopy(p.to);
    }
    if (absl::Status s = owner.Finish(v1::PHASE_ROLLED_BACK, why); !s.ok()) owner.Abandon(s);
  };

  absl::StatusOr<std::shared_ptr<Agent>> from = agents.Find(p.from);
  absl::StatusOr<std::shared_ptr<Agent>> to = agents.Find(p.to);
  if (!from.ok() || !to.ok()) {
    return roll_back((from.ok() ? to : from).status().ToString(), nullptr);
  }
  if (!owner.Acting()) return owner.Abandon(deposed);
  // Follow the source's events before anything starts, so the confirmation is not missed.
  absl::StatusOr<std::unique_ptr<ContiguityWatch>> watch = (*from)->WatchContiguity(p.session);
  if (!watch.ok()) return roll_back(std::string(watch.status().message()), nullptr);
  if (auto c = owner.Cancelled()) return roll_back(*c, nullptr);

  if (absl::Status s = owner.Enter(v1::PHASE_TRANSFERRING, absl::StrCat("ExportState at ", p.from),
                                   std::nullopt);
      !s.ok()) {
    return owner.Abandon(s);
  }
  if (!owner.Acting()) return owner.Abandon(deposed);
  absl::StatusOr<dv1::SessionState> state = (*from)->ExportState(p.session);
  if (!state.ok()) return roll_back(std::string(state.status().message()), nullptr);
  if (!owner.Acting()) return owner.Abandon(deposed);
  absl::StatusOr<dv1::Session> imported = (*to)->ImportState(*state, p.token);
  if (!imported.ok()) {
    // A newer leader's token at the target: it acts now; this run must not even roll back.
    if (IsFenced(imported.status())) return owner.Abandon(imported.status());
    // ALREADY_EXISTS means the target serves it from an earlier attempt: not ours to release.
    bool ours = !absl::IsAlreadyExists(imported.status());
    return roll_back(std::string(imported.status().message()), ours ? to->get() : nullptr);
  }
  if (absl::Status s = owner.Enter(
          v1::PHASE_OVERLAPPING,
          absl::StrCat("both edges send; waiting for the vehicle to confirm generation ",
                       state->generation()),
          state->generation());
      !s.ok()) {
    return owner.Abandon(s);
  }

  const absl::Time deadline = clock.Now() + p.overlap_timeout;
  while (true) {
    if (auto c = owner.Cancelled()) return roll_back(*c, to->get());
    absl::Status seen = (*watch)->Await(state->generation(),
                                        std::min(deadline - clock.Now(), p.health_interval));
    if (seen.ok()) break;
    if (absl::IsUnavailable(seen)) {
      return roll_back(absl::StrCat("lost the events of source ", p.from, ": ", seen.message()),
                       to->get());
    }
    if (clock.Now() >= deadline) {
      return roll_back(absl::StrCat("the vehicle did not confirm ", p.to, "'s stream within ",
                                    absl::FormatDuration(p.overlap_timeout)),
                       to->get());
    }
    if (!owner.Acting()) return owner.Abandon(deposed);
    if (absl::StatusOr<dv1::Session> alive = (*to)->GetSession(p.session); !alive.ok()) {
      return roll_back(absl::StrCat("target failed during the overlap: ", alive.status().message()),
                       to->get());
    }
  }

  if (absl::Status s = owner.Enter(v1::PHASE_CUT_OVER,
                                   absl::StrCat("vehicle confirmed ", p.to, "; releasing ", p.from),
                                   std::nullopt);
      !s.ok()) {
    return owner.Abandon(s);
  }
  if (!owner.Acting()) return owner.Abandon(deposed);
  // From here the target alone suffices: a source that fails to release is noted, not undone.
  std::string note;
  if (absl::StatusOr<dv1::Session> released = (*from)->ReleaseSession(p.session, p.token);
      !released.ok()) {
    if (IsFenced(released.status())) return owner.Abandon(released.status());
    note = absl::StrCat("source release failed (", released.status().message(), ")");
    owner.LeaveCopy(p.from);
  }
  if (absl::Status s = owner.Finish(v1::PHASE_DONE, note); !s.ok()) owner.Abandon(s);
}

}  // namespace smig::migrator
