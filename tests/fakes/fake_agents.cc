#include "tests/fakes/fake_agents.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace smig::migrator::testing {
namespace {

class FakeWatch : public ContiguityWatch {
 public:
  FakeWatch(const FakeCluster& cluster, FakeAgent& source, uint64_t session)
      : cluster_(cluster), source_(source), session_(session) {}
  absl::Status Await(uint64_t generation, absl::Duration timeout) override {
    Clock& clock = cluster_.clock();
    const absl::Time deadline = clock.Now() + timeout;
    while (true) {
      if (!source_.Ping().ok()) return absl::UnavailableError("the source's event stream ended");
      if (cluster_.Confirmed(session_, generation)) return absl::OkStatus();
      absl::Time now = clock.Now();
      if (now >= deadline) return absl::DeadlineExceededError("not confirmed yet");
      clock.SleepUntil(std::min(deadline, now + absl::Milliseconds(1)));
    }
  }

 private:
  const FakeCluster& cluster_;
  FakeAgent& source_;
  uint64_t session_;
};

dv1::Session Describe(const std::string& server, uint64_t session, uint64_t generation) {
  dv1::Session s;
  s.set_session_id(session);
  s.set_server_id(server);
  s.set_generation(generation);
  s.set_role(dv1::ROLE_EDGE);
  s.set_phase(dv1::SESSION_PHASE_SERVING);
  return s;
}

}  // namespace

void FakeAgent::set_hook(Hook hook) {
  absl::MutexLock lock(&mu_);
  hook_ = std::move(hook);
}
void FakeAgent::RunHook(const std::string& method, uint64_t session, uint64_t token) const {
  Hook hook;
  {
    absl::MutexLock lock(&mu_);
    hook = hook_;
  }
  if (hook) hook(method, session, token);
}
void FakeAgent::set_confirm_after(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  confirm_after_ = d;
}
void FakeAgent::set_never_confirm(bool never) {
  absl::MutexLock lock(&mu_);
  never_confirm_ = never;
}
void FakeAgent::set_import_error(absl::Status s) {
  absl::MutexLock lock(&mu_);
  import_error_ = std::move(s);
}
void FakeAgent::set_release_error(absl::Status s) {
  absl::MutexLock lock(&mu_);
  release_error_ = std::move(s);
}
void FakeAgent::Kill() {
  absl::MutexLock lock(&mu_);
  alive_ = false;
}
void FakeAgent::Revive() {
  absl::MutexLock lock(&mu_);
  alive_ = true;
}
void FakeAgent::Place(uint64_t session, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  sessions_[session] = generation;
}
bool FakeAgent::Serves(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  return sessions_.contains(session);
}
uint64_t FakeAgent::generation(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : it->second;
}
int FakeAgent::releases() const {
  absl::MutexLock lock(&mu_);
  return releases_;
}

std::string FakeAgent::opened_key(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  auto it = opened_key_.find(session);
  return it == opened_key_.end() ? "" : it->second;
}

dv1::RedundancyPolicy FakeAgent::opened_redundancy(uint64_t session) const {
  absl::MutexLock lock(&mu_);
  auto it = opened_redundancy_.find(session);
  return it == opened_redundancy_.end() ? dv1::REDUNDANCY_POLICY_UNSPECIFIED : it->second;
}

std::vector<std::string> FakeAgent::fenced_calls() const {
  absl::MutexLock lock(&mu_);
  return fenced_calls_;
}

absl::Status FakeAgent::CheckAlive() const {
  if (!alive_) return absl::UnavailableError(absl::StrCat("server ", id_, " does not answer"));
  return absl::OkStatus();
}

absl::StatusOr<dv1::Session> FakeAgent::OpenSession(const dv1::OpenSessionRequest& r) {
  RunHook("OpenSession", r.session_id(), r.fencing_token());
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  fenced_calls_.push_back(absl::StrCat("OpenSession ", r.fencing_token()));
  // Admitted and acted on under one lock, as DataplaneNode does on its loop thread.
  SMIG_RETURN_IF_ERROR(gate_.Admit(r.fencing_token()));
  if (!sessions_.emplace(r.session_id(), 1).second) {
    return absl::AlreadyExistsError(absl::StrCat("session ", r.session_id(), " is already served here"));
  }
  opened_redundancy_[r.session_id()] = r.redundancy();
  opened_key_[r.session_id()] = r.session_key();
  return Describe(id_, r.session_id(), 1);
}

