// MigrationRun: one migration's phase machine, on the thread that drives it:
//   PREPARING -> TRANSFERRING -> OVERLAPPING -> CUT_OVER -> DONE, or ROLLED_BACK.
// It makes the agent calls; its owner (MigratorEngine) records each phase, in the journal
// and in memory, and says whether the run may still act.
//
//   class Owner : public MigrationRun::Owner { ... };     // one per migration
//   MigrationRun::Run(agents, {.session = 7, .from = "edge-1", .to = "edge-2", .token = 57,
//                              .overlap_timeout = absl::Seconds(10),
//                              .health_interval = absl::Milliseconds(200)},
//                     owner, clock);                       // returns when it ended or stopped
//
// Order of writes and acts. A phase that commits the migration to something is recorded
// before its first agent call (TRANSFERRING before ExportState, CUT_OVER before the
// source's release); OVERLAPPING is recorded once the target imported, with its
// generation; DONE and ROLLED_BACK once their last act is done (the source's release, the
// target's), so that an ended migration in the journal has nothing left to do, and a
// leader that dies in between leaves a phase that reconciliation finishes the same way.
// Before every agent call and every record the run asks Owner::Acting(); a record that
// fails, an agent that refuses the token (FAILED_PRECONDITION: a newer leader acts) or a
// term that is over makes it stop at once (Owner::Abandon), touching nothing more.
//
// `agents`, `owner` and `clock` must outlive Run().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "services/migrator/agent_client.h"
#include "smig/migrator/v1/migrator.pb.h"

namespace smig::migrator {

class MigrationRun {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // Records the next phase (with the generation the target serves, if known now); an
    // error means: stop acting.
    virtual absl::Status Enter(v1::Phase phase, const std::string& note,
                               std::optional<uint64_t> generation) = 0;
    // Records the end (DONE or ROLLED_BACK, with the rollback's reason); an error: stop.
    virtual absl::Status Finish(v1::Phase phase, const std::string& reason) = 0;
    // Whether the leadership the migration started under still holds.
    virtual bool Acting() const = 0;
    // "cancelled: <why>" once CancelMigration (or shutdown) asked for a rollback.
    virtual std::optional<std::string> Cancelled() const = 0;
    // The run stops acting (why); reconciliation ends the migration.
    virtual void Abandon(const absl::Status& why) = 0;
    // A copy could not be released (its edge did not answer); reconciliation will.
    virtual void LeaveCopy(const std::string& server) = 0;
  };

  struct Params {
    uint64_t session = 0;
    std::string from;
    std::string to;
    uint64_t token = kUnfenced;  // every fenced call carries it
    absl::Duration overlap_timeout;
    absl::Duration health_interval;
  };

  static void Run(AgentDirectory& agents, const Params& params, Owner& owner, Clock& clock);
};

}  // namespace smig::migrator
