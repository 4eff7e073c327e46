#include "common/store/leader_election.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace smig::store {
namespace {

namespace pb = ::etcdserverpb;
namespace epb = ::v3electionpb;

std::string Hex(int64_t lease) { return absl::StrCat(absl::Hex(lease)); }

}  // namespace

absl::StatusOr<std::unique_ptr<LeaderElection>> LeaderElection::Create(Options options,
                                                                       Clock& clock) {
  auto invalid = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("LeaderElection: ", why));
  };
  if (options.endpoints.empty()) return invalid("no endpoints");
  if (options.name.empty()) return invalid("no election name");
  if (options.id.empty()) return invalid("no replica id");
  if (options.ttl < absl::Seconds(1) || options.ttl % absl::Seconds(1) != absl::ZeroDuration()) {
    return invalid(absl::StrCat("ttl ", absl::FormatDuration(options.ttl),
                                " is not a whole number of seconds >= 1 (etcd counts in seconds)"));
  }
  if (options.safety_margin == absl::ZeroDuration()) options.safety_margin = options.ttl / 4;
  if (options.safety_margin < absl::ZeroDuration() ||
      options.safety_margin >= options.ttl * 2 / 3) {
    return invalid(absl::StrCat("safety_margin ", absl::FormatDuration(options.safety_margin),
                                " is not in (0, ttl * 2/3)"));
  }
  if (options.call_timeout <= absl::ZeroDuration()) return invalid("call_timeout must be > 0");
  if (options.retry <= absl::ZeroDuration()) return invalid("retry must be > 0");
  return std::unique_ptr<LeaderElection>(new LeaderElection(std::move(options), clock));
}

LeaderElection::LeaderElection(Options options, Clock& clock)
    : options_(std::move(options)), clock_(clock), etcd_(options_.endpoints, options_.call_timeout) {}

LeaderElection::~LeaderElection() { Stop(); }

void LeaderElection::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void LeaderElection::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void LeaderElection::AbandonForTesting() {
  {
    absl::MutexLock lock(&mu_);
    abandoned_ = true;
  }
  Stop();
}

void LeaderElection::SilenceForTesting(bool silence) {
  absl::MutexLock lock(&mu_);
  silenced_ = silence;
}

void LeaderElection::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

bool LeaderElection::LeaseAliveLocked() const {
  return !stopping_ && !resigned_ && !lease_over_ && lease_gone_.ok() && lease_.has_value() &&
         clock_.Now() < lease_->valid_until;
}

absl::Status LeaderElection::WhyNotAliveLocked() const {
  if (stopping_) return absl::CancelledError("the election stopped");
  if (resigned_) return absl::CancelledError("resigned");
  if (!lease_gone_.ok()) return lease_gone_;
  if (!lease_.has_value() || lease_over_) return absl::CancelledError("the lease ended");
  return absl::UnavailableError(absl::StrCat(
      "lease ", Hex(lease_->id), " was not renewed in time (a confirmed keepalive at most ",
      absl::FormatDuration(lease_->ttl - options_.safety_margin),
      " ago: its TTL less the safety margin); etcd at ", etcd_.endpoints(),
      " may be unreachable"));
}

std::optional<Leadership> LeaderElection::current() const {
  absl::MutexLock lock(&mu_);
  if (leadership_.has_value() && LeaseAliveLocked()) return leadership_;
  return std::nullopt;
}

void LeaderElection::WaitLocked(const std::function<bool()>& stop, absl::Time until) {
  // A lease's validity passes by time alone, so also wake when it would; it moves on with
  // every renewal, hence the loop.
  while (!stop()) {
    absl::Time now = clock_.Now();
    if (now >= until) return;
    absl::Time deadline = until;
    if (lease_.has_value() && lease_->valid_until > now) {
      deadline = std::min(deadline, lease_->valid_until);
    }
    clock_.AwaitWithDeadline(mu_, absl::Condition(&stop), deadline);
  }
}