absl::StatusOr<dv1::SessionState> FakeAgent::ExportState(uint64_t session) {
  RunHook("ExportState", session, 0);
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  dv1::SessionState state;
  state.set_format_version(1);
  state.set_session_id(session);
  state.set_generation(it->second + 1);
  return state;
}

absl::StatusOr<dv1::Session> FakeAgent::ImportState(const dv1::SessionState& state,
                                                    uint64_t fencing_token) {
  RunHook("ImportState", state.session_id(), fencing_token);
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  fenced_calls_.push_back(absl::StrCat("ImportState ", fencing_token));
  SMIG_RETURN_IF_ERROR(gate_.Admit(fencing_token));
  if (!import_error_.ok()) return import_error_;
  if (!sessions_.emplace(state.session_id(), state.generation()).second) {
    return absl::AlreadyExistsError(absl::StrCat("session ", state.session_id(), " is already served here"));
  }
  if (!never_confirm_) {
    confirms_[{state.session_id(), state.generation()}] = cluster_.clock().Now() + confirm_after_;
  }
  return Describe(id_, state.session_id(), state.generation());
}

absl::StatusOr<dv1::Session> FakeAgent::ReleaseSession(uint64_t session, uint64_t fencing_token) {
  RunHook("ReleaseSession", session, fencing_token);
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  // Session 0 is Agent::RaiseFence's.
  fenced_calls_.push_back(
      absl::StrCat(session == kNoSession ? "RaiseFence " : "ReleaseSession ", fencing_token));
  SMIG_RETURN_IF_ERROR(gate_.Admit(fencing_token));
  if (session != kNoSession && !release_error_.ok()) return release_error_;
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  ++releases_;
  dv1::Session out = Describe(id_, session, it->second);
  sessions_.erase(it);
  return out;
}

absl::StatusOr<dv1::Session> FakeAgent::GetSession(uint64_t session) {
  RunHook("GetSession", session, 0);
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat("session ", session, " is not served here"));
  return Describe(id_, session, it->second);
}

absl::StatusOr<std::vector<dv1::Session>> FakeAgent::ListSessions() {
  RunHook("ListSessions", 0, 0);
  absl::MutexLock lock(&mu_);
  SMIG_RETURN_IF_ERROR(CheckAlive());
  std::vector<dv1::Session> out;
  for (const auto& [session, generation] : sessions_) out.push_back(Describe(id_, session, generation));
  return out;
}

absl::Status FakeAgent::Ping() {
  absl::MutexLock lock(&mu_);
  // Like GrpcAgent's: the reason only; the caller names the agent.
  if (!alive_) return absl::UnavailableError("UNAVAILABLE: the fake agent was killed");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ContiguityWatch>> FakeAgent::WatchContiguity(uint64_t session) {
  RunHook("WatchContiguity", session, 0);
  SMIG_RETURN_IF_ERROR(Ping());
  return std::make_unique<FakeWatch>(cluster_, *this, session);
}

FakeAgent& FakeCluster::Add(const std::string& id) {
  auto [it, added] = agents_.emplace(id, std::make_shared<FakeAgent>(*this, id));
  return *it->second;
}

absl::StatusOr<std::shared_ptr<Agent>> FakeCluster::Find(const std::string& server_id) {
  auto it = agents_.find(server_id);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("server ", server_id, " is unknown"));
  return it->second;
}

absl::StatusOr<std::vector<std::string>> FakeCluster::ListServers() {
  std::vector<std::string> ids;
  for (const auto& [id, agent] : agents_) ids.push_back(id);
  return ids;
}

bool FakeCluster::Confirmed(uint64_t session, uint64_t generation) const {
  absl::Time now = clock_.Now();
  for (const auto& [id, a] : agents_) {
    absl::MutexLock lock(&a->mu_);
    if (!a->alive_) continue;
    for (const auto& [key, at] : a->confirms_) {
      if (key.first == session && key.second >= generation && now >= at) return true;
    }
  }
  return false;
}

}  // namespace smig::migrator::testing
