#include "services/decision/policy_store.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace smig::decision {
namespace {

std::string Encode(const v1::Policy& p) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(p, &out, o);  // cannot fail for a Policy
  return out;
}

absl::StatusOr<v1::Policy> Decode(const store::Entry& e) {
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  v1::Policy p;
  if (auto s = google::protobuf::util::JsonStringToMessage(e.value, &p, o); !s.ok()) {
    return absl::DataLossError(absl::StrCat("the stored policy (", e.key, " at revision ",
                                            e.mod_revision, ") is not a Policy in JSON: ",
                                            s.message().as_string()));
  }
  absl::StatusOr<v1::Policy> valid = NormalizePolicy(std::move(p));
  if (!valid.ok()) {
    return absl::DataLossError(absl::StrCat("the stored policy (", e.key, " at revision ",
                                            e.mod_revision, ") is not valid: ",
                                            valid.status().message()));
  }
  return valid;
}

}  // namespace

PolicyStore::PolicyStore(DecisionEngine& engine, store::Store& store, store::Election& election,
                         Options options, Clock& clock)
    : engine_(engine),
      store_(store),
      election_(election),
      options_(std::move(options)),
      clock_(clock) {}

PolicyStore::~PolicyStore() { Stop(); }

void PolicyStore::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  (void)Sync();  // logged inside
  thread_ = std::thread([this] { Run(); });
}

void PolicyStore::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PolicyStore::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      clock_.AwaitWithDeadline(mu_, absl::Condition(this, &PolicyStore::Woken),
                               clock_.Now() + options_.poll);
      if (stopping_) return;
      wake_ = false;
    }
    (void)Sync();
  }
}

store::Election::Listener PolicyStore::Listener() {
  return {.on_gained =
              [this](const store::Leadership& term) {
                LOG(INFO) << "decision: leading (term " << term.revision
                          << "): reading the policy from the store before acting";
                absl::MutexLock lock(&mu_);
                wake_ = true;
              },
          .on_lost =
              [](const store::Leadership& term, const absl::Status& why) {
                LOG(WARNING) << "decision: no longer leading (term " << term.revision
                             << "): " << why << "; standing by, no migrations";
              }};
}

bool PolicyStore::MayAct() const {
  std::optional<store::Leadership> term = election_.current();
  return term.has_value() && synced_term_.load() == term->revision;
}

absl::Status PolicyStore::Sync() {
  absl::MutexLock lock(&write_mu_);
  absl::Status s = SyncLocked();
  if (std::string problem = s.ok() ? "" : s.ToString(); problem != last_problem_) {
    if (s.ok()) {
      LOG(INFO) << "decision: policy store: " << PolicyStore::kKey << " read again";
    } else {
      LOG(WARNING) << "decision: policy store: " << problem;
    }
    last_problem_ = std::move(problem);
  }
  return s;
}

absl::Status PolicyStore::SyncLocked() {
  // The term is taken before the read: a read made during a term sees every write of the
  // terms before it (a fenced write cannot land once its term's key is gone).
  const std::optional<store::Leadership> term = election_.current();
  SMIG_ASSIGN_OR_RETURN(std::optional<store::Entry> entry, store_.Get(kKey));
  if (entry.has_value()) {
    SMIG_RETURN_IF_ERROR(Apply(*entry));
  } else if (term.has_value()) {
    SMIG_ASSIGN_OR_RETURN(int64_t revision,
                          store_.Put(kKey, Encode(options_.configured), term->fence()));
    SMIG_RETURN_IF_ERROR(engine_.UpdatePolicy(options_.configured).status());
    applied_revision_ = revision;
    LOG(INFO) << "decision: no policy in the store: wrote the config's (revision " << revision
              << ")";
  }
  if (term.has_value()) synced_term_ = term->revision;
  return absl::OkStatus();
}

absl::Status PolicyStore::Apply(const store::Entry& entry) {
  if (entry.mod_revision <= applied_revision_) return absl::OkStatus();  // in force already
  SMIG_ASSIGN_OR_RETURN(v1::Policy policy, Decode(entry));
  SMIG_RETURN_IF_ERROR(engine_.UpdatePolicy(policy).status());
  applied_revision_ = entry.mod_revision;
  LOG(INFO) << "decision: policy at revision " << entry.mod_revision << " in force: "
            << Encode(policy);
  return absl::OkStatus();
}

absl::Status PolicyStore::NotLeader() {
  absl::StatusOr<std::optional<store::LeaderInfo>> leader = election_.Leader();
  if (!leader.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "not the leader, and who leads is unknown (", leader.status().message(),
        "); the policy was not changed, try again"));
  }
  if (!leader->has_value()) {
    return absl::UnavailableError(
        "no MDM replica leads now (an election is under way); the policy was not changed, try "
        "again in a few seconds");
  }
  if ((*leader)->id == options_.replica_id) {
    return absl::UnavailableError(
        "this replica's leadership is ending or about to begin; the policy was not changed, "
        "try again in a few seconds");
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "not the leader: ", (*leader)->id,
      " leads; send UpdatePolicy to it (every replica answers GetPolicy, Evaluate and "
      "ListDecisions)"));
}

absl::StatusOr<v1::Policy> PolicyStore::Update(v1::Policy policy) {
  SMIG_ASSIGN_OR_RETURN(v1::Policy p, NormalizePolicy(std::move(policy)));
  const std::optional<store::Leadership> term = election_.current();
  if (!term.has_value()) return NotLeader();
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<int64_t> revision = store_.Put(kKey, Encode(p), term->fence());
  if (!revision.ok()) {
    if (revision.status().code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError(
          absl::StrCat("not the leader any more (the term ended during the write); the policy "
                       "was not changed: ",
                       revision.status().message()));
    }
    if (revision.status().code() == absl::StatusCode::kDeadlineExceeded) {
      // If it landed, the next Sync puts it in force here too.
      return absl::DeadlineExceededError(
          absl::StrCat("the store did not confirm the write in time, so it may or may not be "
                       "in force within a second (GetPolicy tells): ",
                       revision.status().message()));
    }
    return absl::Status(revision.status().code(),
                        absl::StrCat("the policy was not changed: store: ",
                                     revision.status().message()));
  }
  SMIG_ASSIGN_OR_RETURN(v1::Policy in_force, engine_.UpdatePolicy(p));
  applied_revision_ = *revision;
  synced_term_ = term->revision;  // the store's newest policy is this one, written in this term
  LOG(INFO) << "decision: policy updated (revision " << *revision << "): " << Encode(in_force);
  return in_force;
}

}  // namespace smig::decision