absl::StatusOr<Leadership> LeaderElection::AwaitLeadership(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  std::function<bool()> ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || (leadership_.has_value() && LeaseAliveLocked());
  };
  WaitLocked(ready, clock_.Now() + timeout);
  if (leadership_.has_value() && LeaseAliveLocked()) return *leadership_;
  if (stopping_) return absl::CancelledError("the election stopped");
  return absl::DeadlineExceededError(absl::StrCat("not leading election ", options_.name,
                                                  " after ", absl::FormatDuration(timeout)));
}

absl::StatusOr<std::optional<LeaderInfo>> LeaderElection::Leader() {
  epb::LeaderRequest req;
  req.set_name(options_.name);
  epb::LeaderResponse resp;
  absl::Status s = etcd_.Call("Leader", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.election->Leader(&ctx, req, &resp);
  });
  // etcd answers UNKNOWN "election: no leader" when no candidate is left.
  if (!s.ok() && absl::StrContains(s.message(), "election: no leader")) return std::nullopt;
  SMIG_RETURN_IF_ERROR(s);
  return LeaderInfo{resp.kv().value(), resp.kv().key(), resp.kv().create_revision()};
}

absl::Status LeaderElection::Resign() {
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!leadership_.has_value() || !LeaseAliveLocked()) return absl::OkStatus();
    resigned_ = true;  // current() says "not leading" from here on
    lease = lease_->id;
  }
  LOG(INFO) << "resigning election " << options_.name << " (lease " << Hex(lease) << ")";
  absl::Status s = Revoke(lease);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("stepped down, but the lease could not be revoked, so a "
                                               "standby takes over only once it expires: ",
                                               s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<LeaderElection::Lease> LeaderElection::Grant() {
  pb::LeaseGrantRequest req;
  req.set_ttl(absl::ToInt64Seconds(options_.ttl));
  pb::LeaseGrantResponse resp;
  absl::Time sent = clock_.Now();
  SMIG_RETURN_IF_ERROR(etcd_.Call("LeaseGrant", [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
    return m.lease->LeaseGrant(&ctx, req, &resp);
  }));
  if (!resp.error().empty()) return absl::UnavailableError("etcd LeaseGrant: " + resp.error());
  absl::Duration ttl = absl::Seconds(resp.ttl());
  if (ttl > options_.ttl) {
    LOG_FIRST_N(WARNING, 1) << "etcd granted a lease TTL of " << absl::FormatDuration(ttl)
                            << " for the " << absl::FormatDuration(options_.ttl)
                            << " asked: its minimum TTL is ceil(1.5 x --election-timeout); run "
                               "etcd with --heartbeat-interval=50 --election-timeout=500 for 1 s";
  }
  return Lease{resp.id(), ttl, sent + ttl - options_.safety_margin};
}

absl::Status LeaderElection::Revoke(int64_t lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  pb::LeaseRevokeResponse resp;
  absl::Status s = etcd_.Call(
      "LeaseRevoke",
      [&](EtcdClient::Member& m, grpc::ClientContext& ctx) {
        return m.lease->LeaseRevoke(&ctx, req, &resp);
      },
      std::min(options_.call_timeout, absl::Seconds(1)));
  // Gone already (expired, or revoked by the other thread after a Resign()): what we wanted.
  if (s.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return s;
}

absl::StatusOr<std::optional<mvccpb::KeyValue>> LeaderElection::ReadKey(const std::string& key,
                                                                        absl::Duration timeout) {
  pb::RangeRequest req;
  req.set_key(key);
  pb::RangeResponse resp;
  SMIG_RETURN_IF_ERROR(etcd_.Call(
      "Range",
      [&](EtcdClient::Member& m, grpc::ClientContext& ctx) { return m.kv->Range(&ctx, req, &resp); },
      timeout));
  if (resp.kvs_size() == 0) return std::nullopt;
  return resp.kvs(0);
}

void LeaderElection::Run() {
  absl::Duration pause = options_.retry;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    absl::StatusOr<Lease> lease = Grant();
    if (lease.ok()) {
      {
        absl::MutexLock lock(&mu_);
        lease_ = *lease;
        lease_gone_ = absl::OkStatus();
        resigned_ = false;
        lease_over_ = false;
      }
      std::thread keepalive([this, id = lease->id, ttl = lease->ttl] { KeepAlive(id, ttl); });
      bool led = false;
      absl::Status why = RunTerm(*lease, led);
      bool abandoned = false;
      bool resigned = false;
      {
        absl::MutexLock lock(&mu_);
        lease_over_ = true;
        if (keepalive_ctx_ != nullptr) keepalive_ctx_->TryCancel();
        abandoned = abandoned_ || silenced_;
        resigned = resigned_;
      }
      keepalive.join();
      // The lease goes with the term (so that a new term has a new key and a higher
      // revision), and with it this replica's candidacy (after a Resign(), again: harmless).
      if (!abandoned) {
        if (absl::Status s = Revoke(lease->id); !s.ok()) {
          VLOG(1) << "revoking lease " << Hex(lease->id) << ": " << s;
        }
      }
      {
        absl::MutexLock lock(&mu_);
        lease_.reset();
      }
      // After a term, campaign again at once (behind the standbys); after a failure to
      // lead, pause first.
      if (led || resigned) {
        pause = options_.retry;
        continue;
      }
      if (why.code() != absl::StatusCode::kCancelled) {
        LOG(WARNING) << "election " << options_.name << ": " << why;
      }
    } else {
      LOG(WARNING) << "election " << options_.name << ": " << lease.status();
    }
    absl::MutexLock lock(&mu_);
    WaitLocked([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; },
               clock_.Now() + pause);
    pause = std::min(pause * 2, options_.ttl);
  }
}

absl::Status LeaderElection::RunTerm(const Lease& lease, bool& led) {
  SMIG_ASSIGN_OR_RETURN(Leadership won, Campaign(lease));
  Listener listener;
  {
    absl::MutexLock lock(&mu_);
    if (!LeaseAliveLocked()) return WhyNotAliveLocked();
    leadership_ = won;
    listener = listener_;
  }
  led = true;
  LOG(INFO) << "leading election " << options_.name << " as " << options_.id << " (key "
            << won.key << ", revision " << won.revision << ")";
  if (listener.on_gained) listener.on_gained(won);
  absl::Status why = Hold(won);
  {
    absl::MutexLock lock(&mu_);
    leadership_.reset();
    listener = listener_;
  }
  LOG(WARNING) << "no longer leading election " << options_.name << " (revision "
               << won.revision << "): " << why;
  if (listener.on_lost) listener.on_lost(won, why);
  return why;
}

absl::StatusOr<Leadership> LeaderElection::Campaign(const Lease& lease) {
  epb::CampaignRequest req;
  req.set_name(options_.name);
  req.set_lease(lease.id);
  req.set_value(options_.id);
  epb::CampaignResponse resp;
  grpc::ClientContext ctx;  // no deadline: Campaign returns when this replica leads
  EtcdClient::Member& member = etcd_.preferred();
  bool done = false;
  grpc::Status status;
  member.election->async()->Campaign(&ctx, &req, &resp, [this, &done, &status](grpc::Status s) {
    absl::MutexLock lock(&mu_);
    status = std::move(s);
    done = true;
  });
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    WaitLocked([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done || !LeaseAliveLocked(); },
               absl::InfiniteFuture());
    cancel = !done;
  }
  // Not under mu_: a cancelled callback may run on this thread. A cancelled Campaign
  // withdraws the candidate's key at etcd.
  if (cancel) ctx.TryCancel();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done));  // gRPC always runs the callback, soon after a cancel
    if (!LeaseAliveLocked()) return WhyNotAliveLocked();
  }
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) etcd_.Failed(member);
    return FromGrpcStatus(status, absl::StrCat("etcd Campaign at ", member.endpoint));
  }
  Leadership won{resp.leader().key(), resp.leader().rev(), resp.leader().lease()};
  // Campaign also returns if the candidate's own key vanished while it waited (its lease
  // expired): only a key that is still there, from this lease, leads.
  absl::Duration timeout;
  {
    absl::MutexLock lock(&mu_);
    timeout = std::clamp(lease_->valid_until - clock_.Now(), absl::Milliseconds(10),
                         options_.call_timeout);
  }
  SMIG_ASSIGN_OR_RETURN(std::optional<mvccpb::KeyValue> kv, ReadKey(won.key, timeout));
  if (!kv.has_value() || kv->create_revision() != won.revision || kv->lease() != lease.id) {
    return absl::AbortedError(absl::StrCat("etcd Campaign returned leader key ", won.key,
                                           " (revision ", won.revision,
                                           "), but etcd no longer has it"));
  }
  return won;
}

absl::Status LeaderElection::Hold(const Leadership& leadership) {
  absl::Duration period;
  {
    absl::MutexLock lock(&mu_);
    if (!lease_.has_value()) return WhyNotAliveLocked();
    period = lease_->ttl / 3;
  }
  absl::Time next_check = clock_.Now() + period;
  while (true) {
    absl::Duration timeout;
    {
      absl::MutexLock lock(&mu_);
      WaitLocked([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !LeaseAliveLocked(); },
                 next_check);
      if (!LeaseAliveLocked()) return WhyNotAliveLocked();
      timeout = std::clamp(lease_->valid_until - clock_.Now(), absl::Milliseconds(10),
                           options_.call_timeout);
    }
    // The key can go while the lease lives: deleted by hand, or by another replica's
    // Resign of a stale LeaderKey.
    absl::StatusOr<std::optional<mvccpb::KeyValue>> kv = ReadKey(leadership.key, timeout);
    if (kv.ok() && (!kv->has_value() || (*kv)->create_revision() != leadership.revision)) {
      return absl::AbortedError(absl::StrCat("etcd no longer has leader key ", leadership.key,
                                             " with revision ", leadership.revision));
    }
    if (!kv.ok()) VLOG(1) << "checking leader key " << leadership.key << ": " << kv.status();
    next_check = clock_.Now() + period;
  }
}

void LeaderElection::KeepAlive(int64_t id, absl::Duration ttl) {
  const absl::Duration period = ttl / 3;
  std::function<bool()> over = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return lease_over_ || stopping_ || resigned_ || !lease_gone_.ok();
  };
  pb::LeaseKeepAliveRequest req;
  req.set_id(id);
  absl::Time next = clock_.Now() + period;  // the grant counts as the first renewal
  // One stream per iteration; a new one only after the last broke while the lease lived.
  while (true) {
    grpc::ClientContext ctx;
    EtcdClient::Member& member = etcd_.preferred();
    {
      absl::MutexLock lock(&mu_);
      if (over()) return;
      keepalive_ctx_ = &ctx;
    }
    auto stream = member.lease->LeaseKeepAlive(&ctx);
    bool broken = false;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        WaitLocked(over, next);
        if (over()) break;
        if (silenced_) {
          next = clock_.Now() + period;
          continue;
        }
      }
      absl::Time sent = clock_.Now();
      next = sent + period;
      pb::LeaseKeepAliveResponse resp;
      // Blocks while etcd does not answer; the campaign thread cancels `ctx` once the lease
      // can no longer be trusted.
      if (!stream->Write(req) || !stream->Read(&resp)) {
        broken = true;
        break;
      }
      absl::MutexLock lock(&mu_);
      if (resp.ttl() <= 0) {
        lease_gone_ = absl::NotFoundError(
            absl::StrCat("etcd says lease ", Hex(id), " has expired or was revoked"));
        break;
      }
      if (lease_.has_value() && lease_->id == id) {
        lease_->valid_until = std::max(
            lease_->valid_until, sent + absl::Seconds(resp.ttl()) - options_.safety_margin);
      }
    }
    ctx.TryCancel();
    grpc::Status status = stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      keepalive_ctx_ = nullptr;
      if (over()) return;
    }
    if (broken) {
      VLOG(1) << "keepalive stream of lease " << Hex(id) << " to " << member.endpoint
              << " broke: " << status.error_message();
      etcd_.Failed(member);
    }
    next = clock_.Now() + std::min(options_.retry, period);
  }
}

}  // namespace smig::store
